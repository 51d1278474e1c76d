"""The operator console: sign-in, and the live case queue (filtered, searched, sorted; updated in place
from a server-sent event stream), server-rendered."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated
from weakref import WeakKeyDictionary
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Form, HTTPException, Request, status
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response, StreamingResponse
from sqlalchemy import Engine
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from api.accounts import User, authenticate
from api.console import queue_view
from api.console.i18n import STATE_NAMES, catalogue
from api.console.names import Names
from api.console.web import (
    LOGIN,
    ConsoleUser,
    check_csrf,
    language,
    page,
    session_user,
    sign_in_session,
    sign_out_session,
    templates,
    to_login,
)
from api.deps import Resources, ResourcesDep
from api.ratelimit import client_address
from api.scope import case_filter, home_page
from cases.queue import (
    CONSOLE_QUEUE,
    changed_cases,
    facet_groups,
    newest_event_id,
    queue_page,
    queue_rows,
)
from cases.queue_filters import (
    MAX_IDS,
    MAX_IDS_TEXT,
    MAX_QUERY,
    MAX_SEARCH,
    BadFilter,
    FacetCounts,
    GroupCache,
    QueueView,
    count_facets,
    parse_ids,
    parse_view,
    parse_view_leniently,
)

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
    return RedirectResponse(home_page(user), status_code=status.HTTP_303_SEE_OTHER)


@router.post("/console/logout")
def logout(request: Request, resources: ResourcesDep) -> RedirectResponse:
    sign_out_session(request, resources)
    return to_login()


def _view_of(request: Request) -> tuple[QueueView, list[BadFilter]]:
    """The queue view the query string asks for; a query too long to be a view is ignored whole."""
    if len(request.url.query) > MAX_QUERY:
        return QueueView(), [BadFilter("q", f"a query string of at most {MAX_QUERY} characters", "length")]
    return parse_view_leniently(request.query_params)


# One cache of grouped counts per database engine (an app's; tests run many apps in one process).
_GROUP_CACHES: WeakKeyDictionary[Engine, GroupCache] = WeakKeyDictionary()
_GROUP_CACHES_LOCK = threading.Lock()


def _group_cache(resources: Resources) -> GroupCache:
    with _GROUP_CACHES_LOCK:
        cache = _GROUP_CACHES.get(resources.db)
        if cache is None:
            cache = _GROUP_CACHES[resources.db] = GroupCache()
        return cache


@dataclass(frozen=True, slots=True)
class _Listing:
    rows: list[queue_view.QueueRow]
    counts: FacetCounts
    since: int


def _listing(resources: Resources, user: User, view: QueueView, ids: list[int] | None, lang: str) -> _Listing:
    """The view's rows (its first page, or of ``ids`` those it holds now) and its counts."""
    now = datetime.now(UTC)
    jurisdiction = case_filter(user, resources.policy)
    with Session(resources.db) as session:
        since = newest_event_id(session)  # before the rows: a change between them is sent again
        if ids is None:
            cases = queue_page(session, jurisdiction, view, now)
        else:
            cases = queue_rows(session, jurisdiction, view, ids, now)
        key = (str(jurisdiction.compile(compile_kwargs={"literal_binds": True})), view.q, since)
        groups = _group_cache(resources).get(key, lambda: facet_groups(session, jurisdiction, view, now))
        rows = queue_view.rows(cases, view.sort, now, Names(lang, resources), STATE_NAMES[lang])
    return _Listing(rows=rows, counts=count_facets(groups, view), since=since)


@router.get("/console", response_class=HTMLResponse, response_model=None)
def console(request: Request, resources: ResourcesDep, user: ConsoleUser) -> Response:
    """The open cases, filtered, searched and sorted as the query string says (a plain GET form)."""
    view, refused = _view_of(request)
    lang = language(request)
    listing = _listing(resources, user, view, None, lang)
    names = Names(lang, resources)
    response = page(
        request,
        resources,
        "console.html",
        rows=listing.rows,
        counts=listing.counts,
        since=listing.since,
        view=view,
        choices=queue_view.choices(names, STATE_NAMES[lang], view, listing.counts),
        sorts=queue_view.sort_options(names, view),
        summary=queue_view.summary(names, STATE_NAMES[lang], view),
        refused=[queue_view.refusal(names, bad) for bad in refused],
        max_search=MAX_SEARCH,
        limit=CONSOLE_QUEUE,
        user=user,
    )
    if refused:
        response.status_code = status.HTTP_400_BAD_REQUEST
    return response


@router.get("/console/queue/rows", response_model=None)
def queue_update(request: Request, resources: ResourcesDep) -> Response:
    """A live update of the queue: the rows of ``ids`` the view (the page's own query string) holds
    now, as HTML, and the ids it no longer holds; without ``ids``, the view's whole first page."""
    user = session_user(request, resources)
    if user is None:
        return JSONResponse({"detail": "sign in again"}, status_code=status.HTTP_401_UNAUTHORIZED)
    if len(request.url.query) > MAX_QUERY + MAX_IDS_TEXT:
        return JSONResponse({"detail": "query string too long"}, status_code=status.HTTP_400_BAD_REQUEST)
    try:
        view = parse_view(request.query_params)
        ids = parse_ids(request.query_params["ids"]) if "ids" in request.query_params else None
    except BadFilter as bad:
        return JSONResponse({"detail": str(bad), "field": bad.field}, status_code=status.HTTP_400_BAD_REQUEST)
    lang = language(request)
    listing = _listing(resources, user, view, ids, lang)
    context = {
        **catalogue(lang),
        "lang": lang,
        "tz": ZoneInfo(resources.settings.display_timezone),
    }
    row_template = templates.get_template("queue_rows.html")
    held = {row.case.id for row in listing.rows}
    return JSONResponse(
        {
            "rows": [
                {"id": row.case.id, "key": row.key, "html": row_template.render({**context, "rows": [row]})}
                for row in listing.rows
            ],
            "gone": [i for i in (ids or []) if i not in held],
            "complete": ids is None,
            "total": listing.counts.total,
            "counts": queue_view.counts_json(listing.counts),
            "since": listing.since,
        },
        headers={"Cache-Control": "no-store"},
    )


def _since(request: Request) -> int | None:
    """Where a stream picks up: the browser's Last-Event-ID on a reconnect, else the page's own mark."""
    raw = request.headers.get("last-event-id") or request.query_params.get("since") or ""
    raw = raw.strip()
    return int(raw) if raw.isdigit() and len(raw) <= 15 else None


def _changes(resources: Resources, user: User, after: int) -> tuple[int, list[int] | None]:
    """The newest event id, and the user's cases changed after ``after`` (others' cases are never
    named); more than MAX_IDS, or None, says "refresh the whole list"."""
    with Session(resources.db) as session:
        latest, ids = changed_cases(session, case_filter(user, resources.policy), after, MAX_IDS + 1)
    return latest, ids


@router.get("/console/stream")
async def stream(request: Request, resources: ResourcesDep) -> Response:
    """Server-sent events: a ``change`` whenever cases in the user's jurisdiction get new events, at
    most one a second (a burst is coalesced), naming the cases (``{"n", "ids", "more"}``: ``more``
    when there were too many to name). Each carries the newest event id, so a reconnecting browser
    (Last-Event-ID) hears of what changed while it was away."""
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
    since = _since(request)

    async def changes() -> AsyncIterator[str]:
        try:
            latest, _ = await run_in_threadpool(_changes, resources, user, 1 << 62)
            seen = latest if since is None or since > latest else since
            yield "retry: 3000\n\n"
            # Each stream lives a minute and the browser reconnects: no connection outlives a shutdown long.
            changed = 0
            for _ in range(STREAM_SECONDS):
                if await request.is_disconnected():
                    return
                latest, ids = await run_in_threadpool(_changes, resources, user, seen)
                seen = latest
                if ids is None or ids:
                    changed += 1
                    more = ids is None or len(ids) > MAX_IDS
                    data = json.dumps({"n": changed, "ids": (ids or [])[:MAX_IDS], "more": more})
                    yield f"id: {latest}\nevent: change\ndata: {data}\n\n"
                await asyncio.sleep(1.0)
        finally:
            resources.streams.release(user.username, slot)

    return StreamingResponse(changes(), media_type="text/event-stream", headers={"Cache-Control": "no-store"})
