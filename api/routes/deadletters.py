"""Dead letters an operator can act on: listed by gateway and reason, payloads shown safely as text,
and marked for replay once their cause is fixed (a device registered since, for one).

The table is ingest's (ingest/deadletters.py) and the API may not import ingest: it reads and marks the
rows through the lightweight view below (tests/api/test_dead_letters_api.py checks it against ingest's
definition). Ingest does the replay itself — the API only marks; ingest's replayer runs marked letters
through its normal path, deletes those stored and records the new reason on those refused again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query, status
from pydantic import BaseModel, Field, model_validator
from sqlalchemy import ColumnElement, Engine, and_, case, column, func, inspect, select, table, update
from sqlalchemy.types import DateTime, Integer, LargeBinary, String, Text

from api.accounts import User
from api.deps import CurrentUser, ResourcesDep
from api.params import MAX_ROW_ID
from api.scope import may_handle_dead_letters

router = APIRouter(prefix="/api/v1/dead-letters", tags=["dead letters"])

TABLE = "ingest_dead_letters"
dead_letters = table(
    TABLE,
    column("id", Integer),
    column("received_at", DateTime(timezone=True)),
    column("topic", String),
    column("reason", Text),
    column("payload", LargeBinary),
    column("replay_requested_at", DateTime(timezone=True)),
    column("replayed_at", DateTime(timezone=True)),
    column("replay_outcome", String),
)
SHOWN_PAYLOAD_BYTES = 2048
REPLAY_MAX = 1000
"""Letters one request may mark: a replay is work for ingest, asked for in bounded steps."""
GROUPS_MAX = 500
GATEWAY_ID = r"^[a-z0-9-]{1,64}$"

ReasonClass = Literal[
    "retained",
    "unknown_event_kind",
    "unknown_device",
    "retired_device",
    "store_rejected",
    "bad_topic",
    "bad_json",
    "invalid",
]
ReplayState = Literal["marked", "replaying", "refused"]


def _reason_class() -> ColumnElement[str]:
    """The reason's class, as ingest's /metrics labels it (ingest.metrics.reason_class), in SQL."""
    reason, lower = dead_letters.c.reason, func.lower(dead_letters.c.reason)
    return case(
        (reason.like("retained message%"), "retained"),
        (reason.contains("unknown event kind"), "unknown_event_kind"),
        (reason.contains("unknown device"), "unknown_device"),
        (reason.contains("retired device"), "retired_device"),
        (reason.contains("rejected by the time-series store"), "store_rejected"),
        (reason.contains("ingest takes telemetry") | lower.contains("topic"), "bad_topic"),
        (lower.contains("json") | lower.contains("parse"), "bad_json"),
        else_="invalid",
    )


def _place(topic: str) -> tuple[str, str]:
    """(community, gateway) of a contract topic; empty for a topic that is none."""
    parts = topic.split("/")
    if len(parts) == 5 and parts[:2] == ["yiwang", "v1"]:
        return parts[2], parts[3]
    return "", ""


class DeadLetterGroup(BaseModel):
    community: str = Field(description="Empty when the topic names none (a bad topic).")
    gateway: str
    reason_class: str
    count: int
    marked: int = Field(description="Of them, marked for replay and not yet taken by ingest.")


class DeadLetterOut(BaseModel):
    id: int
    received_at: datetime
    topic: str
    community: str
    gateway: str
    reason: str
    reason_class: str
    payload: str = Field(
        description=f"The payload as text (UTF-8, undecodable bytes replaced), its first "
        f"{SHOWN_PAYLOAD_BYTES} bytes: data, never markup."
    )
    payload_bytes: int = Field(description="Bytes kept of the payload.")
    payload_cut: bool = Field(description="Only the start of the payload is shown.")
    replay: ReplayState | None = Field(
        description="marked: waiting for ingest; replaying: taken; refused: replayed and refused again."
    )
    replayed_at: datetime | None


class DeadLetterPage(BaseModel):
    groups: list[DeadLetterGroup] = Field(description="Every matching letter counted by gateway and reason.")
    letters: list[DeadLetterOut] = Field(description="The newest matching letters.")
    next_before: int | None = Field(description="Pass as `before` for older letters; none: no more.")


@dataclass(frozen=True, slots=True)
class DeadLetterFilter:
    gateway: str | None = None
    reason_class: str | None = None

    def where(self) -> ColumnElement[bool]:
        conditions: list[ColumnElement[bool]] = []
        if self.gateway:
            # Gateway ids are [a-z0-9-]: nothing in one is a LIKE wildcard.
            conditions.append(dead_letters.c.topic.like(f"yiwang/v1/%/{self.gateway}/%"))
        if self.reason_class:
            conditions.append(_reason_class() == self.reason_class)
        return and_(True, *conditions)


def _utc(value: Any) -> Any:
    return value.replace(tzinfo=UTC) if isinstance(value, datetime) and value.tzinfo is None else value


def _replay_state(requested: datetime | None, outcome: str | None) -> ReplayState | None:
    if requested is not None:
        return "marked"
    if outcome == "refused":
        return "refused"
    return "replaying" if outcome else None


def _has_table(db: Engine) -> bool:
    """Ingest (or the migrations) create the table; an API started before either has no letters."""
    return inspect(db).has_table(TABLE)


def dead_letter_groups(db: Engine, where: DeadLetterFilter) -> list[DeadLetterGroup]:
    if not _has_table(db):
        return []
    c, reason_class = dead_letters.c, _reason_class().label("reason_class")
    query = (
        select(c.topic, reason_class, func.count().label("n"), func.count(c.replay_requested_at).label("m"))
        .where(where.where())
        .group_by(c.topic, reason_class)
    )
    with db.connect() as conn:
        rows = conn.execute(query).all()
    groups: dict[tuple[str, str, str], list[int]] = {}
    for row in rows:
        counts = groups.setdefault((*_place(row.topic), row.reason_class), [0, 0])
        counts[0] += row.n
        counts[1] += row.m
    ordered = sorted(groups.items(), key=lambda g: (-g[1][0], g[0]))[:GROUPS_MAX]
    return [
        DeadLetterGroup(community=k[0], gateway=k[1], reason_class=k[2], count=n, marked=m)
        for k, (n, m) in ordered
    ]


def dead_letter_page(
    db: Engine, where: DeadLetterFilter, limit: int, before: int | None = None
) -> list[DeadLetterOut]:
    """The newest ``limit`` matching letters (older than letter ``before``), payloads cut and as text."""
    if not _has_table(db):
        return []
    c = dead_letters.c
    query = select(
        c.id,
        c.received_at,
        c.topic,
        c.reason,
        func.substr(c.payload, 1, SHOWN_PAYLOAD_BYTES).label("shown"),
        func.length(c.payload).label("size"),
        c.replay_requested_at,
        c.replayed_at,
        c.replay_outcome,
        _reason_class().label("reason_class"),
    ).where(where.where())
    if before is not None:
        query = query.where(c.id < before)
    with db.connect() as conn:
        rows = conn.execute(query.order_by(c.id.desc()).limit(limit)).all()
    return [_letter(r) for r in rows]


def _letter(row: Any) -> DeadLetterOut:
    community, gateway = _place(row.topic)
    shown = bytes(row.shown)
    return DeadLetterOut(
        id=row.id,
        received_at=_utc(row.received_at),
        topic=row.topic,
        community=community,
        gateway=gateway,
        reason=row.reason,
        reason_class=row.reason_class,
        payload=shown.decode("utf-8", errors="replace"),
        payload_bytes=row.size,
        payload_cut=row.size > len(shown),
        replay=_replay_state(row.replay_requested_at, row.replay_outcome),
        replayed_at=_utc(row.replayed_at),
    )


def mark_for_replay(db: Engine, *, ids: list[int] | None, where: DeadLetterFilter, limit: int) -> int:
    """Mark up to ``limit`` letters (by id, else those matching, oldest first) not already marked."""
    if not _has_table(db):
        return 0
    c = dead_letters.c
    chosen = select(c.id).where(c.replay_requested_at.is_(None))
    chosen = chosen.where(c.id.in_(ids)) if ids is not None else chosen.where(where.where())
    subquery = chosen.order_by(c.id).limit(limit).scalar_subquery()
    with db.begin() as conn:
        marked = conn.execute(
            update(dead_letters)
            .where(c.id.in_(subquery))
            .values(replay_requested_at=datetime.now(UTC), replay_outcome=None)
        ).rowcount
    return int(marked)


def require_dead_letter_access(user: User) -> None:
    if not may_handle_dead_letters(user):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "dead letters are for district staff")


@router.get("", response_model=DeadLetterPage, responses={403: {"description": "Not district staff"}})
def list_dead_letters(
    resources: ResourcesDep,
    user: CurrentUser,
    gateway: Annotated[str | None, Query(pattern=GATEWAY_ID)] = None,
    reason_class: Annotated[ReasonClass | None, Query(alias="reason")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    before: Annotated[int | None, Query(ge=1, le=MAX_ROW_ID)] = None,
) -> DeadLetterPage:
    """Dead letters by gateway and reason, and the newest of them."""
    require_dead_letter_access(user)
    where = DeadLetterFilter(gateway, reason_class)
    letters = dead_letter_page(resources.db, where, limit, before)
    return DeadLetterPage(
        groups=dead_letter_groups(resources.db, where),
        letters=letters,
        next_before=letters[-1].id if len(letters) == limit else None,
    )


class ReplayRequest(BaseModel):
    ids: list[Annotated[int, Field(ge=1, le=MAX_ROW_ID)]] | None = Field(
        default=None, max_length=REPLAY_MAX, description="These letters; else those matching the filter."
    )
    gateway: str | None = Field(default=None, pattern=GATEWAY_ID)
    reason_class: ReasonClass | None = Field(default=None, alias="reason")
    limit: int = Field(default=REPLAY_MAX, ge=1, le=REPLAY_MAX, description="The most to mark at once.")

    @model_validator(mode="after")
    def _names_some_letters(self) -> ReplayRequest:
        if self.ids is None and self.gateway is None and self.reason_class is None:
            raise ValueError("name the letters: ids, or a gateway and/or a reason")
        return self


class ReplayAccepted(BaseModel):
    marked: int = Field(description="Letters marked; ingest replays them within seconds.")


@router.post(
    "/replay",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=ReplayAccepted,
    responses={403: {"description": "Not district staff"}},
)
def replay(request: ReplayRequest, resources: ResourcesDep, user: CurrentUser) -> ReplayAccepted:
    """Mark letters for replay (at most 1,000 a request); ingest runs them through its normal path,
    removes each once stored and records the new reason on each refused again."""
    require_dead_letter_access(user)
    where = DeadLetterFilter(request.gateway, request.reason_class)
    return ReplayAccepted(
        marked=mark_for_replay(resources.db, ids=request.ids, where=where, limit=request.limit)
    )
