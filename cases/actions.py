"""Cases as people work them: actions with optimistic locking, and cases reported by people.

Two operators acting on the same case at once: the first commit wins, the second gets
VersionConflict (HTTP 409) and re-reads — nothing is silently overwritten. A reported case about the
same grid and category as an open case merges into it, whichever came first.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, selectinload
from sqlalchemy.orm.exc import StaleDataError

from cases.models import OPEN_STATES, Case, CaseEvent, CaseState
from cases.policy import CasePolicy
from cases.rosters import current_roster
from cases.workflow import IllegalTransition, InvalidAction, WorkflowError, apply_action


class CaseNotFound(WorkflowError):
    """No such case (HTTP 404)."""


class VersionConflict(IllegalTransition):
    """Someone changed the case since the caller read it (HTTP 409)."""


@dataclass(frozen=True, slots=True)
class Report:
    """A case reported by a person (console, API, Open311 intake)."""

    community: str
    grid: str
    category: str
    description: str
    location: str = ""
    reporter_phone: str | None = None


def open_case_for(session: Session, community: str, grid: str, category: str, since: datetime) -> Case | None:
    """The open case of a grid and category touched since ``since``: new alerts and reports join it."""
    return session.scalars(
        select(Case)
        .where(
            Case.community == community,
            Case.grid == grid,
            Case.category == category,
            Case.state.in_([s.value for s in OPEN_STATES]),
            Case.updated_at >= since,
        )
        .order_by(Case.id.desc())
        .limit(1)
    ).first()


def new_case(
    policy: CasePolicy,
    *,
    community: str,
    grid: str,
    category: str,
    title: str,
    source: str,
    severity: str,
    now: datetime,
) -> Case:
    # A critical alert starts urgent; a person can change that when verifying the case.
    urgency = "urgent" if severity == "critical" else "normal"
    return Case(
        urgency=urgency,
        community=community,
        grid=grid,
        category=category,
        state=CaseState.NEW.value,
        title=title,
        source=source,
        severity=severity,
        opened_at=now,
        updated_at=now,
        deadline=policy.completion_deadline(category, now, urgency),
        owner_town=policy.organisation.town_of(community),
        stage="accept",
        stage_started_at=now,
        stage_due=policy.stage_due(category, "accept", now, urgency),
    )


class CaseFlow:
    def __init__(self, db: Engine, policy: CasePolicy, join_window: timedelta = timedelta(hours=1)) -> None:
        self._db, self._policy, self._join_window = db, policy, join_window

    def act(
        self,
        case_id: int,
        action: str,
        *,
        actor: str,
        expected_version: int | None = None,
        note: str = "",
        params: dict[str, Any] | None = None,
        now: datetime | None = None,
    ) -> int:
        """Apply one action; returns the case's new version."""
        now = now or datetime.now(UTC)
        try:
            with Session(self._db) as session, session.begin():
                case = session.get(Case, case_id, options=[selectinload(Case.events)])
                if case is None:
                    raise CaseNotFound(f"case {case_id} not found")
                if expected_version is not None and case.version != expected_version:
                    raise VersionConflict(
                        f"case {case_id} is at version {case.version}, not {expected_version}: reload it"
                    )
                if action == "merge":
                    self._check_merge_target(session, case, (params or {}).get("into"))
                if action == "assign" and not (params or {}).get("assignee"):
                    params = self._from_roster(case, params)
                session.add(
                    apply_action(
                        case, action, actor=actor, now=now, policy=self._policy, note=note, params=params
                    )
                )
                session.flush()
                return case.version
        except StaleDataError as err:
            raise VersionConflict(f"case {case_id} was changed by someone else meanwhile: reload it") from err

    def _from_roster(self, case: Case, params: dict[str, Any] | None) -> dict[str, Any]:
        """Assign without a name: whoever is on duty for the grid (the backup while the primary is away)."""
        roster = current_roster(self._db, self._policy.organisation, case.grid)
        if roster is None:
            raise InvalidAction(f"assign needs assignee: grid {case.grid} has no duty roster")
        return {**(params or {}), "assignee": roster.on_duty(), "from_roster": True}

    @staticmethod
    def _check_merge_target(session: Session, case: Case, into: object) -> None:
        target = session.get(Case, into) if isinstance(into, int) else None
        if target is None or target.id == case.id:
            raise InvalidAction(f"merge needs another existing case as 'into', got {into!r}")
        if target.state not in {s.value for s in OPEN_STATES} or target.community != case.community:
            raise InvalidAction(f"case {target.id} is closed or in another community; cannot merge into it")

    def report(self, report: Report, *, actor: str, now: datetime | None = None) -> tuple[int, int | None]:
        """File a reported case; returns (its id, the case it merged into or None)."""
        now = now or datetime.now(UTC)
        category = self._policy.categories.get(report.category)
        if category is None:
            raise InvalidAction(f"unknown category {report.category!r}")
        with Session(self._db) as session, session.begin():
            existing = open_case_for(
                session, report.community, report.grid, report.category, now - self._join_window
            )
            case = new_case(
                self._policy,
                community=report.community,
                grid=report.grid,
                category=report.category,
                title=f"{category.name_zh}：{report.location}".rstrip("："),
                source="report",
                severity="warning",
                now=now,
            )
            case.description, case.reporter_phone = report.description, report.reporter_phone
            session.add(case)
            session.add(
                CaseEvent(
                    case=case,
                    at=now,
                    actor=actor,
                    action="reported",
                    from_state=None,
                    to_state=case.state,
                    note=report.description[:500],
                    data={},
                )
            )
            session.flush()
            if existing is None:
                return case.id, None
            session.add(
                apply_action(
                    case,
                    "merge",
                    actor="system:intake",
                    now=now,
                    policy=self._policy,
                    note=f"same grid and category as case {existing.id}",
                    params={"into": existing.id},
                )
            )
            existing.updated_at = now
            session.add(
                CaseEvent(
                    case=existing,
                    at=now,
                    actor="system:intake",
                    action="report_merged",
                    from_state=None,
                    to_state=existing.state,
                    note=f"case {case.id} reported by a resident merged here",
                    data={"case": case.id},
                )
            )
            return case.id, existing.id
