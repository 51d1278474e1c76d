"""Duty rosters as they stand now: the configured ones, changed at run time through the API."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import JSON, Engine, String
from sqlalchemy.orm import Mapped, Session, mapped_column

from cases.organisation import Organisation, Roster
from common.db import Base, UtcDateTime


class RosterOverride(Base):
    __tablename__ = "roster_overrides"

    unit: Mapped[str] = mapped_column(String(64), primary_key=True)
    primary: Mapped[str] = mapped_column(String(64))
    backup: Mapped[str] = mapped_column(String(64))
    away: Mapped[list[str]] = mapped_column(JSON)
    updated_by: Mapped[str] = mapped_column(String(128))
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


def current_roster(db: Engine, organisation: Organisation, unit: str) -> Roster | None:
    with Session(db) as session:
        row = session.get(RosterOverride, unit)
    if row is not None:
        return Roster(unit=unit, primary=row.primary, backup=row.backup, away=list(row.away))
    return organisation.roster(unit)


def set_roster(db: Engine, organisation: Organisation, roster: Roster, author: str) -> None:
    """Replace a unit's roster; everyone on it must be among the organisation's people."""
    known = {p.username for p in organisation.people}
    unknown = sorted({roster.primary, roster.backup, *roster.away} - known)
    if unknown:
        raise ValueError(f"not among people: {', '.join(unknown)}")
    with Session(db) as session, session.begin():
        session.merge(
            RosterOverride(
                unit=roster.unit,
                primary=roster.primary,
                backup=roster.backup,
                away=list(roster.away),
                updated_by=author,
                updated_at=datetime.now(UTC),
            )
        )
