"""The grid-case tables (SQLAlchemy 2; SQLite or PostgreSQL): cases, their events and evidence,
supervision orders, and the organisation's run-time changes.

Case events are append-only: every change of a case is a new row with actor, time and note.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Float, ForeignKey, Index, Integer, String, Text, event
from sqlalchemy.orm import Mapped, mapped_column, object_session, relationship

from common.db import Base


class CaseState(StrEnum):
    NEW = "NEW"  # 待受理
    VERIFYING = "VERIFYING"  # 核实
    FILED = "FILED"  # 立案
    ASSIGNED = "ASSIGNED"  # 交办
    HANDLING = "HANDLING"  # 处置
    CALLED_UP = "CALLED_UP"  # 镇呼区应
    FEEDBACK = "FEEDBACK"  # 反馈
    CHECKING = "CHECKING"  # 核查
    CLOSED = "CLOSED"  # 结案
    RETURN_VISIT = "RETURN_VISIT"  # 回访
    VOID = "VOID"
    MERGED = "MERGED"
    REOPENED = "REOPENED"
    SUSPENDED = "SUSPENDED"


TERMINAL_STATES = frozenset({CaseState.CLOSED, CaseState.RETURN_VISIT, CaseState.VOID, CaseState.MERGED})
OPEN_STATES = frozenset(CaseState) - TERMINAL_STATES


class Case(Base):
    __tablename__ = "cases"
    __table_args__ = (
        Index("ix_cases_open_lookup", "community", "grid", "category", "state"),
        # The operator queue: one grid (or town), newest first.
        Index("ix_cases_queue", "grid", "opened_at"),
        Index("ix_cases_state_opened", "state", "opened_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    community: Mapped[str] = mapped_column(String(64))
    grid: Mapped[str] = mapped_column(String(64))
    category: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16), default=CaseState.NEW.value)
    title: Mapped[str] = mapped_column(String(256))
    source: Mapped[str] = mapped_column(String(16))  # sensor | report
    severity: Mapped[str] = mapped_column(String(16))
    urgency: Mapped[str] = mapped_column(String(8), default="normal")  # normal | urgent: scales the SLA
    opened_at: Mapped[datetime] = mapped_column(index=True)
    deadline: Mapped[datetime]  # completion deadline; approved extensions move it, suspensions pause it
    updated_at: Mapped[datetime]
    version: Mapped[int] = mapped_column(Integer, default=1)
    description: Mapped[str] = mapped_column(Text, default="")
    owner_town: Mapped[str] = mapped_column(String(64), default="")  # keeps ownership through a call-up
    department: Mapped[str | None] = mapped_column(String(64))
    assignee: Mapped[str | None] = mapped_column(String(128))
    # The SLA stage the case is in (accept, sign, handle, respond, resolve_call) and when it is due.
    stage: Mapped[str] = mapped_column(String(16), default="accept")
    stage_started_at: Mapped[datetime | None]
    stage_due: Mapped[datetime | None]
    stage_warned: Mapped[bool] = mapped_column(default=False)
    breaches: Mapped[int] = mapped_column(Integer, default=0)
    suspended_at: Mapped[datetime | None]
    closed_at: Mapped[datetime | None]
    merged_into: Mapped[int | None] = mapped_column(ForeignKey("cases.id"))
    # Personal data of a reporter: never in list endpoints (see api/routes/cases.py).
    reporter_phone: Mapped[str | None] = mapped_column(String(32))

    events: Mapped[list[CaseEvent]] = relationship(back_populates="case", order_by="CaseEvent.id")
    evidence: Mapped[list[Evidence]] = relationship(back_populates="case", order_by="Evidence.id")

    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012 - optimistic locking


class CaseEvent(Base):
    __tablename__ = "case_events"
    # Events of one kind in a period (a quarter's call-ups, for the departments' KPIs): by kind, then time.
    __table_args__ = (Index("ix_case_events_action_at", "action", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    at: Mapped[datetime]
    actor: Mapped[str] = mapped_column(String(128))
    action: Mapped[str] = mapped_column(String(32))
    from_state: Mapped[str | None] = mapped_column(String(16))
    to_state: Mapped[str | None] = mapped_column(String(16))
    note: Mapped[str] = mapped_column(Text, default="")
    # Structured facts of the event (reason codes, approver, rating, ...): KPIs are computed from these.
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)

    case: Mapped[Case] = relationship(back_populates="events")


# An automatic order (at a breach) is due to be answered a day after it is issued: clock time, so the
# same on every store and for every unit; a manual order names its own deadline.
AUTO_ANSWER_WINDOW = timedelta(days=1)


def _auto_answer_due(context: Any) -> datetime:
    issued: datetime = context.get_current_parameters()["issued_at"]
    return issued + AUTO_ANSWER_WINDOW


class SupervisionOrder(Base):
    """督办: issued when a stage deadline passes (a second breach escalates to the unit's leader), or by
    a district or town operator (``kind`` manual) with a reason and a deadline; the target unit answers."""

    __tablename__ = "supervision_orders"
    __table_args__ = (Index("ix_supervision_orders_unit_issued", "unit", "issued_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    issued_at: Mapped[datetime]
    stage: Mapped[str] = mapped_column(String(16))
    level: Mapped[int]  # 1: the assignee's unit; 2: escalated to its leader
    addressed_to: Mapped[str] = mapped_column(String(128))
    unit: Mapped[str] = mapped_column(String(64))  # the unit the breach counts against, or the target
    kind: Mapped[str] = mapped_column(String(8), default="auto", server_default="auto")  # auto | manual
    issued_by: Mapped[str] = mapped_column(String(128), default="system:sla", server_default="system:sla")
    reason: Mapped[str | None] = mapped_column(String(500))  # a manual order's; none at a breach
    due_at: Mapped[datetime] = mapped_column(default=_auto_answer_due)  # the answer is due by then
    answered_at: Mapped[datetime | None]
    answered_by: Mapped[str | None] = mapped_column(String(128))
    answer: Mapped[str | None] = mapped_column(String(2000))


class Evidence(Base):
    """An immutable snapshot of what made the system open or join a case.

    Written once when an alert opens or joins a case; a later alert adds its own row. The ORM refuses
    to flush a change to a stored row (see ``_refuse_update``).
    """

    __tablename__ = "case_evidence"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    alert_fingerprint: Mapped[str] = mapped_column(String(256))
    rule_id: Mapped[str] = mapped_column(String(64))
    rule_version: Mapped[int]
    device: Mapped[str] = mapped_column(String(64))
    building: Mapped[str | None] = mapped_column(String(64))
    location: Mapped[str] = mapped_column(String(256))
    observed: Mapped[dict[str, Any]]
    observed_at: Mapped[datetime]
    # The readings of the rule's field the engine had seen when the alert fired, oldest first, the
    # triggering one included: [[ts_ms, value], ...]. It outlives the time series' retention. None for
    # event, timer and composite rules, and for rows written before the window was kept.
    readings: Mapped[list[list[Any]] | None] = mapped_column(JSON)

    case: Mapped[Case] = relationship(back_populates="evidence")

    @classmethod
    def __declare_last__(cls) -> None:
        event.listen(cls, "before_update", cls._refuse_update)

    @staticmethod
    def _refuse_update(mapper: Any, connection: Any, target: Evidence) -> None:
        session = object_session(target)
        if session is not None and session.is_modified(target, include_collections=False):
            raise EvidenceImmutable(f"evidence {target.id} of case {target.case_id} cannot be changed")


class EvidenceImmutable(Exception):
    """Something tried to change a case's evidence after it was written."""


class PersonOverride(Base):
    """A person added, changed or deactivated through the API; overrides config/organisation.yaml."""

    __tablename__ = "org_people"

    username: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    role: Mapped[str] = mapped_column(String(32))
    unit: Mapped[str] = mapped_column(String(64))
    leader: Mapped[bool] = mapped_column(default=False)
    reports_to: Mapped[str | None] = mapped_column(String(64))
    phone: Mapped[str | None] = mapped_column(String(32))
    active: Mapped[bool] = mapped_column(default=True)  # deactivated, not deleted: cases keep their names
    updated_by: Mapped[str] = mapped_column(String(128))
    updated_at: Mapped[datetime]


class DepartmentOverride(Base):
    """A district department added or changed through the API; overrides config/organisation.yaml."""

    __tablename__ = "org_departments"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    categories: Mapped[list[str]] = mapped_column(JSON)
    head: Mapped[str | None] = mapped_column(String(64))
    updated_by: Mapped[str] = mapped_column(String(128))
    updated_at: Mapped[datetime]


class CategoryOverride(Base):
    """A case category created or changed through the API; overrides config/categories.yaml.

    ``revision`` grows by one with every change of the row, so the sum over the table changes with any
    change anywhere: the one number other processes poll.
    """

    __tablename__ = "case_categories"

    code: Mapped[str] = mapped_column(String(64), primary_key=True)
    name_zh: Mapped[str] = mapped_column(String(64))
    name_en: Mapped[str] = mapped_column(String(128))
    sla_hours: Mapped[dict[str, Any]] = mapped_column(JSON)  # urgency -> hours, every urgency
    accept_minutes: Mapped[float] = mapped_column(Float)
    sign_minutes: Mapped[float] = mapped_column(Float)
    clock: Mapped[str] = mapped_column(String(16))
    department: Mapped[str | None] = mapped_column(String(64))
    revision: Mapped[int] = mapped_column(Integer)
    updated_by: Mapped[str] = mapped_column(String(128))
    updated_at: Mapped[datetime]
