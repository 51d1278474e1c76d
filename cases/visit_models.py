"""Tables for return visits (回访) and in-app notifications (#22).

- ``visit_attempts``: every call to a resident, also those that did not reach them (the workflow's
  ``visit`` event is written once, when an outcome is final: reached, or unreachable too many times).
- ``reporter_phone_views``: who was shown which case's reporter phone number, and when (personal data:
  every showing is kept, for the audit).
- ``inapp_notifications``: what the console's bell tells each user, one row per person and case event.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from common.db import Base


class VisitAttempt(Base):
    __tablename__ = "visit_attempts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    at: Mapped[datetime]
    actor: Mapped[str] = mapped_column(String(128))
    outcome: Mapped[str] = mapped_column(String(24))
    note: Mapped[str] = mapped_column(Text, default="")
    attachments: Mapped[list[int]] = mapped_column(JSON, default=list)


class ReporterPhoneView(Base):
    __tablename__ = "reporter_phone_views"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(index=True)
    viewer: Mapped[str] = mapped_column(String(128))
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    via: Mapped[str] = mapped_column(String(16))  # api | console


class InAppNotification(Base):
    __tablename__ = "inapp_notifications"
    __table_args__ = (
        UniqueConstraint("username", "event_id", name="uq_inapp_notifications_user_event"),
        # The bell: one user's latest first; and the pruning by age.
        Index("ix_inapp_notifications_user_id", "username", "id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(String(128))
    event_id: Mapped[int] = mapped_column(Integer)
    case_id: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(16))  # assign | sla_warning | supervise
    # What the message says, frozen when it was made (category, grid, deadline, unit, stage).
    facts: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(index=True)
    read_at: Mapped[datetime | None]


# Every model declared here, for cases/schema.py (tables are created from this list).
MODELS: tuple[type[Base], ...] = (VisitAttempt, ReporterPhoneView, InAppNotification)
