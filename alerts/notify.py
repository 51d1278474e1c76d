"""Notifications through an outbox: at-least-once, retried, with an idempotency key per delivery.

A sweeper turns new case events into outbox rows (one per channel that wants them), in the same
database, so nothing is lost between "the case changed" and "someone was told"; a sender delivers
due rows and retries failures with backoff. Receivers deduplicate on the ``Idempotency-Key`` header.
Formats: a generic JSON webhook, WeCom (企业微信) and DingTalk (钉钉) group robots.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import httpx
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import JSON, Engine, Integer, String, Text, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from alerts.models import Base, Case, CaseEvent, UtcDateTime
from contract.catalog import load_model

log = logging.getLogger(__name__)
MAX_ATTEMPTS = 12


class Channel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    kind: Literal["webhook", "wecom", "dingtalk"]
    url: str
    actions: list[str] = Field(description="Case event actions to send, e.g. opened, supervise, sla_warning.")
    categories: list[str] | None = Field(
        default=None, description="Only these case categories (default: all)."
    )


class NotificationConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    channels: list[Channel] = Field(default_factory=list)


def load_channels(config_dir: Path) -> list[Channel]:
    path = config_dir / "notifications.yaml"
    return load_model(NotificationConfig, path).channels if path.exists() else []


class OutboxRow(Base):
    __tablename__ = "notification_outbox"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(128), unique=True)  # channel:event id
    channel: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    next_attempt_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    sent_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    last_error: Mapped[str] = mapped_column(Text, default="")


class Watermark(Base):
    __tablename__ = "notification_watermark"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    last_event_id: Mapped[int] = mapped_column(Integer)


def render(channel: Channel, event: CaseEvent, case: Case) -> dict[str, Any]:
    text = f"【{case.title}】{event.action} · {case.state}" + (f"\n{event.note}" if event.note else "")
    facts = {
        "case_id": case.id,
        "action": event.action,
        "state": case.state,
        "category": case.category,
        "grid": case.grid,
        "community": case.community,
        "title": case.title,
        "note": event.note,
        "at": event.at.isoformat(),
        "deadline": case.deadline.isoformat(),
    }
    if channel.kind == "wecom":
        return {"msgtype": "markdown", "markdown": {"content": text}}
    if channel.kind == "dingtalk":
        return {"msgtype": "markdown", "markdown": {"title": case.title, "text": text}}
    return facts


class Outbox:
    def __init__(self, engine: Engine, channels: list[Channel], client: httpx.Client | None = None) -> None:
        self._engine, self._channels = engine, channels
        self._client = client or httpx.Client(timeout=10)

    def close(self) -> None:
        self._client.close()

    def sweep(self, now: datetime | None = None, batch: int = 500) -> int:
        """Enqueue notifications for case events not swept yet; returns how many were enqueued."""
        now = now or datetime.now(UTC)
        enqueued = 0
        with Session(self._engine) as session, session.begin():
            mark = session.get(Watermark, "case_events", with_for_update=True)
            if mark is None:
                mark = Watermark(name="case_events", last_event_id=0)
                session.add(mark)
            events = session.scalars(
                select(CaseEvent).where(CaseEvent.id > mark.last_event_id).order_by(CaseEvent.id).limit(batch)
            ).all()
            for event in events:
                case = event.case
                for channel in self._channels:
                    if event.action not in channel.actions:
                        continue
                    if channel.categories is not None and case.category not in channel.categories:
                        continue
                    session.add(
                        OutboxRow(
                            key=f"{channel.id}:{event.id}",
                            channel=channel.id,
                            payload=render(channel, event, case),
                            created_at=now,
                            next_attempt_at=now,
                        )
                    )
                    enqueued += 1
                mark.last_event_id = event.id
        return enqueued

    def deliver(self, now: datetime | None = None, batch: int = 50) -> int:
        """Send what is due; failures are retried with exponential backoff. Returns how many were sent."""
        now = now or datetime.now(UTC)
        urls = {c.id: c.url for c in self._channels}
        sent = 0
        with Session(self._engine) as session:
            due = session.scalars(
                select(OutboxRow)
                .where(
                    OutboxRow.sent_at.is_(None),
                    OutboxRow.next_attempt_at <= now,
                    OutboxRow.attempts < MAX_ATTEMPTS,
                )
                .order_by(OutboxRow.id)
                .limit(batch)
            ).all()
            for row in due:
                row.attempts += 1
                try:
                    response = self._client.post(
                        urls[row.channel], json=row.payload, headers={"Idempotency-Key": row.key}
                    )
                    response.raise_for_status()
                except (httpx.HTTPError, KeyError) as err:
                    row.last_error = str(err)[:500]
                    row.next_attempt_at = now + timedelta(seconds=min(2**row.attempts * 5, 3600))
                    log.warning(
                        "notification %s to %s failed (attempt %d): %s",
                        row.key,
                        row.channel,
                        row.attempts,
                        err,
                    )
                else:
                    row.sent_at = now
                    sent += 1
                session.commit()
        return sent
