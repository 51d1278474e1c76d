"""Service heartbeats in the relational store, so /healthz can tell which services are alive.

Services only share the broker and the databases, so liveness travels through the database too.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Column, DateTime, Engine, MetaData, String, Table, Text, select
from sqlalchemy.exc import SQLAlchemyError

from common.db import create_tables

log = logging.getLogger(__name__)
metadata = MetaData()

heartbeats = Table(
    "service_heartbeats",
    metadata,
    Column("service", String(32), primary_key=True),
    Column("instance", String(128), primary_key=True),
    Column("last_seen", DateTime(timezone=True), nullable=False),
    Column("detail", Text, nullable=False, default="{}"),
)


@dataclass(frozen=True, slots=True)
class Heartbeat:
    service: str
    instance: str
    last_seen: datetime
    detail: dict[str, Any]


def instance_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def beat(db: Engine, service: str, detail: dict[str, Any] | None = None) -> None:
    now = datetime.now(UTC)
    row = {
        "service": service,
        "instance": instance_name(),
        "last_seen": now,
        "detail": json.dumps(detail or {}),
    }
    with db.begin() as conn:
        updated = conn.execute(
            heartbeats.update()
            .where(heartbeats.c.service == service, heartbeats.c.instance == row["instance"])
            .values(last_seen=now, detail=row["detail"])
        ).rowcount
        if not updated:
            conn.execute(heartbeats.insert().values(**row))


def read_heartbeats(db: Engine) -> list[Heartbeat]:
    with db.connect() as conn:
        rows = conn.execute(select(heartbeats)).all()
    out = []
    for r in rows:
        last_seen = r.last_seen if r.last_seen.tzinfo else r.last_seen.replace(tzinfo=UTC)
        out.append(Heartbeat(r.service, r.instance, last_seen, json.loads(r.detail or "{}")))
    return out


def create_schema(db: Engine) -> None:
    create_tables(db, metadata)


class HeartbeatThread(threading.Thread):
    """Beats every ``interval`` seconds until ``stop`` is set; a database outage is logged, not fatal."""

    def __init__(
        self,
        db: Engine,
        service: str,
        detail: Callable[[], dict[str, Any]],
        stop: threading.Event,
        interval: float = 5.0,
    ) -> None:
        super().__init__(name=f"{service}-heartbeat", daemon=True)
        create_schema(db)
        self._db, self._service, self._detail, self._stop, self._interval = (
            db,
            service,
            detail,
            stop,
            interval,
        )

    def run(self) -> None:
        while not self._stop.is_set():
            try:
                beat(self._db, self._service, self._detail())
            except SQLAlchemyError as err:
                log.warning("heartbeat of %s failed: %s", self._service, err)
            self._stop.wait(self._interval)
