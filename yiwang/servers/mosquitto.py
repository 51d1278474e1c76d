"""A throw-away Mosquitto running the shipped configuration (:class:`broker.mosquitto.MosquittoConfig`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from broker.mosquitto import MosquittoConfig, mosquitto_binary
from yiwang.servers.process import (
    HOST,
    Process,
    ProcessHandle,
    ServerStartError,
    free_port,
    make_workdir,
    port_open,
    start_registered,
)

MOSQUITTO_BIN = mosquitto_binary() or "/usr/sbin/mosquitto"


@dataclass(frozen=True)
class MosquittoServer(ProcessHandle):
    """``halt`` keeps the persistence file: a restarted broker still holds the sessions and queues."""

    host: str
    port: int
    workdir: Path
    _process: Process = field(repr=False, compare=False)


def start_mosquitto(
    *,
    port: int | None = None,
    base_dir: Path | None = None,
    extra_config: str = "",
    timeout: float = 10.0,
    accounts_dir: Path | None = None,
) -> MosquittoServer:
    """Start Mosquitto with the production configuration; anonymous unless ``accounts_dir`` (a
    `broker/accounts.py` store: password file + ACL) is given.

    ``extra_config`` is appended to the generated config (e.g. ``autosave_interval 1``, a second
    listener); a later line overrides an earlier one.
    """
    if mosquitto_binary() is None:
        raise ServerStartError("mosquitto not found: install Debian's mosquitto package")
    port = port or free_port()
    workdir = make_workdir("yiwang-mosquitto-", base_dir)
    config = MosquittoConfig(
        host=HOST,
        port=port,
        data_dir=workdir,
        allow_anonymous=accounts_dir is None,
        password_file=accounts_dir / "passwd" if accounts_dir else None,
        acl_file=accounts_dir / "acl" if accounts_dir else None,
    )
    config_path = workdir / "mosquitto.conf"
    config_path.write_text(config.render() + extra_config + "\n", encoding="utf-8")
    process = Process(
        "mosquitto",
        [MOSQUITTO_BIN, "-c", str(config_path)],
        workdir / "mosquitto.log",
        ready=lambda: port_open(HOST, port),
        timeout=timeout,
    )
    server = MosquittoServer(HOST, port, workdir, process)
    start_registered(process, workdir, server.stop)
    return server
