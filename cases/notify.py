"""Notifications through an outbox: at-least-once, retried, with an idempotency key per delivery.

A sweeper turns new case events into outbox rows (one per channel that wants them), in the same
database, so nothing is lost between "the case changed" and "someone was told"; a sender delivers
due rows and retries failures with backoff. Receivers deduplicate on the ``Idempotency-Key`` header.
Formats: a generic JSON webhook, WeCom (企业微信) and DingTalk (钉钉) group robots. A group chat is
read by everyone in it, so its messages carry the case number, category, grid and deadline, never what
a resident wrote (title, location, description) nor their phone; every text from configuration is
escaped, so nothing in it can format the message or @-mention anyone.

What is sent and when is configurable per role: ``roles`` in ``notifications.yaml`` lists the actions
each role hears about, for the cases that concern its people (see ``concerned``); a channel with
``roles`` carries them — the people are @-mentioned by phone on WeCom/DingTalk and listed on a webhook.
Who is concerned is resolved when the event is swept and frozen into the row, so a retry sends the
same message; there is still one row per channel and event, under the same idempotency key.

Beside the webhook channels, ``in_app`` (``cases.inapp``) fills the console's bell per user, with no
webhook at all: the same sweep writes its rows.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import httpx
from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import JSON, Engine, Integer, String, Text, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from cases.categories import Category
from cases.inapp import InAppConfig, InAppSink
from cases.models import Case, CaseEvent
from cases.organisation import DISTRICT_STAFF, Organisation, Person, Role
from cases.policy import CasePolicy
from common.db import Base, UtcDateTime
from common.redact import redact
from contract.catalog import load_model

log = logging.getLogger(__name__)
MAX_ATTEMPTS = 12


class Channel(BaseModel):
    # A robot's URL is its credential (WeCom ?key=, DingTalk ?access_token=): kept out of reprs and of
    # validation errors, which are logged.
    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    id: str
    kind: Literal["webhook", "wecom", "dingtalk"]
    url: str = Field(repr=False)
    console_url: str | None = Field(
        default=None, description="The console's address (https://host): messages link to the case there."
    )
    actions: list[str] = Field(
        default_factory=list, description="Case event actions to send, e.g. opened, supervise, sla_warning."
    )
    categories: list[str] | None = Field(
        default=None, description="Only these case categories (default: all)."
    )
    roles: list[Role] = Field(
        default_factory=list,
        description="Also tell the people of these roles what their role subscribes to (`roles`).",
    )


class NotificationConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)  # channel URLs

    channels: list[Channel] = Field(default_factory=list)
    roles: dict[Role, list[str]] = Field(
        default_factory=dict, description="Per role: the case event actions its people are told about."
    )
    in_app: InAppConfig = Field(default_factory=InAppConfig, description="The console's bell, per user.")

    @model_validator(mode="after")
    def _channel_roles_subscribe(self) -> NotificationConfig:
        ids = [c.id for c in self.channels]
        if len(set(ids)) != len(ids):
            raise ValueError("channels: an id appears twice")
        for channel in self.channels:
            silent = sorted(set(channel.roles) - set(self.roles))
            if silent:
                raise ValueError(f"channel {channel.id}: roles {silent} have no subscription under `roles`")
        return self


def load_notifications(config_dir: Path) -> NotificationConfig:
    path = config_dir / "notifications.yaml"
    return load_model(NotificationConfig, path) if path.exists() else NotificationConfig()


def inapp_sink(db: Engine, config: NotificationConfig, policy: CasePolicy) -> InAppSink | None:
    """The bell's sink ``config`` asks for (None when ``in_app`` is off)."""
    if not config.in_app.enabled:
        return None
    return InAppSink(db, lambda: policy.organisation, config.in_app.actions)


def load_channels(config_dir: Path) -> list[Channel]:
    return load_notifications(config_dir).channels


def concerned(event: CaseEvent, case: Case, organisation: Organisation) -> list[Person]:
    """The people a case event concerns, whatever they subscribe to.

    The case's assignee (and whoever asked, for an answer to a request); the operators of the owning
    town (its leader among them, who gets the second supervision order); the handlers of the department
    it was called up to (its head among them); the building heads of its grid, and its grid workers
    while nobody is assigned; district staff.
    """
    assignee = str(event.data.get("assignee") or case.assignee or "")
    department = str(event.data.get("department") or case.department or "")
    # An answer to a field request (#22) concerns whoever asked, even once the case is theirs no more.
    requester = str(event.data.get("requested_by") or "")

    def concerns(p: Person) -> bool:
        if p.username in (assignee, requester) or p.role in DISTRICT_STAFF:
            return True
        if p.role == "town_operator":
            return p.unit == case.owner_town
        if p.role == "department_handler":
            return bool(department) and p.unit == department
        if p.role in ("building_head", "street_steward"):
            return p.unit == case.grid
        return p.role == "grid_worker" and p.unit == case.grid and not assignee

    return [p for p in organisation.people if concerns(p)]


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


# Characters that format Markdown or HTML, link (scheme://) or mention someone (@13900000000, <@all>)
# in WeCom's and DingTalk's renderers, mapped to their full-width forms: they read the same in Chinese
# text and do nothing. Line-start markers (-, +, >, #) cannot act: an escaped text never starts a line.
_INERT = str.maketrans(
    {
        **{c: chr(ord(c) + 0xFEE0) for c in "*_`[]()<>#@!|~\\:&"},
        "\r": " ",
        "\n": " ",
        "\t": " ",
    }
)


def inert(text: str) -> str:
    """``text`` for a group-chat message: one line that cannot format, link or @-mention."""
    printable = "".join(c for c in text if c.isprintable() or c in "\r\n\t")
    return " ".join(printable.translate(_INERT).split())


def chat_text(
    channel: Channel,
    event: CaseEvent,
    case: Case,
    recipients: Sequence[Person] = (),
    category: Category | None = None,
) -> str:
    """A group-chat message: case number, category, grid, deadline and who is concerned, nothing else."""
    name = f"{category.name_zh} {category.name_en}" if category else case.category
    deadline = case.deadline if case.deadline.tzinfo else case.deadline.replace(tzinfo=UTC)
    lines = [
        f"【{inert(name)} #{case.id}】{event.action} · {case.state}",  # both from the workflow table
        f"网格 Grid: {inert(case.grid)}",
        f"期限 Deadline: {deadline.astimezone(UTC):%Y-%m-%d %H:%M} UTC",
    ]
    if channel.console_url:
        lines.append(f"{channel.console_url.rstrip('/')}/console/cases/{case.id}")
    if recipients:
        lines.append("→ " + "、".join(inert(p.name) for p in recipients))
    return "\n".join(lines)


def render(
    channel: Channel,
    event: CaseEvent,
    case: Case,
    recipients: Sequence[Person] = (),
    category: Category | None = None,
) -> dict[str, Any]:
    phones = [p.phone for p in recipients if p.phone]
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
    text = chat_text(channel, event, case, recipients, category)
    if channel.kind == "wecom":
        if phones:  # only a text message @-mentions (by mobile) on a WeCom robot
            return {"msgtype": "text", "text": {"content": text, "mentioned_mobile_list": phones}}
        return {"msgtype": "markdown", "markdown": {"content": text}}
    if channel.kind == "dingtalk":
        # DingTalk shows an @-mention only if the text carries "@<mobile>" as well.
        mentions = "".join(f" @{phone}" for phone in phones)
        body: dict[str, Any] = {
            "msgtype": "markdown",
            "markdown": {"title": f"#{case.id}", "text": text + mentions},
        }
        return body | ({"at": {"atMobiles": phones, "isAtAll": False}} if phones else {})
    if recipients:  # our own JSON: who, never their phone numbers
        facts["recipients"] = [{"username": p.username, "name": p.name, "role": p.role} for p in recipients]
    return facts


class Outbox:
    def __init__(
        self,
        db: Engine,
        channels: list[Channel],
        client: httpx.Client | None = None,
        *,
        subscriptions: Mapping[Role, Sequence[str]] | None = None,
        organisation: Callable[[], Organisation] | None = None,
        categories: Mapping[str, Category] | Callable[[], Mapping[str, Category]] | None = None,
        inapp: InAppSink | None = None,
    ) -> None:
        """``subscriptions``: per role, the actions it is told about; ``organisation``: the one as it
        stands now (e.g. ``lambda: policy.organisation``), needed to find who an event concerns;
        ``categories``: by code, to name a case's category in group chats (else its code), or the
        categories as they stand now (e.g. ``lambda: policy.categories``: new ones are named too);
        ``inapp``: the bell's sink, swept with the channels."""
        self._db, self._channels, self._inapp = db, channels, inapp
        fixed = dict(categories or {}) if not callable(categories) else {}
        self._categories = categories if callable(categories) else lambda: fixed
        self._subscriptions = {role: frozenset(actions) for role, actions in (subscriptions or {}).items()}
        self._organisation = organisation
        self._client = client or httpx.Client(timeout=10)

    @classmethod
    def from_config(cls, db: Engine, config_dir: Path, policy: CasePolicy) -> Outbox | None:
        """The outbox ``notifications.yaml`` asks for, or None when it names no channel and no bell."""
        config = load_notifications(config_dir)
        if not config.channels and not config.in_app.enabled:
            return None
        inapp = inapp_sink(db, config, policy)
        return cls(
            db,
            config.channels,
            subscriptions=config.roles,
            organisation=lambda: policy.organisation,
            categories=lambda: policy.categories,
            inapp=inapp,
        )

    def _recipients(self, event: CaseEvent, case: Case) -> list[Person]:
        """Who the event concerns among the roles that subscribe to its action."""
        if self._organisation is None or not any(event.action in a for a in self._subscriptions.values()):
            return []
        return [
            p
            for p in concerned(event, case, self._organisation())
            if event.action in self._subscriptions.get(p.role, frozenset())
        ]

    def close(self) -> None:
        self._client.close()

    def sweep(self, now: datetime | None = None, batch: int = 500) -> int:
        """Enqueue notifications for case events not swept yet (and fill the bell); returns how many were
        enqueued and written."""
        now = now or datetime.now(UTC)
        told = self._inapp.sweep(now, batch) if self._inapp is not None else 0
        return told + self._sweep_channels(now, batch)

    def _sweep_channels(self, now: datetime, batch: int) -> int:
        enqueued = 0
        with Session(self._db) as session, session.begin():
            mark = session.get(Watermark, "case_events", with_for_update=True)
            if mark is None:
                mark = Watermark(name="case_events", last_event_id=0)
                session.add(mark)
            events = session.scalars(
                select(CaseEvent).where(CaseEvent.id > mark.last_event_id).order_by(CaseEvent.id).limit(batch)
            ).all()
            for event in events:
                case = event.case
                concerned_people = self._recipients(event, case)
                for channel in self._channels:
                    if channel.categories is not None and case.category not in channel.categories:
                        continue
                    recipients = [p for p in concerned_people if p.role in channel.roles]
                    if event.action not in channel.actions and not recipients:
                        continue
                    session.add(
                        OutboxRow(
                            key=f"{channel.id}:{event.id}",
                            channel=channel.id,
                            payload=render(
                                channel, event, case, recipients, self._categories().get(case.category)
                            ),
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
        with Session(self._db) as session:
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
                    # httpx quotes the URL, and a robot's URL is its key: stored and logged redacted.
                    reason = redact(str(err))
                    row.last_error = reason[:500]
                    row.next_attempt_at = now + timedelta(seconds=min(2**row.attempts * 5, 3600))
                    log.warning(
                        "notification %s to %s failed (attempt %d): %s",
                        row.key,
                        row.channel,
                        row.attempts,
                        reason,
                    )
                else:
                    row.sent_at = now
                    sent += 1
                session.commit()
        return sent
