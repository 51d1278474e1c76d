"""The case state machine: which action may move a case from which state, and what it needs.

States merge the seed's loop (受理 → 交办 → 处置 → 反馈 → 回访) with GB/T 30428 (核实, 立案, 核查,
结案). Every action becomes one append-only CaseEvent with actor, time, note and its facts in
``data``; exceptions (回退, 挂起, 延期, 镇呼区应) carry who approved them. Pure: mutates the case it is
given and returns the event; persistence, locking and permissions live in the caller.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from cases.models import OPEN_STATES, Case, CaseEvent, CaseState
from cases.policy import CasePolicy

S = CaseState
VOID_REASONS = frozenset({"false_alarm", "duplicate", "not_our_matter", "test"})
VISIT_OUTCOMES = frozenset({"satisfied", "unsatisfied", "unreachable"})


class WorkflowError(Exception):
    """Root of case workflow errors."""


class IllegalTransition(WorkflowError):
    """The action is not allowed from the case's current state (HTTP 409)."""


class InvalidAction(WorkflowError):
    """The action is unknown or lacks what it needs (HTTP 422)."""


@dataclass(frozen=True)
class Action:
    label_zh: str
    sources: frozenset[CaseState]
    target: CaseState | None  # None: the state stays
    needs: tuple[str, ...] = ()
    stage: str | None = None  # the SLA stage the case enters


ACTIONS: dict[str, Action] = {
    "accept": Action("受理", frozenset({S.NEW}), S.VERIFYING, stage="handle"),
    "verify": Action("核实立案", frozenset({S.VERIFYING}), S.FILED),
    "void": Action("作废", frozenset({S.NEW, S.VERIFYING, S.FILED}), S.VOID, needs=("reason",)),
    "assign": Action("交办", frozenset({S.FILED, S.REOPENED}), S.ASSIGNED, needs=("assignee",), stage="sign"),
    "sign": Action("签收", frozenset({S.ASSIGNED}), S.HANDLING, stage="handle"),
    "return": Action(
        "回退", frozenset({S.ASSIGNED, S.HANDLING}), S.FILED, needs=("reason", "approved_by"), stage="handle"
    ),
    "call_up": Action(
        "镇呼区应·呼叫",
        frozenset({S.HANDLING}),
        S.CALLED_UP,
        needs=("department", "approved_by"),
        stage="respond",
    ),
    "respond": Action("区直部门响应", frozenset({S.CALLED_UP}), None, stage="resolve_call"),
    "call_return": Action(
        "区直部门退回", frozenset({S.CALLED_UP}), S.HANDLING, needs=("reason",), stage="handle"
    ),
    "call_resolve": Action("区直部门办结", frozenset({S.CALLED_UP}), S.FEEDBACK, stage="handle"),
    "rate_call": Action(
        "评价响应",
        frozenset({S.HANDLING, S.FEEDBACK, S.CHECKING, S.CLOSED, S.RETURN_VISIT}),
        None,
        needs=("rating",),
    ),
    "feedback": Action("反馈", frozenset({S.HANDLING}), S.FEEDBACK),
    "check": Action("核查", frozenset({S.FEEDBACK}), S.CHECKING),
    "pass": Action("核查通过·结案", frozenset({S.CHECKING}), S.CLOSED),
    "fail": Action("核查未通过", frozenset({S.CHECKING}), S.REOPENED, needs=("reason",), stage="handle"),
    "visit": Action("回访", frozenset({S.CLOSED}), S.RETURN_VISIT, needs=("outcome",)),
    "suspend": Action("挂起", frozenset({S.HANDLING}), S.SUSPENDED, needs=("reason", "approved_by")),
    "resume": Action("恢复办理", frozenset({S.SUSPENDED}), S.HANDLING, stage="handle"),
    "extend": Action(
        "延期", frozenset({S.FILED, S.ASSIGNED, S.HANDLING}), None, needs=("hours", "approved_by")
    ),
    "merge": Action("合并", frozenset(OPEN_STATES), S.MERGED, needs=("into",)),
    "reopen": Action(
        "重新办理", frozenset({S.CLOSED, S.RETURN_VISIT}), S.REOPENED, needs=("reason",), stage="handle"
    ),
}


def _check_params(name: str, action: Action, params: dict[str, Any]) -> None:
    missing = [p for p in action.needs if params.get(p) in (None, "")]
    if missing:
        raise InvalidAction(f"{name} needs {', '.join(missing)}")
    if name == "void" and params["reason"] not in VOID_REASONS:
        raise InvalidAction(f"void reason must be one of {', '.join(sorted(VOID_REASONS))}")
    if name == "visit" and params["outcome"] not in VISIT_OUTCOMES:
        raise InvalidAction(f"visit outcome must be one of {', '.join(sorted(VISIT_OUTCOMES))}")
    if name == "rate_call" and params["rating"] not in (1, 2, 3, 4, 5):
        raise InvalidAction("rating must be 1 to 5")
    if name == "extend" and not (isinstance(params["hours"], int | float) and 0 < params["hours"] <= 24 * 30):
        raise InvalidAction("hours must be between 0 and 720")


def apply_action(
    case: Case,
    name: str,
    *,
    actor: str,
    now: datetime,
    policy: CasePolicy,
    note: str = "",
    params: dict[str, Any] | None = None,
) -> CaseEvent:
    """Move ``case`` by one action and return the event that records it."""
    params = dict(params or {})
    action = ACTIONS.get(name)
    if action is None:
        raise InvalidAction(f"unknown action {name!r}; one of {', '.join(ACTIONS)}")
    if CaseState(case.state) not in action.sources:
        raise IllegalTransition(f"case {case.id} is {case.state}: {name} ({action.label_zh}) is not allowed")
    _check_params(name, action, params)
    before = case.state
    target = action.target
    clock = policy.clock(case.category)
    if name == "visit" and params["outcome"] == "unsatisfied":
        target = S.REOPENED  # an unsatisfied resident reopens the case
    if name in ("assign", "call_up"):
        case.assignee = str(params.get("assignee") or case.assignee or "")
    if name == "call_up":
        department = policy.organisation.department(str(params["department"]))
        if department is None:
            raise InvalidAction(f"unknown department {params['department']!r}")
        case.department = department.id
    if name == "suspend":
        params["remaining_s"] = clock.between(now, case.deadline).total_seconds()
        case.suspended_at = now
    if name == "resume" and case.suspended_at is not None:
        remaining = timedelta(seconds=_last_remaining(case))
        case.deadline, case.suspended_at = clock.add(now, remaining), None
        params["deadline"] = case.deadline.isoformat()
    if name == "verify" and params.get("urgency") not in (None, "", case.urgency):
        if params["urgency"] not in ("normal", "urgent"):
            raise InvalidAction("urgency is normal or urgent")
        case.urgency = str(params["urgency"])
        case.deadline = policy.completion_deadline(case.category, case.opened_at, case.urgency)
        params["deadline"] = case.deadline.isoformat()
    if name == "extend":
        case.deadline = clock.add(case.deadline, timedelta(hours=float(params["hours"])))
        params["deadline"] = case.deadline.isoformat()
    if target is not None:
        case.state = target.value
    if target in (S.CLOSED, S.VOID, S.MERGED):
        case.closed_at = now
    if target is S.REOPENED:
        case.closed_at = None
    if name == "merge":
        case.merged_into = int(params["into"])
    _enter_stage(case, action.stage, now, policy)
    case.updated_at = now
    return CaseEvent(
        case=case,
        at=now,
        actor=actor,
        action=name,
        from_state=before,
        to_state=case.state,
        note=note,
        data=params,
    )


def _last_remaining(case: Case) -> float:
    for event in reversed(case.events):
        if event.action == "suspend":
            return float(event.data.get("remaining_s", 0.0))
    return 0.0


def _enter_stage(case: Case, stage: str | None, now: datetime, policy: CasePolicy) -> None:
    if case.state not in {s.value for s in OPEN_STATES}:
        case.stage, case.stage_due, case.stage_started_at = "done", None, now
        return
    if stage is None:
        if case.stage == "handle":
            case.stage_due = case.deadline  # an extension moves the deadline of the running stage
        return
    case.stage, case.stage_started_at, case.stage_warned = stage, now, False
    due = policy.stage_due(case.category, stage, now, case.urgency)
    case.stage_due = due if due is not None else case.deadline
