"""Throw-away real servers (Mosquitto, influxd, PostgreSQL) on free 127.0.0.1 ports.

The one recipe used by the test fixtures, the benchmarks and the chaos harness. Each ``start_*``
creates a private directory (config, data, log; under ``base_dir`` when given), starts the server,
waits (bounded) until it answers and returns a frozen handle. On the handle:

- ``halt(kill=False)`` stops the process but keeps its data (``kill=True`` is a crash);
- ``start()`` brings it back on the same port and data directory; ``restart(kill=False)`` does both;
- ``stop()`` stops it for good and deletes its directory (``keep=True`` leaves the files to read).
- used as a context manager, it is stopped when the block ends.

A failed start raises :class:`ServerStartError` carrying the tail of the server's log. Servers still
running when the interpreter exits are stopped by an ``atexit`` hook, so a crashed script leaves no
orphans behind. :class:`Process` supervises any other foreground process the same way.
"""

from yiwang.servers.influxd import (
    INFLUXD_BIN,
    InfluxDatabase,
    InfluxServer,
    influx_query,
    start_influxd,
)
from yiwang.servers.mosquitto import MOSQUITTO_BIN, MosquittoServer, start_mosquitto
from yiwang.servers.postgres import POSTGRES_BIN_DIR, PostgresServer, postgres_available, start_postgres
from yiwang.servers.process import (
    HOST,
    Process,
    ServerStartError,
    free_port,
    log_tail,
    port_open,
    unique_name,
)

__all__ = [
    "HOST",
    "INFLUXD_BIN",
    "MOSQUITTO_BIN",
    "POSTGRES_BIN_DIR",
    "InfluxDatabase",
    "InfluxServer",
    "MosquittoServer",
    "PostgresServer",
    "Process",
    "ServerStartError",
    "free_port",
    "influx_query",
    "log_tail",
    "port_open",
    "postgres_available",
    "start_influxd",
    "start_mosquitto",
    "start_postgres",
    "unique_name",
]
