"""The registry's version: one number that goes up with every change, read cheaply by every service,
and the revisions of the communities each change touched, so a service reloads only those."""

from __future__ import annotations

from collections.abc import Collection
from datetime import UTC, datetime

from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session

from registry.models import RegistryCommunity, RegistryVersion


def bump(session: Session, now: datetime | None = None, communities: Collection[str] | None = None) -> int:
    """Count one change; part of the caller's transaction, so the number and the change land together.

    ``communities``: those whose catalog the change touched; their revision becomes the new version.
    Left out, every community's revision moves (a hand-made change reloads everything); empty, none
    does (a town with no community yet).
    """
    now = now or datetime.now(UTC)
    row = session.get(RegistryVersion, 1, with_for_update=True)
    if row is None:
        row = RegistryVersion(id=1, version=0, changed_at=now)
        session.add(row)
    row.version += 1
    row.changed_at = now
    session.flush()
    if communities is None or communities:
        touched = update(RegistryCommunity).values(revision=row.version)
        if communities is not None:
            touched = touched.where(RegistryCommunity.id.in_(sorted(set(communities))))
        session.execute(touched.execution_options(synchronize_session=False))
    return row.version


def current(db: Engine) -> int:
    """The registry's version now; 0 before anything was stored."""
    with Session(db) as session:
        version = session.scalar(select(RegistryVersion.version).where(RegistryVersion.id == 1))
    return version or 0


def revisions(session: Session) -> tuple[int, dict[str, int]]:
    """The registry's version and every community's revision, in one statement so they agree: rows
    read afterwards are at least as new as both."""
    stored = select(RegistryVersion.version).where(RegistryVersion.id == 1).scalar_subquery()
    found = session.execute(select(RegistryCommunity.id, RegistryCommunity.revision, stored)).all()
    if not found:
        return current_in(session), {}
    return found[0][2] or 0, {community: revision for community, revision, _ in found}


def current_in(session: Session) -> int:
    version = session.scalar(select(RegistryVersion.version).where(RegistryVersion.id == 1))
    return version or 0
