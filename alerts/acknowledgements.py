"""Acknowledging an alert with a note: who saw it, when, and what they said.

An acknowledgement never changes the alert: it keeps firing, resolving or going unknown as the engine
decides. The note shows on the alert (for its current episode) and on the case the alert belonged to.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import ColumnElement, Engine, and_, func, or_, select
from sqlalchemy.orm import Session

from alerts.models import Alert, AlertAcknowledgement

NOTE_MAX_CHARS = 1000


class EmptyNote(ValueError):
    """An acknowledgement says something: the note may not be blank."""


@dataclass(frozen=True, slots=True)
class Acknowledgement:
    id: int
    fingerprint: str
    case_id: int | None
    alert_status: str
    actor: str
    at: datetime
    note: str

    @property
    def rule_id(self) -> str:
        return self.fingerprint.split("|", 1)[0]

    @property
    def community(self) -> str:
        parts = self.fingerprint.split("|", 2)
        return parts[1] if len(parts) == 3 else ""

    @property
    def subject(self) -> str:
        """The alert's subject key (device, gateway or grid id)."""
        return self.fingerprint.split("|", 2)[-1]


def _of(row: AlertAcknowledgement) -> Acknowledgement:
    return Acknowledgement(
        row.id, row.fingerprint, row.case_id, row.alert_status, row.actor, row.at, row.note
    )


def checked_note(note: str) -> str:
    """The note as stored: trimmed, not blank, at most NOTE_MAX_CHARS (ValueError naming the limit)."""
    text = note.strip()
    if not text:
        raise EmptyNote("the note is empty: say what you saw or what is being done")
    if len(text) > NOTE_MAX_CHARS:
        raise ValueError(f"the note has {len(text)} characters; at most {NOTE_MAX_CHARS}")
    return text


def acknowledge(
    db: Engine,
    fingerprint: str,
    area: ColumnElement[bool],
    *,
    actor: str,
    note: str,
    now: datetime | None = None,
) -> Acknowledgement | None:
    """Record ``actor``'s acknowledgement of the alert; None when no such alert lies in ``area``.

    ValueError (EmptyNote included) for a blank or overlong note, before anything is written.
    """
    text = checked_note(note)
    with Session(db) as session, session.begin():
        alert = session.scalars(select(Alert).where(Alert.fingerprint == fingerprint, area)).first()
        if alert is None:
            return None
        row = AlertAcknowledgement(
            fingerprint=fingerprint,
            case_id=alert.case_id,
            alert_status=alert.status,
            actor=actor,
            at=now or datetime.now(UTC),
            note=text,
        )
        session.add(row)
        session.flush()
        return _of(row)


def current_acknowledgements(db: Engine, alerts: Iterable[Alert]) -> dict[str, Acknowledgement]:
    """The latest acknowledgement of each alert's current episode (made since it last started), by
    fingerprint: an alert that resolved and fired again is not acknowledged until someone says so."""
    started = {a.fingerprint: a.started_at for a in alerts}
    if not started:
        return {}
    latest = (
        select(AlertAcknowledgement.fingerprint, func.max(AlertAcknowledgement.id).label("last"))
        .where(AlertAcknowledgement.fingerprint.in_(list(started)))
        .group_by(AlertAcknowledgement.fingerprint)
        .subquery()
    )
    with Session(db) as session:
        rows = session.scalars(
            select(AlertAcknowledgement).join(latest, AlertAcknowledgement.id == latest.c.last)
        )
        found = [_of(r) for r in rows]
    return {a.fingerprint: a for a in found if _aware(a.at) >= _aware(started[a.fingerprint])}


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def acknowledgements_for_case(session: Session, case_id: int) -> list[Acknowledgement]:
    """Every acknowledgement of an alert of the case, oldest first: those made while the alert was on
    the case, and those made before it had one (a pending alert) when it has joined this case since."""
    joined_later = and_(
        AlertAcknowledgement.case_id.is_(None),
        AlertAcknowledgement.fingerprint.in_(select(Alert.fingerprint).where(Alert.case_id == case_id)),
    )
    rows = session.scalars(
        select(AlertAcknowledgement)
        .where(or_(AlertAcknowledgement.case_id == case_id, joined_later))
        .order_by(AlertAcknowledgement.at, AlertAcknowledgement.id)
    )
    return [_of(r) for r in rows]
