"""The time-series stores behind one protocol: InfluxDB (v1-compatible API) and SQLite; line protocol.

A library: ingest writes through it, the API reads through it.
"""
