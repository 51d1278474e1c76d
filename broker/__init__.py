"""The MQTT broker: Mosquitto configuration for pilots, an embedded broker for a bare machine."""
