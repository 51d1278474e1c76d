"""The case state machine: which action may move a case from which state, and what it needs.

States merge the seed's loop (受理 → 交办 → 处置 → 反馈 → 回访) with GB/T 30428 (核实, 立案, 核查,
结案). Every action becomes one append-only CaseEvent with actor, time, note and its facts in
``data``; exceptions (回退, 挂起, 延期, 镇呼区应) carry who approved them. Pure: mutates the case it is
given and returns the event; persistence, locking and permissions live in the caller.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal, Protocol, TypeVar

from cases.models import OPEN_STATES, Case, CaseEvent, CaseState
from cases.policy import CasePolicy

S = CaseState
VOID_REASONS = frozenset({"false_alarm", "duplicate", "not_our_matter", "test"})
VISIT_OUTCOMES = frozenset({"satisfied", "basically_satisfied", "unsatisfied", "unreachable"})
# Why a worker hands a case back (退回), as the phone offers them; the note says the rest.
RETURN_REASONS = ("not_my_grid", "needs_department", "not_our_matter", "duplicate", "other")


class WorkflowError(Exception):
    """Root of case workflow errors."""


class IllegalTransition(WorkflowError):
    """The action is not allowed from the case's current state (HTTP 409)."""


class InvalidAction(WorkflowError):
    """The action is unknown or lacks what it needs (HTTP 422)."""


@dataclass(frozen=True)
class Param:
    """A parameter an action takes, with its type and bounds. ``system``: set by the platform (the
    roster, the auto-check, the alert intake), never given by a person."""

    kind: Literal["text", "choice", "number", "integer", "flag", "ids"]
    max_length: int = 0  # text; ids: how many
    choices: frozenset[str] = frozenset()  # choice
    low: float = 0  # number (exclusive) and integer (inclusive)
    high: float = 0  # number and integer (inclusive)
    system: bool = False

    def refusal(self, value: object) -> str | None:
        """Why ``value`` does not fit, or None."""
        if self.kind == "text":
            if not isinstance(value, str):
                return "must be text"
            return f"is longer than {self.max_length} characters" if len(value) > self.max_length else None
        if self.kind == "choice":
            fits = isinstance(value, str) and value in self.choices
            return None if fits else f"must be one of {', '.join(sorted(self.choices))}"
        if self.kind == "flag":
            return None if isinstance(value, bool) else "must be true or false"
        if self.kind == "ids":
            return _ids_refusal(value, self.max_length)
        if self.kind == "integer":
            if isinstance(value, float) and value.is_integer():
                value = int(value)
            fits = isinstance(value, int) and not isinstance(value, bool) and self.low <= value <= self.high
            return None if fits else f"must be a whole number from {self.low:.0f} to {self.high:.0f}"
        fits = (
            isinstance(value, int | float) and not isinstance(value, bool) and self.low < value <= self.high
        )
        return None if fits else f"must be a number above {self.low:g} and at most {self.high:g}"


def _ids_refusal(value: object, most: int) -> str | None:
    """Why ``value`` is not a list of distinct row ids (at most ``most``), or None."""
    if not isinstance(value, list) or not all(
        isinstance(i, int) and not isinstance(i, bool) and 1 <= i <= MAX_ROW_ID for i in value
    ):
        return "must be a list of ids (whole numbers)"
    if len(value) > most:
        return f"names {len(value)} ids; at most {most} are allowed"
    return "names an id twice" if len(set(value)) != len(value) else None


def text(max_length: int) -> Param:
    return Param("text", max_length=max_length)


def choice(*values: str) -> Param:
    return Param("choice", choices=frozenset(values))


MAX_ROW_ID = 2**31 - 1  # SQL INTEGER
MAX_ATTACHMENTS_PER_ACTION = 10
REASON = text(500)
APPROVER = text(128)
PERSON = text(128)
SET_BY_SYSTEM = Param("flag", system=True)
# Photos already uploaded to the case by the same person (checked against the store's index by
# cases.attachments.check_attachments); the event keeps the list, so the timeline shows them.
ATTACHMENTS = Param("ids", max_length=MAX_ATTACHMENTS_PER_ACTION)
HOURS = Param("number", low=0, high=24 * 30)
# Answering a worker's request (#22): the approver says "on request"; the platform fills in the rest.
ON_REQUEST = Param("flag")
REQUESTED_BY = Param("text", max_length=128, system=True)
# A request asks for the action named here; an approver takes that action, or refuses.
REQUESTS = {"request_extension": "extend", "request_return": "return"}


@dataclass(frozen=True)
class Action:
    label_zh: str
    sources: frozenset[CaseState]
    target: CaseState | None  # None: the state stays
    needs: tuple[str, ...] = ()
    stage: str | None = None  # the SLA stage the case enters
    params: Mapping[str, Param] = field(default_factory=dict)  # every parameter it takes, needs included


ACTIONS: dict[str, Action] = {
    "accept": Action("受理", frozenset({S.NEW}), S.VERIFYING, stage="handle"),
    "verify": Action(
        "核实立案", frozenset({S.VERIFYING}), S.FILED, params={"urgency": choice("normal", "urgent")}
    ),
    "void": Action(
        "作废",
        frozenset({S.NEW, S.VERIFYING, S.FILED}),
        S.VOID,
        needs=("reason",),
        params={"reason": choice(*VOID_REASONS)},
    ),
    "assign": Action(
        "交办",
        frozenset({S.FILED, S.REOPENED}),
        S.ASSIGNED,
        needs=("assignee",),
        stage="sign",
        params={"assignee": PERSON, "from_roster": SET_BY_SYSTEM},
    ),
    "sign": Action("签收", frozenset({S.ASSIGNED}), S.HANDLING, stage="handle"),
    "return": Action(
        "回退",
        frozenset({S.ASSIGNED, S.HANDLING}),
        S.FILED,
        needs=("reason", "approved_by"),
        stage="handle",
        params={
            "reason": REASON,
            "approved_by": APPROVER,
            "on_request": ON_REQUEST,
            "requested_by": REQUESTED_BY,
        },
    ),
    # The assignee asks; the case's approvers answer (extend / return on request, or refuse_request).
    "request_extension": Action(
        "申请延期",
        frozenset({S.ASSIGNED, S.HANDLING}),
        None,
        needs=("hours", "reason"),
        params={"hours": HOURS, "reason": REASON},
    ),
    "request_return": Action(
        "申请退回",
        frozenset({S.ASSIGNED, S.HANDLING}),
        None,
        needs=("reason",),
        params={"reason": choice(*RETURN_REASONS)},
    ),
    "refuse_request": Action(
        "驳回申请",
        frozenset({S.ASSIGNED, S.HANDLING}),
        None,
        needs=("request", "reason"),
        params={"request": choice(*REQUESTS), "reason": REASON, "requested_by": REQUESTED_BY},
    ),
    "call_up": Action(
        "镇呼区应·呼叫",
        frozenset({S.HANDLING}),
        S.CALLED_UP,
        needs=("department", "approved_by"),
        stage="respond",
        params={"department": text(64), "approved_by": APPROVER, "assignee": PERSON},
    ),
    "respond": Action("区直部门响应", frozenset({S.CALLED_UP}), None, stage="resolve_call"),
    "call_return": Action(
        "区直部门退回",
        frozenset({S.CALLED_UP}),
        S.HANDLING,
        needs=("reason",),
        stage="handle",
        params={"reason": REASON},
    ),
    "call_resolve": Action("区直部门办结", frozenset({S.CALLED_UP}), S.FEEDBACK, stage="handle"),
    "rate_call": Action(
        "评价响应",
        frozenset({S.HANDLING, S.FEEDBACK, S.CHECKING, S.CLOSED, S.RETURN_VISIT}),
        None,
        needs=("rating",),
        params={"rating": Param("integer", low=1, high=5)},
    ),
    "feedback": Action("反馈", frozenset({S.HANDLING}), S.FEEDBACK, params={"attachments": ATTACHMENTS}),
    "check": Action("核查", frozenset({S.FEEDBACK}), S.CHECKING, params={"auto": SET_BY_SYSTEM}),
    "pass": Action("核查通过·结案", frozenset({S.CHECKING}), S.CLOSED, params={"auto": SET_BY_SYSTEM}),
    "fail": Action(
        "核查未通过",
        frozenset({S.CHECKING}),
        S.REOPENED,
        needs=("reason",),
        stage="handle",
        params={"reason": REASON},
    ),
    "visit": Action(
        "回访",
        frozenset({S.CLOSED}),
        S.RETURN_VISIT,
        needs=("outcome",),
        params={"outcome": choice(*VISIT_OUTCOMES), "attachments": ATTACHMENTS},
    ),
    "suspend": Action(
        "挂起",
        frozenset({S.HANDLING}),
        S.SUSPENDED,
        needs=("reason", "approved_by"),
        params={"reason": REASON, "approved_by": APPROVER},
    ),
    "resume": Action("恢复办理", frozenset({S.SUSPENDED}), S.HANDLING, stage="handle"),
    "extend": Action(
        "延期",
        frozenset({S.FILED, S.ASSIGNED, S.HANDLING}),
        None,
        needs=("hours", "approved_by"),
        params={
            "hours": HOURS,
            "approved_by": APPROVER,
            "reason": REASON,
            "on_request": ON_REQUEST,
            "requested_by": REQUESTED_BY,
        },
    ),
    "merge": Action(
        "合并",
        frozenset(OPEN_STATES),
        S.MERGED,
        needs=("into",),
        params={"into": Param("integer", low=1, high=MAX_ROW_ID)},  # a case id
    ),
    "reopen": Action(
        "重新办理",
        frozenset({S.CLOSED, S.RETURN_VISIT}),
        S.REOPENED,
        needs=("reason",),
        stage="handle",
        params={"reason": REASON, "alert": Param("text", max_length=256, system=True)},
    ),
}


def check_params(name: str, params: Mapping[str, Any], *, by_person: bool = True) -> None:
    """InvalidAction naming the first parameter ``name`` does not take, or whose value does not fit.

    ``by_person``: parameters only the platform sets are refused too. Whether the needed ones are all
    there is the workflow's to judge when the action is applied (the roster may fill in an assignee).
    """
    action = ACTIONS.get(name)
    if action is None:
        raise InvalidAction(f"unknown action {name!r}; one of {', '.join(ACTIONS)}")
    for key, value in params.items():
        spec = action.params.get(key)
        if spec is None or (by_person and spec.system):
            takes = ", ".join(k for k, p in action.params.items() if not p.system) or "none"
            raise InvalidAction(f"{name} takes no parameter {key!r}; it takes: {takes}")
        if value is None or value == "":
            continue  # not given: ``needs`` decides whether it had to be
        if (problem := spec.refusal(value)) is not None:
            raise InvalidAction(f"{name}: {key} {problem}")


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
    check_params(name, params, by_person=False)
    if name in REQUESTS:
        _check_requester(case, name, actor)
    if name == "refuse_request" or (name in ("extend", "return") and params.get("on_request")):
        params = _answer(case, name, params, actor)
    missing = [p for p in action.needs if params.get(p) in (None, "")]
    if missing:
        raise InvalidAction(f"{name} needs {', '.join(missing)}")
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


class EventLike(Protocol):
    """A timeline event as stored (CaseEvent) or as the API shows it (CaseEventOut)."""

    @property
    def action(self) -> str: ...
    @property
    def actor(self) -> str: ...
    @property
    def from_state(self) -> str | None: ...
    @property
    def to_state(self) -> str | None: ...
    @property
    def data(self) -> Mapping[str, Any]: ...


E = TypeVar("E", bound=EventLike)


def pending_requests(events: Iterable[E]) -> dict[str, E]:
    """The requests still waiting for an answer, by kind (request_extension, request_return).

    A request stops waiting when it is answered (the action it asks for, or refuse_request), when a
    newer request of its kind replaces it, or when the case moves on (any change of state but the
    assignee signing for it): an approver never answers a question the case has left behind.
    """
    pending: dict[str, E] = {}
    for event in events:
        if event.action in REQUESTS:
            pending[event.action] = event
        elif event.action == "refuse_request":
            pending.pop(str((event.data or {}).get("request")), None)
        elif event.action == "extend":
            pending.pop("request_extension", None)
        elif event.from_state not in (None, event.to_state) and event.action != "sign":
            pending.clear()
    return pending


def _check_requester(case: Case, name: str, actor: str) -> None:
    """Only the person holding the case asks to extend or return it."""
    if not case.assignee or case.assignee != actor:
        holder = case.assignee or "nobody"
        raise InvalidAction(f"{name}: only the case's assignee ({holder}) may ask; {actor} does not hold it")


def _answer(case: Case, name: str, params: dict[str, Any], actor: str) -> dict[str, Any]:
    """The parameters of an answer to a pending request: what was asked (hours, reason), who asked,
    and the approver as ``approved_by``. IllegalTransition when no such request waits; InvalidAction
    when the approver asked it themselves or changes what was asked."""
    kind = str(params.get("request")) if name == "refuse_request" else _request_for(name)
    request = pending_requests(case.events).get(kind)
    if request is None:
        raise IllegalTransition(
            f"case {case.id} has no pending {kind}: it was answered, or the case moved on; reload it"
        )
    if request.actor == actor:
        raise InvalidAction(f"{actor} asked for this: another approver answers it")
    answer = {**params, "requested_by": request.actor}
    if name == "refuse_request":
        return answer
    asked = {k: v for k, v in (request.data or {}).items() if k in ("hours", "reason")}
    for key, value in asked.items():
        given = params.get(key)
        if given not in (None, "") and given != value:
            raise InvalidAction(f"{name} on request: {key} is what was asked ({value}), not {given}")
    given_approver = params.get("approved_by")
    if given_approver not in (None, "", actor):
        raise InvalidAction(f"{name} on request: approved_by is the approver answering ({actor})")
    return {**answer, **asked, "approved_by": actor}


def _request_for(action: str) -> str:
    return next(kind for kind, asks in REQUESTS.items() if asks == action)
