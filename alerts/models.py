"""The alert tables: each alert's current state, its append-only history, and the engine's checkpoints."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from common.db import Base


class Alert(Base):
    """Current state of one alert (rule × scope key); its history is in AlertHistory."""

    __tablename__ = "alerts"

    fingerprint: Mapped[str] = mapped_column(String(256), primary_key=True)
    rule_id: Mapped[str] = mapped_column(String(64), index=True)
    community: Mapped[str] = mapped_column(String(64))
    grid: Mapped[str] = mapped_column(String(64))
    subject: Mapped[str] = mapped_column(String(64))  # device, gateway or grid id
    category: Mapped[str] = mapped_column(String(64))
    severity: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))  # pending | firing | resolved | unknown | inactive
    silenced: Mapped[bool] = mapped_column(default=False)
    inhibited: Mapped[bool] = mapped_column(default=False)
    flapping: Mapped[bool] = mapped_column(default=False)
    started_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    resolved_at: Mapped[datetime | None]
    case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id"))


class AlertHistory(Base):
    """Append-only: every transition of every alert, for rule outcome statistics."""

    __tablename__ = "alert_history"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    fingerprint: Mapped[str] = mapped_column(String(256), index=True)
    rule_id: Mapped[str] = mapped_column(String(64), index=True)
    rule_version: Mapped[int]
    kind: Mapped[str] = mapped_column(String(16))
    at: Mapped[datetime]
    observed_at: Mapped[datetime]
    case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id"))
    opened_case: Mapped[bool] = mapped_column(default=False)
    self_recovered: Mapped[bool] = mapped_column(default=False)
    silenced: Mapped[bool] = mapped_column(default=False)
    inhibited: Mapped[bool] = mapped_column(default=False)


class AlertAcknowledgement(Base):
    """An operator saw an alert and says so, with a note: append-only, and never a change of the
    alert's status (acknowledged is not resolved; the engine alone fires and resolves)."""

    __tablename__ = "alert_acknowledgements"
    __table_args__ = (Index("ix_alert_acknowledgements_fingerprint_at", "fingerprint", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    fingerprint: Mapped[str] = mapped_column(String(256))
    # The alert's case when it was acknowledged (None while it had none), so the note shows on that case.
    case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id"), index=True)
    alert_status: Mapped[str] = mapped_column(String(16))  # the status the operator saw
    actor: Mapped[str] = mapped_column(String(128))
    at: Mapped[datetime]
    note: Mapped[str] = mapped_column(Text)


class EngineCheckpoint(Base):
    """The alert engine's state (pending timers, windows, baselines) per partition of communities."""

    __tablename__ = "alert_engine_checkpoints"

    partition: Mapped[str] = mapped_column(String(256), primary_key=True)
    saved_at: Mapped[datetime]
    state: Mapped[dict[str, Any]]
