"""A throw-away platform for a benchmark: broker, ingest, alerts and api as processes in a temp dir."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from api.accounts import ensure_demo_operator
from broker.mosquitto import MosquittoConfig, mosquitto_binary
from common.db import make_engine
from yiwang.schema import create_all
from yiwang.servers import free_port
from yiwang.supervisor import Child, Supervisor, env_with, self_command


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far (Linux /proc); 0.0 once it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat.rsplit(")", 1)[1].split()  # after "pid (comm)": comm may contain spaces
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True, slots=True)
class Stack:
    workdir: Path
    mqtt_port: int
    http_port: int
    token: str
    broker: str
    database_url: str

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"


@contextlib.contextmanager
def running_stack(
    config_dir: Path,
    *,
    embedded_broker: bool = False,
    services: tuple[str, ...] = ("ingest", "alerts", "cases", "api"),
    extra_env: dict[str, str] | None = None,
) -> Iterator[Stack]:
    """Mosquitto when installed (else, or when asked, the embedded broker) and the services, on SQLite."""
    with tempfile.TemporaryDirectory(prefix="yiwang-bench-") as tmp:
        workdir = Path(tmp)
        mqtt_port, http_port = free_port(), free_port()
        database_url = f"sqlite:///{workdir}/yiwang.db"
        env = env_with(
            {
                "YIWANG_MQTT_PORT": str(mqtt_port),
                "YIWANG_HTTP_PORT": str(http_port),
                "YIWANG_DATABASE_URL": database_url,
                "YIWANG_SERIES_URL": f"sqlite:///{workdir}/series.db",
                "YIWANG_CONFIG_DIR": str(config_dir.resolve()),
                "YIWANG_LOG_LEVEL": "WARNING",
                "YIWANG_INGEST_CLIENT_ID": f"bench-ingest-{os.getpid()}",
                "YIWANG_ALERTS_CLIENT_ID": f"bench-alerts-{os.getpid()}",
                "YIWANG_INGEST_SPOOL_DIR": str(workdir / "ingest-spool"),
                "YIWANG_INGEST_METRICS_PORT": "0",
                **(extra_env or {}),
            }
        )
        create_all(database_url)
        db = make_engine(database_url)
        token = ensure_demo_operator(db, workdir / "credentials.json")["token"]
        db.dispose()
        binary = None if embedded_broker else mosquitto_binary()
        if binary:
            conf = MosquittoConfig(
                host="127.0.0.1", port=mqtt_port, data_dir=workdir / "mosquitto", allow_anonymous=True
            ).write(workdir / "mosquitto.conf")
            broker = Child("broker", [binary, "-c", str(conf)], mqtt_port)
        else:
            broker = Child("broker", self_command("broker", "--embedded", "--allow-anonymous"), mqtt_port)
        # Children log to a file: a benchmark's stdout carries only its JSON.
        supervisor = Supervisor(env, log_path=workdir / "stack.log")
        try:
            supervisor.start(broker)
            for name in services:
                supervisor.start(Child(name, self_command(name), http_port if name == "api" else None))
            yield Stack(
                workdir, mqtt_port, http_port, token, "mosquitto" if binary else "amqtt", database_url
            )
        finally:
            supervisor.stop_all()
