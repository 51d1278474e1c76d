"""The console's case page: timeline (with photos), evidence (with camera snapshots), the actions this
user may take right now, and a live stream that tells the page when the case changed."""

from __future__ import annotations

import asyncio
import itertools
import re
from collections.abc import AsyncIterator
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Form, HTTPException, Query, Request, status
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response, StreamingResponse
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from alerts.acknowledgements import Acknowledgement, acknowledgements_for_case
from api.accounts import User
from api.console.charts import numeric
from api.console.device import FieldChart, field_label
from api.console.device import thresholds as device_thresholds
from api.console.evidence_text import snapshot_reference
from api.console.field_requests import pending_view, request_words
from api.console.i18n import TEXT
from api.console.names import Names
from api.console.time_chart import time_chart
from api.console.timeline_text import conflict_text, photo_sets
from api.console.web import ConsoleUser, check_csrf, language, page, session_user
from api.deps import Resources, ResourcesDep
from api.params import RowId
from api.routes.camera_evidence import (
    SnapshotRef,
    SnapshotUnavailable,
    attach_snapshot,
    fetch_snapshot,
    snapshot_response,
)
from api.routes.cases import load_detail
from api.schemas import CaseDetail
from api.scope import case_filter, may_attach_snapshot, may_take, may_visit
from cases.actions import CaseFlow, CaseNotFound, VersionConflict
from cases.assignees import PERSON_PARAMS, candidates, grid_towns
from cases.models import Case, CaseEvent, CaseState, Evidence
from cases.organisation import Person
from cases.rosters import current_roster
from cases.visits import mask_phone
from cases.workflow import ACTIONS, REQUESTS, IllegalTransition, InvalidAction, check_params
from contract.catalog import DeviceInfo
from series.store import StoreError

router = APIRouter(include_in_schema=False)
NUMERIC = {"hours": float, "rating": int, "into": int}
FLAGS = frozenset({"on_request"})  # a form's "true" is the flag set
# Asked and answered in the requests panel (with what was asked), never as a bare form.
ON_PANEL = frozenset({*REQUESTS, "refuse_request"})
MAX_ACKS_SHOWN = 50  # the newest: a case's alerts may be acknowledged on every shift for weeks
STREAM_SECONDS = 60  # then the browser reconnects: no stream outlives a shutdown long
SIGNATURE = re.compile(r"^[0-9]{1,12}-[0-9]{1,12}-[0-9]{1,12}$")


def allowed_actions(user: User, case: CaseDetail) -> list[tuple[str, tuple[str, ...]]]:
    """(action, the parameters its form asks for) for every action role and state allow."""
    state = CaseState(case.state)
    called = any(e.action == "call_up" for e in case.events)
    return [
        (name, action.needs)
        for name, action in ACTIONS.items()
        if state in action.sources and may_take(user, name) and (name != "rate_call" or called)
    ]


def form_actions(user: User, case: CaseDetail) -> list[tuple[str, tuple[str, ...]]]:
    """The generic action forms of the page: requests are answered in their own panel, and a role that
    makes return visits visits on the visit page (with the full phone number), not here."""
    visiting = may_visit(user)
    return [
        (name, needs)
        for name, needs in allowed_actions(user, case)
        if name not in ON_PANEL and not (visiting and name == "visit")
    ]


def case_extras(resources: Resources, user: User, case_id: int) -> tuple[str, list[Acknowledgement]]:
    """The reporter's phone masked (never in full here), and the newest acknowledgements of the case's
    alerts; read inside the user's jurisdiction like the case itself."""
    with Session(resources.db) as session:
        phone = session.scalar(
            select(Case.reporter_phone).where(Case.id == case_id, case_filter(user, resources.policy))
        )
        acks = acknowledgements_for_case(session, case_id)[-MAX_ACKS_SHOWN:]
    return mask_phone(phone), acks


def _render(
    request: Request,
    resources: ResourcesDep,
    user: User,
    case_id: int,
    error: str | None,
    status_code: int = status.HTTP_409_CONFLICT,
) -> Response:
    try:
        case = load_detail(case_id, resources, user)
    except HTTPException:
        return RedirectResponse("/console", status_code=status.HTTP_303_SEE_OTHER)
    names = Names(language(request), resources)
    phone, acks = case_extras(resources, user, case_id)
    response = page(
        request,
        resources,
        "case.html",
        case=case,
        user=user,
        error=error,
        chart=_evidence_chart(resources, case, language(request)),
        actions=form_actions(user, case),
        requests=pending_view(user, case.events, names),
        request_words=request_words,
        acks=acks,
        reporter_phone=phone,
        visit_url=f"/console/visits/{case.id}" if may_visit(user) and case.state == "CLOSED" else None,
        departments=resources.policy.organisation.departments,
        pickers=named_people_pickers(resources, case),
        photos=photo_sets(case.events),
        snapshot_of=snapshot_reference,
        may_keep_snapshot=may_attach_snapshot(user),
        signature=f"{case.version}-{len(case.events)}-{len(case.evidence)}",
    )
    response.headers["Cache-Control"] = "no-store"  # the live script re-reads it: never a stale copy
    if error:
        response.status_code = status_code
    return response


def named_people_pickers(resources: ResourcesDep, case: CaseDetail) -> dict[str, list[Person]]:
    """The people an assignee or visitor is chosen from (on duty first): the server accepts no other."""
    org = resources.policy.organisation
    towns = grid_towns(resources.catalog, org)
    people = candidates(org, current_roster(resources.db, org, case.grid), case, towns=towns)
    return dict.fromkeys(PERSON_PARAMS, people)


def _evidence_chart(resources: ResourcesDep, case: CaseDetail, lang: str) -> FieldChart | None:
    """The first evidence's readings as the device page draws them (time and value axes, every rule
    threshold on the field): the window the engine stored when it fired, which outlives the series'
    retention; for evidence without one, the store's from 30 min before to 30 min after."""
    evidence = next(iter(case.evidence), None)
    rule = next((r for r in resources.rules if evidence and r.id == evidence.rule_id), None)
    info = resources.catalog.device_in(case.community, evidence.device) if evidence else None
    if evidence is None or rule is None or rule.field is None or info is None:
        return None
    field = rule.field
    if field not in info.profile.fields:
        return None
    samples = sorted(numeric(evidence.readings or []))
    if len(samples) < 2:
        samples = _stored_samples(resources, info, field, int(evidence.observed_at.timestamp() * 1000))
    if len(samples) < 2:
        return None
    words = TEXT[lang]
    gaps = sorted(b - a for (a, _), (b, _) in itertools.pairwise(samples))
    window_s = max(1, gaps[len(gaps) // 2] // 1000)  # the usual spacing: a longer silence is a gap
    since_ms, until_ms = samples[0][0], samples[-1][0] + window_s * 1000
    tz = ZoneInfo(resources.settings.display_timezone)
    chart = time_chart(
        samples, since_ms, until_ms, window_s, device_thresholds(resources.rules, info, field, words), tz
    )
    unit = info.profile.fields[field].unit or ""
    return FieldChart(field, field_label(info, field, words), unit, chart, source="")


def _stored_samples(
    resources: ResourcesDep, info: DeviceInfo, field: str, moment: int
) -> list[tuple[int, float]]:
    try:
        rows = resources.series.query(
            measurement=info.profile.measurement,
            community=info.community.id,
            device=info.device.id,
            since_ms=moment - 1_800_000,
            until_ms=moment + 1_800_000,
            limit=2000,
        )
    except StoreError:
        return []  # the chart is a help, not the case: the page still renders
    return numeric((r.ts_ms, r.fields.get(field)) for r in rows)


@router.get("/console/cases/{case_id}", response_class=HTMLResponse, response_model=None)
def case_page(case_id: RowId, request: Request, resources: ResourcesDep, user: ConsoleUser) -> Response:
    return _render(request, resources, user, case_id, None)


@router.post("/console/cases/{case_id}/actions", response_model=None)
async def act(
    case_id: RowId,
    request: Request,
    resources: ResourcesDep,
    user: ConsoleUser,
    csrf: Annotated[str, Form()] = "",
    action: Annotated[str, Form()] = "",
) -> Response:
    check_csrf(request, csrf)
    request.state.actor = user.username
    form = await request.form()
    values = {k: str(v) for k, v in form.items() if k not in ("csrf", "action", "note", "expected_version")}
    try:
        params: dict[str, Any] = {k: _typed(k, v) for k, v in values.items()}
        if action not in dict(allowed_actions(user, load_detail(case_id, resources, user))):
            raise InvalidAction(f"{action} is not available to a {user.role} now")
        check_params(action, params)
        towns = grid_towns(resources.catalog, resources.policy.organisation)
        CaseFlow(resources.db, resources.policy, grid_towns=towns).act(
            case_id,
            action,
            actor=user.username,
            note=str(form.get("note", "")),
            params=params,
            expected_version=int(str(form.get("expected_version"))) if form.get("expected_version") else None,
        )
    except VersionConflict as err:  # a person acted meanwhile: who, what, when, in the user's words
        names = Names(language(request), resources)
        told = conflict_text(err, names, ZoneInfo(resources.settings.display_timezone))
        return _render(request, resources, user, case_id, told)
    except (ValueError, CaseNotFound, IllegalTransition, InvalidAction, HTTPException) as err:
        return _render(request, resources, user, case_id, str(getattr(err, "detail", err)))
    return RedirectResponse(f"/console/cases/{case_id}", status_code=status.HTTP_303_SEE_OTHER)


def _typed(key: str, value: str) -> Any:
    """A form's text as the parameter's type: numbers, and the flags a hidden field sets."""
    if key in FLAGS:
        return value == "true"
    return NUMERIC[key](value) if key in NUMERIC else value


def case_signature(resources: Resources, user: User, case_id: int) -> str | None:
    """What the page shows changes when this does: the version, the events and the evidence rows.
    None outside the user's jurisdiction (or no such case)."""
    events = select(func.count(CaseEvent.id)).where(CaseEvent.case_id == Case.id).scalar_subquery()
    evidence = select(func.count(Evidence.id)).where(Evidence.case_id == Case.id).scalar_subquery()
    query = select(Case.version, events, evidence).where(
        Case.id == case_id, case_filter(user, resources.policy)
    )
    with Session(resources.db) as session:
        row = session.execute(query).first()
    return None if row is None else f"{row[0]}-{row[1]}-{row[2]}"


@router.get("/console/cases/{case_id}/stream")
async def case_stream(
    case_id: RowId,
    request: Request,
    resources: ResourcesDep,
    seen: Annotated[str, Query(max_length=40, description="The page's data-signature")],
) -> Response:
    """Server-sent events: a ``change`` (data: the new signature) whenever the case's version, events or
    evidence move past ``seen``, the signature the page was rendered with. The page then re-reads itself
    and swaps the parts that changed; the stream says nothing about the case beyond that it changed."""
    user = await run_in_threadpool(session_user, request, resources)
    if user is None:
        return Response(status_code=status.HTTP_401_UNAUTHORIZED)
    if not SIGNATURE.fullmatch(seen):
        return PlainTextResponse(
            "seen must be the page's signature: version-events-evidence",
            status.HTTP_422_UNPROCESSABLE_CONTENT,
        )
    current = await run_in_threadpool(case_signature, resources, user, case_id)
    if current is None:
        return Response(status_code=status.HTTP_404_NOT_FOUND)
    slot = resources.streams.acquire(user.username)
    if slot is None:
        return PlainTextResponse(
            "too many live-update streams open; close a console tab",
            status.HTTP_429_TOO_MANY_REQUESTS,
            headers={"Retry-After": str(STREAM_SECONDS)},
        )

    async def changes(last: str) -> AsyncIterator[str]:
        try:
            yield "retry: 3000\n\n"
            if seen != last:  # changed while the page loaded or the stream reconnected
                yield f"event: change\ndata: {last}\n\n"
            for _ in range(STREAM_SECONDS):
                if await request.is_disconnected():
                    return
                await asyncio.sleep(1.0)
                now = await run_in_threadpool(case_signature, resources, user, case_id)
                if now is None:
                    return  # out of the user's jurisdiction now: the page keeps what it showed
                if now != last:
                    last = now
                    yield f"event: change\ndata: {last}\n\n"
        finally:
            resources.streams.release(user.username, slot)

    return StreamingResponse(
        changes(current), media_type="text/event-stream", headers={"Cache-Control": "no-store"}
    )


def snapshot_words(names: Names, err: SnapshotUnavailable) -> str:
    """Why a snapshot cannot be shown or kept, in the user's words, naming the gateway by its name."""
    gateway = names.gateway(err.gateway, err.community) if err.gateway else ""
    return names.words[err.key].format(gateway=gateway)


@router.get("/console/cases/{case_id}/snapshot", response_model=None)
def case_snapshot(
    case_id: RowId, ref: SnapshotRef, request: Request, resources: ResourcesDep, user: ConsoleUser
) -> Response:
    """The camera snapshot of a case's evidence, relayed from its gateway; why not, in the user's words."""
    try:
        return snapshot_response(fetch_snapshot(resources, user, case_id, ref))
    except SnapshotUnavailable as err:
        names = Names(language(request), resources)
        return PlainTextResponse(snapshot_words(names, err), status_code=err.status)


@router.post("/console/cases/{case_id}/snapshot/attach", response_model=None)
def keep_snapshot(
    case_id: RowId,
    request: Request,
    resources: ResourcesDep,
    user: ConsoleUser,
    csrf: Annotated[str, Form(max_length=200)] = "",
    ref: Annotated[str, Form(max_length=120)] = "",
) -> Response:
    """An operator keeps the case's camera snapshot among its photos; the timeline then shows it."""
    check_csrf(request, csrf)
    request.state.actor = user.username
    names = Names(language(request), resources)
    if snapshot_reference({"snapshot": ref}) is None:
        return _render(request, resources, user, case_id, names.words["cp_snap_no_case"], 422)
    try:
        attach_snapshot(resources, user, case_id, ref)
    except SnapshotUnavailable as err:
        gateway = names.gateway(err.gateway, err.community) if err.gateway else ""
        return _render(
            request, resources, user, case_id, names.words[err.key].format(gateway=gateway), err.status
        )
    return RedirectResponse(f"/console/cases/{case_id}#timeline", status_code=status.HTTP_303_SEE_OTHER)
