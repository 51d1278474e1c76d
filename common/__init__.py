"""The floor: settings, logging, database engines, the MQTT client builder, the acking consumer, heartbeats.

Imports none of the parts (contract, edge, broker, series, ingest, cases, alerts, api, yiwang).
"""
