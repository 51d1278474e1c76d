"""The registry's version: one number that goes up with every change, read cheaply by every service."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from registry.models import RegistryVersion


def bump(session: Session, now: datetime | None = None) -> int:
    """Count one change; part of the caller's transaction, so the number and the change land together."""
    now = now or datetime.now(UTC)
    row = session.get(RegistryVersion, 1, with_for_update=True)
    if row is None:
        row = RegistryVersion(id=1, version=0, changed_at=now)
        session.add(row)
    row.version += 1
    row.changed_at = now
    session.flush()
    return row.version


def current(db: Engine) -> int:
    """The registry's version now; 0 before anything was stored."""
    with Session(db) as session:
        version = session.scalar(select(RegistryVersion.version).where(RegistryVersion.id == 1))
    return version or 0
