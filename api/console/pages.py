"""The operator console: sign-in, the live case queue and the KPI dashboard (server-rendered)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Form, HTTPException, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from api.accounts import User, authenticate
from api.console.web import (
    LOGIN,
    ConsoleUser,
    check_csrf,
    language,
    page,
    session_user,
    sign_in_session,
    sign_out_session,
    to_login,
)
from api.deps import Resources, ResourcesDep
from api.ratelimit import client_address
from api.routes.cases import case_out
from api.scope import case_filter
from cases.queue import latest_event_id, open_queue

router = APIRouter(include_in_schema=False)
STREAM_SECONDS = 60


@router.get("/")
def root() -> RedirectResponse:
    return RedirectResponse("/console", status_code=status.HTTP_303_SEE_OTHER)


@router.get(LOGIN, response_class=HTMLResponse)
def login_form(request: Request, resources: ResourcesDep) -> HTMLResponse:
    return page(request, resources, "login.html", error=None)


@router.post(LOGIN, response_model=None)
def login(
    request: Request,
    resources: ResourcesDep,
    username: Annotated[str, Form(max_length=64)],
    password: Annotated[str, Form(max_length=256)],
    csrf: Annotated[str, Form(max_length=64)] = "",
) -> Response:
    try:
        check_csrf(request, csrf)  # the login page's token: another site cannot sign the browser in
    except HTTPException:
        response = page(request, resources, "login.html", error="login_form_expired")
        response.status_code = status.HTTP_403_FORBIDDEN
        return response
    client = client_address(request, resources.settings.proxy_networks())
    keys = (f"user:{username}", f"client:{client}")
    wait = resources.throttle.retry_after(*keys)
    if wait > 0:
        response = page(request, resources, "login.html", error="throttled")
        response.status_code = status.HTTP_429_TOO_MANY_REQUESTS
        response.headers["Retry-After"] = str(int(wait) + 1)
        return response
    user = authenticate(resources.db, username, password)
    if user is None:
        resources.throttle.failed(*keys)
        response = page(request, resources, "login.html", error="bad_login")
        response.status_code = status.HTTP_401_UNAUTHORIZED
        return response
    resources.throttle.succeeded(keys[0])
    request.state.actor = user.username
    sign_in_session(request, resources, user)
    return RedirectResponse("/console", status_code=status.HTTP_303_SEE_OTHER)


@router.post("/console/logout")
def logout(request: Request, resources: ResourcesDep) -> RedirectResponse:
    sign_out_session(request, resources)
    return to_login()


@router.get("/console", response_class=HTMLResponse, response_model=None)
def console(request: Request, resources: ResourcesDep, user: ConsoleUser) -> Response:
    with Session(resources.db) as session:
        cases = [case_out(c, resources) for c in open_queue(session, case_filter(user, resources.policy))]
    lang = language(request)
    names = {c.code: (c.name_zh if lang == "zh" else c.name_en) for c in resources.categories.values()}
    grids = {g.id: g.name for community in resources.catalog.communities.values() for g in community.grids}
    return page(
        request,
        resources,
        "console.html",
        cases=cases,
        category_names=names,
        grid_names=grids,
        user=user,
        now=datetime.now(UTC),
    )


def _latest_change(resources: Resources, user: User) -> int:
    """The newest event of a case the user may see: others' cases do not move it."""
    with Session(resources.db) as session:
        return latest_event_id(session, case_filter(user, resources.policy))


@router.get("/console/stream")
async def stream(request: Request, resources: ResourcesDep) -> Response:
    """Server-sent events: a ``change`` whenever a case in the user's jurisdiction gets a new event; the
    page then reloads. The event carries nothing but a count of changes seen on this stream."""
    user = await run_in_threadpool(session_user, request, resources)
    if user is None:
        return Response(status_code=status.HTTP_401_UNAUTHORIZED)
    slot = resources.streams.acquire(user.username)
    if slot is None:
        return Response(
            "too many live-update streams open; close a console tab",
            status_code=status.HTTP_429_TOO_MANY_REQUESTS,
            headers={"Retry-After": str(STREAM_SECONDS)},
        )

    async def changes() -> AsyncIterator[str]:
        try:
            seen = await run_in_threadpool(_latest_change, resources, user)
            yield "retry: 3000\n\n"
            # Each stream lives a minute and the browser reconnects: no connection outlives a shutdown long.
            changed = 0
            for _ in range(STREAM_SECONDS):
                if await request.is_disconnected():
                    return
                await asyncio.sleep(1.0)
                latest = await run_in_threadpool(_latest_change, resources, user)
                if latest != seen:
                    seen, changed = latest, changed + 1
                    yield f"event: change\ndata: {changed}\n\n"
        finally:
            resources.streams.release(user.username, slot)

    return StreamingResponse(changes(), media_type="text/event-stream", headers={"Cache-Control": "no-store"})
