"""Rules with their outcomes, current alerts, and silences (maintenance windows included)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Query, Request, status
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from alerts.acknowledgements import NOTE_MAX_CHARS, acknowledge, current_acknowledgements
from alerts.history import HISTORY_LIMIT, Transition, alert_transitions
from alerts.models import Alert
from alerts.outcomes import RuleOutcome, rule_outcomes
from alerts.queries import page_of_alerts
from alerts.rules import Rule
from alerts.silences import Silence, SilenceIn, SilenceStore
from api.deps import CurrentUser, Resources, ResourcesDep
from api.errors import problem
from api.params import Offset, RowId
from api.routes.sensor_types import checked_rules, running_rules
from api.schemas import Page
from api.scope import (
    NARROW_MATCHERS,
    area_filter,
    may_acknowledge_alerts,
    may_manage_silences,
    may_silence,
    sees_silence,
    silence_too_broad,
)
from contract.errors import ContractError

router = APIRouter(prefix="/api/v1", tags=["alerting"])
VALIDATE_PATH = "/api/v1/rules/validate"
# A rule file is a few kB (config/rules/); this is a hundred times more, and parses well under a second.
RULE_FILE_MAX_BYTES = 256 * 1024


class RuleOut(BaseModel):
    id: str
    version: int
    description: str
    condition: str
    spec: dict[str, Any]
    scope: dict[str, str]
    severity: str
    category: str
    for_s: float
    outcomes: dict[str, int]


class AlertOut(BaseModel):
    fingerprint: str
    rule_id: str
    community: str
    grid: str
    subject: str
    category: str
    severity: str
    status: str
    silenced: bool
    inhibited: bool
    flapping: bool
    started_at: datetime
    updated_at: datetime
    resolved_at: datetime | None
    case_id: int | None


class SilenceOut(BaseModel):
    id: int
    kind: str
    matchers: dict[str, str]
    starts_at: datetime
    ends_at: datetime
    author: str
    comment: str


def _rule_out(rule: Rule, outcome: RuleOutcome | None) -> RuleOut:
    condition = rule.condition
    counts = {k: getattr(outcome, k) for k in RuleOutcome.__slots__ if k != "rule_id"} if outcome else {}
    return RuleOut(
        id=rule.id,
        version=rule.version,
        description=rule.description,
        condition=condition,
        spec=getattr(rule, condition).model_dump(),
        scope=rule.scope.model_dump(exclude_none=True),
        severity=rule.severity,
        category=rule.category,
        for_s=rule.for_s,
        outcomes=counts or {k: 0 for k in RuleOutcome.__slots__ if k != "rule_id"},
    )


@router.get("/rules", response_model=list[RuleOut])
def list_rules(resources: ResourcesDep, _user: CurrentUser, since: datetime | None = None) -> list[RuleOut]:
    """Every rule with its outcome counts (alerts fired, cases opened, voided, self-recovered, ...)."""
    outcomes = rule_outcomes(resources.db, since)
    return [_rule_out(r, outcomes.get(r.id)) for r in running_rules(resources)]


class RuleCheck(BaseModel):
    ok: bool
    rules: list[str]


def check_rule_file(body: bytes, resources: Resources) -> list[str]:
    """The ids of the rules of one rule or a rule file (``rules: [...]``); HTTPException 422 naming the
    rule, the field and the shape expected when invalid (#28: the same checks as ``POST /rules``).

    CPU-bound on a large document: the route runs it in a worker thread, off the event loop.
    """
    try:
        rules, _as_file = checked_rules(body, resources)
    except ContractError as err:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(err)) from err
    return [r.id for r in rules]


@router.post(
    "/rules/validate",
    response_model=RuleCheck,
    responses={
        413: problem(f"The rule file is larger than {RULE_FILE_MAX_BYTES:,} bytes"),
        422: {"description": "The rule file is invalid; the reason names the rule and field"},
    },
    openapi_extra={
        "requestBody": {"content": {"application/yaml": {"schema": {"type": "string"}}}, "required": True}
    },
)
async def validate_rules(request: Request, resources: ResourcesDep, _user: CurrentUser) -> RuleCheck:
    """Check one rule or a rule file (YAML or JSON, as under config/rules/) before applying it with
    ``POST /rules``: nothing is changed."""
    body = await request.body()  # at most RULE_FILE_MAX_BYTES: api.body_limit refuses more
    return RuleCheck(ok=True, rules=await run_in_threadpool(check_rule_file, body, resources))


@router.get("/rules/{rule_id}", response_model=RuleOut, responses={404: {"description": "No such rule"}})
def get_rule(rule_id: str, resources: ResourcesDep, _user: CurrentUser) -> RuleOut:
    rule = next((r for r in running_rules(resources) if r.id == rule_id), None)
    if rule is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"rule {rule_id!r} not found")
    return _rule_out(rule, rule_outcomes(resources.db).get(rule_id))


@router.get("/alerts", response_model=Page[AlertOut])
def list_alerts(
    resources: ResourcesDep,
    user: CurrentUser,
    alert_status: Annotated[
        list[str] | None, Query(alias="status", description="pending, firing, unknown, ...")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Offset = 0,
) -> Page[AlertOut]:
    area = area_filter(user, resources.policy, Alert.community, Alert.grid)
    rows, total = page_of_alerts(resources.db, area, statuses=alert_status, limit=limit, offset=offset)
    items = [AlertOut.model_validate(a, from_attributes=True) for a in rows]
    return Page[AlertOut](items=items, total=total, limit=limit, offset=offset)


class AcknowledgementIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    note: str = Field(
        min_length=1, max_length=NOTE_MAX_CHARS, description="What you saw or what is being done."
    )


class AcknowledgementOut(BaseModel):
    id: int
    fingerprint: str
    case_id: int | None
    alert_status: str = Field(
        description="The alert's status when acknowledged; acknowledging never changes it."
    )
    actor: str
    at: datetime
    note: str


@router.get("/alerts/history")
def alert_history(
    resources: ResourcesDep,
    user: CurrentUser,
    community: Annotated[str | None, Query(max_length=64)] = None,
    device: Annotated[
        str | None, Query(max_length=64, description="The alert's subject: a device id.")
    ] = None,
    rule: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=HISTORY_LIMIT)] = 100,
) -> list[Transition]:
    """Transitions (pending, firing, resolved, unknown, ...) of the alerts of a device and/or a rule in
    your jurisdiction, newest first."""
    area = area_filter(user, resources.policy, Alert.community, Alert.grid)
    return alert_transitions(resources.db, area, community=community, device=device, rule=rule, limit=limit)


@router.post(
    "/alerts/{fingerprint}/acknowledge",
    response_model=AcknowledgementOut,
    status_code=status.HTTP_201_CREATED,
    responses={
        403: problem("Your role does not acknowledge alerts"),
        404: problem("No such alert in your jurisdiction"),
        422: problem("The note is empty or longer than 1000 characters"),
    },
)
def acknowledge_alert(
    fingerprint: Annotated[str, Path(max_length=256)],
    body: AcknowledgementIn,
    resources: ResourcesDep,
    user: CurrentUser,
) -> AcknowledgementOut:
    """Say you have seen the alert, with a note. The alert keeps firing or resolving as its rule decides;
    the note shows on the alert and on its case."""
    if not may_acknowledge_alerts(user):
        raise HTTPException(status.HTTP_403_FORBIDDEN, f"a {user.role} does not acknowledge alerts")
    area = area_filter(user, resources.policy, Alert.community, Alert.grid)
    try:
        done = acknowledge(resources.db, fingerprint, area, actor=user.username, note=body.note)
    except ValueError as err:  # a note of blanks only
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(err)) from err
    if done is None:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND, f"alert {fingerprint!r} not found in your jurisdiction"
        )
    return AcknowledgementOut.model_validate(done, from_attributes=True)


@router.get(
    "/alerts/{fingerprint}/acknowledgement",
    response_model=AcknowledgementOut | None,
    responses={404: problem("No such alert in your jurisdiction")},
)
def current_acknowledgement(
    fingerprint: Annotated[str, Path(max_length=256)], resources: ResourcesDep, user: CurrentUser
) -> AcknowledgementOut | None:
    """The acknowledgement of the alert's current episode (null when nobody has acknowledged it since it
    last started)."""
    area = area_filter(user, resources.policy, Alert.community, Alert.grid)
    rows, _total = page_of_alerts(
        resources.db, area & (Alert.fingerprint == fingerprint), statuses=None, limit=1, offset=0
    )
    if not rows:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND, f"alert {fingerprint!r} not found in your jurisdiction"
        )
    found = current_acknowledgements(resources.db, rows).get(fingerprint)
    return AcknowledgementOut.model_validate(found, from_attributes=True) if found else None


def _silence_out(silence: Silence) -> SilenceOut:
    return SilenceOut(
        id=silence.id,
        kind=silence.kind,
        matchers=silence.matchers.model_dump(exclude_none=True),
        starts_at=silence.starts_at,
        ends_at=silence.ends_at,
        author=silence.author,
        comment=silence.comment,
    )


@router.get("/silences", response_model=list[SilenceOut])
def list_silences(resources: ResourcesDep, user: CurrentUser) -> list[SilenceOut]:
    """Silences and maintenance windows that have not ended yet, in your jurisdiction."""
    return [
        _silence_out(s)
        for s in SilenceStore(resources.db).current()
        if sees_silence(user, resources.policy, s.matchers.community)
    ]


# As long as the console's silence form allows: longer is a rule to change, not a silence.
MAX_SILENCE = timedelta(days=30)


@router.post(
    "/silences",
    response_model=SilenceOut,
    status_code=status.HTTP_201_CREATED,
    responses={
        403: problem(
            "Only district staff, or a town operator for a community of the town naming a rule, "
            "category or device"
        ),
        422: problem("Bad matchers or times, or longer than 30 days"),
    },
)
def add_silence(body: SilenceIn, resources: ResourcesDep, user: CurrentUser) -> SilenceOut:
    if not may_silence(user, resources.policy, body.matchers.community):
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            "silences are set by district staff, or by a town operator for a community of the town",
        )
    if silence_too_broad(user, body.matchers):
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            f"a {user.role}'s silence names what it silences: one of {', '.join(NARROW_MATCHERS)}",
        )
    if body.ends_at - (body.starts_at or datetime.now(UTC)) > MAX_SILENCE:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            f"a silence lasts at most {MAX_SILENCE.days} days: end it sooner, or change the rule",
        )
    return _silence_out(SilenceStore(resources.db).add(body, author=user.username))


@router.delete(
    "/silences/{silence_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={
        403: problem("Only district staff, or a town operator for a community of the town"),
        404: problem("No such silence in your jurisdiction, or it already ended"),
    },
)
def expire_silence(silence_id: RowId, resources: ResourcesDep, user: CurrentUser) -> None:
    store = SilenceStore(resources.db)
    silence = store.get(silence_id)
    if silence is None or not sees_silence(
        user, resources.policy, silence.matchers.community
    ):  # another town's: 404, as for cases
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"silence {silence_id} not found or already ended")
    if not may_manage_silences(user):
        raise HTTPException(status.HTTP_403_FORBIDDEN, f"a {user.role} may not end a silence")
    if not store.expire(silence_id):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"silence {silence_id} not found or already ended")
