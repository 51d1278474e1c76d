"""In-app notifications (the console's bell): the sink beside the webhook channels of ``cases.notify``.

Works out of the box, with no webhook: a sweep turns new case events into one row per person they are
for — a case assigned to them, an 80 % SLA warning on a case they hold, a supervision order (督办) to
the unit they answer for — and the console reads those rows back per user. The sweep keeps its own
watermark, so it runs in the case-clock service and, when the bell asks, in the API too: whichever
comes first writes the rows; the other finds nothing new (a unique (user, event) pair makes a race
harmless). A field worker's request to extend or return a case rings its approvers; the answer rings
the worker. Rows are bounded: 90 days and the newest 500 per user.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Engine, delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from cases.models import Case, CaseEvent
from cases.organisation import Organisation, Person
from cases.visit_models import InAppNotification
from cases.workflow import REQUESTS

REQUEST_KINDS = tuple(REQUESTS)
ANSWER_KINDS = ("extend", "return", "refuse_request")
# A row's kind is its event's action, within the column's 16 characters.
STORED_KIND = {"request_extension": "request_extend"}

log = logging.getLogger(__name__)

KEEP = timedelta(days=90)
KEEP_PER_USER = 500
LATEST = 20  # what the bell shows
WATERMARK = "inapp"
TITLE_CHARS = 80  # a case title is the resident's words: shortened, and always shown as text
# The events the bell can tell of; a deployment may choose fewer (``in_app.actions``).
KINDS = (
    "assign",
    "sla_warning",
    "supervise",
    "supervise_manual",
    *REQUEST_KINDS,  # a worker asks: the case's approvers are told
    *ANSWER_KINDS,  # an approver answers: the worker who asked is told
)
# Who answers for a unit a supervision order targets: its grid worker, town operator or department handler.
_ANSWERS_FOR_UNIT = frozenset({"grid_worker", "town_operator", "department_handler"})


class InAppConfig(BaseModel):
    """``in_app`` in ``notifications.yaml``: off unless the file turns it on (the shipped file does)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = False
    actions: list[str] = Field(
        default_factory=lambda: list(KINDS), description=f"Which of {', '.join(KINDS)} the bell tells of."
    )

    def model_post_init(self, _context: Any) -> None:
        unknown = sorted(set(self.actions) - set(KINDS))
        if unknown:
            raise ValueError(f"in_app.actions: {unknown} are not told in-app; choose from {', '.join(KINDS)}")


def recipients(event: CaseEvent, case: Case, organisation: Organisation) -> list[str]:
    """The usernames the bell tells of ``event``: an assignment its assignee; a warning whoever holds the
    case (its assignee, else the grid's workers; the department's handlers while it is called up); a
    supervision order the people who answer for the unit (and the person it is addressed to)."""
    people = organisation.people
    if event.action == "assign":
        assignee = str(event.data.get("assignee") or case.assignee or "")
        return [assignee] if assignee else []
    if event.action == "sla_warning":
        holder = str(event.data.get("assignee") or case.assignee or "")
        named = [holder] if holder else [p.username for p in people if _grid_worker_of(p, case.grid)]
        if case.state == "CALLED_UP" and case.department:
            named += [p.username for p in people if _handler_of(p, case.department)]
        return _unique(named)
    if event.action in REQUEST_KINDS:
        return approvers(case, organisation)
    if event.action in ANSWER_KINDS:
        # Only an answer to a request rings: an operator extending on their own tells nobody here.
        return _unique([str(event.data.get("requested_by") or "")])
    if event.action in ("supervise", "supervise_manual"):
        unit = str(event.data.get("unit") or "")
        addressed = str(event.data.get("addressed_to") or "")
        return _unique(
            p.username
            for p in people
            if (p.unit == unit and p.role in _ANSWERS_FOR_UNIT) or (addressed and p.username == addressed)
        )
    return []


def approvers(case: Case, organisation: Organisation) -> list[str]:
    """Who answers a field request on ``case``: the operators of the town that owns it; the district's
    operators when that town has none."""
    people = organisation.people
    town = [p.username for p in people if p.role == "town_operator" and p.unit == case.owner_town]
    district = [p.username for p in people if p.role == "district_operator"]
    return _unique(town or district)


def _grid_worker_of(person: Person, grid: str) -> bool:
    return person.role == "grid_worker" and person.unit == grid


def _handler_of(person: Person, department: str) -> bool:
    return person.role == "department_handler" and person.unit == department


def _unique(names: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(n for n in names if n))


def facts_of(event: CaseEvent, case: Case) -> dict[str, Any]:
    """What a message says, frozen now: the case as it was when the event happened."""
    deadline = case.deadline if case.deadline.tzinfo else case.deadline.replace(tzinfo=UTC)
    return {
        "category": case.category,
        "grid": case.grid,
        "title": case.title[:TITLE_CHARS],
        "deadline": deadline.isoformat(),
        "stage": str(event.data.get("stage") or case.stage),
        "unit": str(event.data.get("unit") or ""),
    }


class InAppSink:
    def __init__(
        self, db: Engine, organisation: Callable[[], Organisation], actions: Sequence[str] = KINDS
    ) -> None:
        """``organisation``: the one as it stands now (e.g. ``lambda: policy.organisation``)."""
        self._db, self._organisation, self._actions = db, organisation, tuple(actions)

    def sweep(self, now: datetime | None = None, batch: int = 500) -> int:
        """Rows for the case events not swept yet; returns how many were written (0 when another
        sweeper wrote them first)."""
        now = now or datetime.now(UTC)
        try:
            return self._sweep(now, batch)
        except IntegrityError:
            # Two sweepers read the same watermark (SQLite has no row lock): the first one's rows stand.
            log.debug("in-app sweep raced another sweeper; its rows stand")
            return 0

    def _sweep(self, now: datetime, batch: int) -> int:
        from cases.notify import Watermark  # the outbox's table of watermarks, one row per sweeper

        written = 0
        touched: set[str] = set()
        with Session(self._db) as session, session.begin():
            mark = session.get(Watermark, WATERMARK, with_for_update=True)
            if mark is None:
                mark = Watermark(name=WATERMARK, last_event_id=self._start(session))
                session.add(mark)
            events = session.scalars(
                select(CaseEvent).where(CaseEvent.id > mark.last_event_id).order_by(CaseEvent.id).limit(batch)
            ).all()
            organisation = self._organisation() if events else None
            for event in events:
                mark.last_event_id = event.id
                if event.action not in self._actions or organisation is None:
                    continue
                case = event.case
                facts = facts_of(event, case)
                for username in recipients(event, case, organisation):
                    session.add(
                        InAppNotification(
                            username=username,
                            event_id=event.id,
                            case_id=case.id,
                            kind=STORED_KIND.get(event.action, event.action),
                            facts=facts,
                            created_at=now,
                        )
                    )
                    touched.add(username)
                    written += 1
            session.flush()
            prune(session, now, touched)
        return written

    @staticmethod
    def _start(session: Session) -> int:
        """A first sweep starts a fortnight back: a new deployment does not ring for its whole history."""
        since = datetime.now(UTC) - timedelta(days=14)
        before = session.scalar(select(func.max(CaseEvent.id)).where(CaseEvent.at < since))
        return int(before or 0)


def prune(session: Session, now: datetime, usernames: Iterable[str] = ()) -> None:
    """Keep 90 days, and the newest 500 of each of ``usernames``."""
    session.execute(delete(InAppNotification).where(InAppNotification.created_at < now - KEEP))
    for username in usernames:
        oldest_kept = session.scalar(
            select(InAppNotification.id)
            .where(InAppNotification.username == username)
            .order_by(InAppNotification.id.desc())
            .offset(KEEP_PER_USER - 1)
            .limit(1)
        )
        if oldest_kept is not None:
            session.execute(
                delete(InAppNotification).where(
                    InAppNotification.username == username, InAppNotification.id < oldest_kept
                )
            )


@dataclass(frozen=True)
class Notification:
    id: int
    case_id: int
    kind: str
    facts: dict[str, Any]
    at: datetime
    read: bool


def latest(db: Engine, username: str, limit: int = LATEST) -> tuple[int, list[Notification]]:
    """The user's unread count and newest notifications."""
    with Session(db) as session:
        unread = session.scalar(
            select(func.count())
            .select_from(InAppNotification)
            .where(InAppNotification.username == username, InAppNotification.read_at.is_(None))
        )
        rows = session.scalars(
            select(InAppNotification)
            .where(InAppNotification.username == username)
            .order_by(InAppNotification.id.desc())
            .limit(limit)
        ).all()
        items = [
            Notification(r.id, r.case_id, r.kind, dict(r.facts), r.created_at, r.read_at is not None)
            for r in rows
        ]
    return int(unread or 0), items


def mark_read(
    db: Engine, username: str, ids: Sequence[int] | None = None, now: datetime | None = None
) -> int:
    """Mark the user's notifications read (``ids`` None: all of them); returns how many changed."""
    now = now or datetime.now(UTC)
    where = [InAppNotification.username == username, InAppNotification.read_at.is_(None)]
    if ids is not None:
        where.append(InAppNotification.id.in_(list(ids)))
    with Session(db) as session, session.begin():
        result = session.execute(update(InAppNotification).where(*where).values(read_at=now))
        return int(getattr(result, "rowcount", 0) or 0)
