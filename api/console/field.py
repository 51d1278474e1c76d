"""The field worker's phone view: my tasks by what falls due first, the case, the actions my role
may take (#22).

The pages are server-rendered like the console; ``/static/field.js`` queues every action in the
browser (IndexedDB) and sends it with an ``Idempotency-Key``, so a tap on a weak signal is kept and a
retry is never applied twice. The service worker is served from here so that its scope is the phone
view, and nothing else of the console.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, HTTPException, Request, status
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import ValidationError
from sqlalchemy.orm import Session

from api.accounts import User
from api.console.case import allowed_actions
from api.console.field_requests import pending_view, request_words
from api.console.field_tasks import as_utc, countdown, place_of, task_of
from api.console.field_tasks import field_tasks as open_tasks
from api.console.names import Names
from api.console.web import STATIC_DIR, ConsoleUser, check_csrf, language, page, session_user
from api.deps import Resources, ResourcesDep
from api.params import RowId
from api.routes.cases import ActionIn, act_on_case, load_detail
from api.schemas import CaseDetail
from api.scope import case_filter
from cases import queue
from cases.workflow import ACTIONS, RETURN_REASONS, pending_requests

router = APIRouter(include_in_schema=False)
FIELD = "/console/field"
# What a field role may do from the phone, in the order the page offers it.
FIELD_ACTIONS = (
    "accept",
    "sign",
    "feedback",
    "request_extension",
    "request_return",
    "extend",
    "return",
    "respond",
    "call_return",
    "call_resolve",
)
# An action's JSON is a note and a few parameters: far below the app-wide body limit.
ACTION_MAX_BYTES = 16 * 1024
SERVICE_WORKER = STATIC_DIR / "field-sw.js"


def _user_or_401(request: Request, resources: Resources) -> User:
    """The JSON endpoints answer a lost session with 401 (a script cannot follow a login redirect)."""
    user = session_user(request, resources)
    if user is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "sign in to the console again")
    return user


@router.get(FIELD, response_class=HTMLResponse)
def tasks_page(request: Request, resources: ResourcesDep, user: ConsoleUser) -> HTMLResponse:
    names = Names(language(request), resources)
    now = datetime.now(UTC)
    with Session(resources.db) as session:
        cases = open_tasks(session, case_filter(user, resources.policy))
        tasks = [task_of(c, names, user.username, now) for c in cases]
    return page(request, resources, "field.html", tasks=tasks, user=user)


@router.get(FIELD + "/cases/{case_id}", response_class=HTMLResponse, response_model=None)
def case_page(case_id: RowId, request: Request, resources: ResourcesDep, user: ConsoleUser) -> Response:
    names = Names(language(request), resources)
    with Session(resources.db) as session:
        case = queue.case_with_history(session, case_filter(user, resources.policy), case_id)
        place = place_of(case, names) if case is not None else None
    if place is None:  # outside the jurisdiction a case does not exist
        missing = page(request, resources, "field_missing.html", user=user)
        missing.status_code = status.HTTP_404_NOT_FOUND
        return missing
    detail = load_detail(case_id, resources, user)
    due, overdue = countdown(as_utc(detail.deadline), datetime.now(UTC), names.words)
    return page(
        request,
        resources,
        "field_case.html",
        case=detail,
        place=place,
        user=user,
        actions=field_actions(user, detail),
        photos=photo_ids(detail),
        waiting=pending_view(user, detail.events, names),
        request_words=request_words,
        due=due,
        overdue=overdue,
        return_reasons=RETURN_REASONS,
    )


def field_actions(user: User, case: CaseDetail) -> list[tuple[str, tuple[str, ...]]]:
    """(action, the parameters a person gives) for each phone action the role and state allow now; a
    request already waiting for its answer is not offered again (the page says it waits)."""
    allowed = dict(allowed_actions(user, case))
    waiting = pending_requests(case.events)
    return [
        (name, ACTIONS[name].needs)  # what it needs; the photos of feedback have their own input
        for name in FIELD_ACTIONS
        if name in allowed and name not in waiting
    ]


def photo_ids(case: CaseDetail) -> list[int]:
    """The photos of the case's timeline (each event's ``attachments``), oldest first, once each."""
    seen: dict[int, None] = {}
    for event in case.events:
        for value in event.data.get("attachments") or ():
            if isinstance(value, int) and not isinstance(value, bool):
                seen.setdefault(value)
    return list(seen)


@router.post(FIELD + "/cases/{case_id}/actions", response_model=None)
async def act(case_id: RowId, request: Request, resources: ResourcesDep) -> JSONResponse:
    """One action from the phone's queue: JSON ``{action, note, params}``, the session's CSRF token in
    ``X-CSRF-Token``. The same code as ``POST /api/v1/cases/{id}/actions`` takes it."""
    user = _user_or_401(request, resources)
    check_csrf(request, request.headers.get("X-CSRF-Token", ""))
    request.state.actor = user.username
    body = await request.body()
    if len(body) > ACTION_MAX_BYTES:
        raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, f"at most {ACTION_MAX_BYTES} bytes")
    try:
        action = ActionIn.model_validate(json.loads(body or b"{}"))
    except ValidationError as err:
        errors = _plain(err.errors(include_url=False))
        return JSONResponse({"detail": errors}, status_code=status.HTTP_422_UNPROCESSABLE_CONTENT)
    except ValueError as err:  # not JSON at all
        return JSONResponse({"detail": f"not JSON: {err}"}, status_code=status.HTTP_422_UNPROCESSABLE_CONTENT)
    case = act_on_case(case_id, action, resources, user)
    if isinstance(case, JSONResponse):  # a stale version: the API's 409 with what changed
        return case
    return JSONResponse({"id": case.id, "state": case.state, "version": case.version})


def _plain(detail: Any) -> Any:
    """Validation errors as JSON can carry them (their ``ctx`` may hold exceptions)."""
    return json.loads(json.dumps(detail, default=str))


@router.get(FIELD + "/sw.js")
def service_worker() -> Response:
    """The offline shell's service worker. ``Service-Worker-Allowed`` lets it also control the task list
    at ``/console/field`` itself (a worker's default scope would be ``/console/field/`` only)."""
    return Response(
        SERVICE_WORKER.read_bytes(),
        media_type="text/javascript",
        headers={"Service-Worker-Allowed": FIELD, "Cache-Control": "no-cache"},
    )
