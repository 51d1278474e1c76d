"""The bell's data: the signed-in user's notifications in words of their language, for the console
(``/console/notifications.json``, session and CSRF) and the API (``api/routes/notifications.py``).

Reading the bell first sweeps new case events into rows (``cases.inapp``), at most once a second per
process, so a worker sees an assignment within seconds whether or not the case-clock service runs.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Body, Request
from pydantic import BaseModel, ConfigDict, Field

from api.accounts import User
from api.console.i18n import TEXT
from api.console.names import Names
from api.console.web import ConsoleUser, check_csrf, language
from api.deps import Resources, ResourcesDep
from api.params import MAX_ROW_ID
from cases.inapp import LATEST, InAppSink, Notification, latest, mark_read
from cases.notify import NotificationConfig, inapp_sink, load_notifications

router = APIRouter(include_in_schema=False)
SWEEP_EVERY_S = 1.0
MAX_IDS = 500  # a read request names at most this many notifications (the most a user keeps)


class ReadRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    ids: list[Annotated[int, Field(ge=1, le=MAX_ROW_ID)]] | None = Field(
        default=None, max_length=MAX_IDS, description="Notifications to mark read; none given: all of them."
    )


class NotificationOut(BaseModel):
    id: int
    case_id: int
    kind: str = Field(description="assign, sla_warning, supervise or supervise_manual")
    text: str = Field(description="The message in the requested language: plain text, never markup")
    at: datetime
    when: str = Field(description="``at`` in the deployment's time zone, as the console shows it")
    read: bool
    url: str = Field(description="The case's console page")


class BellOut(BaseModel):
    unread: int
    items: list[NotificationOut]


@lru_cache(maxsize=8)
def _config(config_dir: Path) -> NotificationConfig:
    return load_notifications(config_dir)


class _SweepGate:
    """One sweep at a time per process, and none more often than ``SWEEP_EVERY_S``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last = 0.0

    def sweep(self, sink: InAppSink) -> None:
        if time.monotonic() - self._last < SWEEP_EVERY_S or not self._lock.acquire(blocking=False):
            return
        try:
            sink.sweep()
            self._last = time.monotonic()
        finally:
            self._lock.release()


_gate = _SweepGate()


def sweep_now(resources: Resources) -> None:
    """Bring the user's rows up to date (when the deployment turns the bell on)."""
    sink = inapp_sink(resources.db, _config(resources.settings.config_dir), resources.policy)
    if sink is not None:
        _gate.sweep(sink)


def words(note: Notification, lang: str, names: Names, zone: ZoneInfo) -> str:
    """The message in ``lang``: the case's title and everything else as plain text (shown as text)."""
    facts = note.facts
    template = TEXT[lang].get(f"notif_{note.kind}", TEXT[lang]["notif_assign"])
    deadline = datetime.fromisoformat(str(facts.get("deadline") or note.at.isoformat()))
    return template.format(
        case=note.case_id,
        category=names.category(str(facts.get("category", ""))),
        grid=names.grid(str(facts.get("grid", ""))),
        title=str(facts.get("title", "")),
        stage=names.stage(str(facts.get("stage", ""))),
        unit=names.unit(str(facts.get("unit", ""))),
        deadline=deadline.astimezone(zone).strftime("%m-%d %H:%M"),
    )


def bell_of(resources: Resources, user: User, lang: str) -> BellOut:
    sweep_now(resources)
    unread, items = latest(resources.db, user.username, LATEST)
    names, zone = Names(lang, resources), ZoneInfo(resources.settings.display_timezone)
    return BellOut(
        unread=unread,
        items=[
            NotificationOut(
                id=n.id,
                case_id=n.case_id,
                kind=n.kind,
                text=words(n, lang, names, zone),
                at=n.at,
                when=n.at.astimezone(zone).strftime("%m-%d %H:%M"),
                read=n.read,
                url=f"/console/cases/{n.case_id}",
            )
            for n in items
        ],
    )


def read_them(resources: Resources, user: User, body: ReadRequest) -> dict[str, Any]:
    return {"marked": mark_read(resources.db, user.username, body.ids, datetime.now(UTC))}


@router.get("/console/notifications.json")
def console_bell(request: Request, resources: ResourcesDep, user: ConsoleUser) -> BellOut:
    return bell_of(resources, user, language(request))


@router.post("/console/notifications/read")
def console_read(
    request: Request,
    resources: ResourcesDep,
    user: ConsoleUser,
    body: Annotated[ReadRequest, Body()] = ReadRequest(),  # noqa: B008 - an empty body marks all
) -> dict[str, Any]:
    check_csrf(request, request.headers.get("X-CSRF-Token", ""))
    return read_them(resources, user, body)
