"""Ingest: MQTT telemetry → time-series store, with dead letters for what does not validate."""
