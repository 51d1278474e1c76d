"""Shared plumbing: settings, logging, database engines, MQTT clients, service heartbeats.

Imports none of the parts (contract, edge, broker, ingest, alerts, api).
"""
