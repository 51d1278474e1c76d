"""The console's oversight pages: the audit trail (admins and inspectors) and dead letters (district
staff), with a replay button per gateway and reason."""

from __future__ import annotations

import re
from datetime import datetime, tzinfo
from typing import Annotated
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Form, Query, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from api.accounts import User
from api.audit import AuditFilter, read_audit
from api.console.web import ConsoleUser, check_csrf, page, templates
from api.deps import Resources, ResourcesDep
from api.params import MAX_ROW_ID, in_utc_range
from api.routes.deadletters import (
    GATEWAY_ID,
    REPLAY_MAX,
    SHOWN_PAYLOAD_BYTES,
    DeadLetterFilter,
    dead_letter_groups,
    dead_letter_page,
    mark_for_replay,
)
from api.scope import may_handle_dead_letters, may_read_audit

router = APIRouter(include_in_schema=False)
AUDIT_PAGE = 100
LETTERS_SHOWN = 50
METHODS = ("POST", "PUT", "PATCH", "DELETE")
REASON_CLASSES = (
    "unknown_device",
    "retired_device",
    "unknown_event_kind",
    "invalid",
    "bad_json",
    "bad_topic",
    "store_rejected",
    "retained",
)
# The navigation shows a page's link only to whom the page is for.
templates.env.globals.update(may_read_audit=may_read_audit, may_handle_dead_letters=may_handle_dead_letters)


def _forbidden(request: Request, resources: Resources, user: User) -> Response:
    response = page(request, resources, "oversight_forbidden.html", user=user)
    response.status_code = status.HTTP_403_FORBIDDEN
    return response


def _local_time(text: str, tz: tzinfo) -> datetime | None:
    """A time typed in the form (the deployment's time zone); ValueError when it is none."""
    if not text:
        return None
    moment = datetime.fromisoformat(text.replace(" ", "T"))
    moment = moment if moment.tzinfo is not None else moment.replace(tzinfo=tz)
    if not in_utc_range(moment):
        raise ValueError(text)
    return moment


@router.get("/console/audit", response_class=HTMLResponse, response_model=None)
def audit_page(
    request: Request,
    resources: ResourcesDep,
    user: ConsoleUser,
    actor: Annotated[str, Query(max_length=128)] = "",
    path: Annotated[str, Query(max_length=512)] = "",
    method: Annotated[str, Query(max_length=8)] = "",
    start: Annotated[str, Query(alias="from", max_length=32)] = "",
    end: Annotated[str, Query(alias="to", max_length=32)] = "",
    before: Annotated[int | None, Query(ge=1, le=MAX_ROW_ID)] = None,
) -> Response:
    if not may_read_audit(user):
        return _forbidden(request, resources, user)
    tz = ZoneInfo(resources.settings.display_timezone)
    form = {"actor": actor, "path": path, "method": method if method in METHODS else ""}
    form |= {"from": start, "to": end}
    error = None
    try:
        since, until = _local_time(start, tz), _local_time(end, tz)
    except ValueError:
        since = until = None
        error = "audit_bad_time"
    where = AuditFilter(
        form["actor"] or None, form["path"] or None, form["method"] or None, None, since, until
    )
    entries = [] if error else read_audit(resources.db, where, limit=AUDIT_PAGE, before=before)
    query = {k: v for k, v in form.items() if v}
    export = {
        k: v for k, v in (("actor", where.actor), ("path", where.path_prefix), ("method", where.method)) if v
    }
    export |= {k: m.isoformat() for k, m in (("from", since), ("to", until)) if m is not None}
    older = urlencode(query | {"before": entries[-1].id}) if len(entries) == AUDIT_PAGE else None
    return page(
        request,
        resources,
        "audit.html",
        user=user,
        entries=entries,
        form=form,
        methods=METHODS,
        error=error,
        export_query=urlencode(export),
        older_query=older,
    )


@router.get("/console/dead-letters", response_class=HTMLResponse, response_model=None)
def dead_letters_page(
    request: Request,
    resources: ResourcesDep,
    user: ConsoleUser,
    gateway: Annotated[str, Query(max_length=64)] = "",
    reason: Annotated[str, Query(max_length=32)] = "",
    marked: Annotated[int | None, Query(ge=0, le=REPLAY_MAX)] = None,
) -> Response:
    if not may_handle_dead_letters(user):
        return _forbidden(request, resources, user)
    where = _letter_filter(gateway, reason)
    return page(
        request,
        resources,
        "dead_letters.html",
        user=user,
        groups=dead_letter_groups(resources.db, where),
        letters=dead_letter_page(resources.db, where, LETTERS_SHOWN),
        form={"gateway": where.gateway or "", "reason": where.reason_class or ""},
        reasons=REASON_CLASSES,
        marked=marked,
        shown_bytes=SHOWN_PAYLOAD_BYTES,
    )


def _letter_filter(gateway: str, reason: str) -> DeadLetterFilter:
    """Only a well-formed gateway id and a known reason filter; anything else is no condition."""
    valid_gateway = gateway if re.fullmatch(GATEWAY_ID, gateway) else None
    return DeadLetterFilter(valid_gateway, reason if reason in REASON_CLASSES else None)


@router.post("/console/dead-letters/replay", response_model=None)
def replay_group(
    request: Request,
    resources: ResourcesDep,
    user: ConsoleUser,
    csrf: Annotated[str, Form(max_length=64)] = "",
    gateway: Annotated[str, Form(max_length=64)] = "",
    reason: Annotated[str, Form(max_length=32)] = "",
) -> Response:
    """Mark one group (a gateway's letters of one reason) for replay: at most REPLAY_MAX at a time."""
    request.state.actor = user.username
    check_csrf(request, csrf)
    if not may_handle_dead_letters(user):
        return _forbidden(request, resources, user)
    where = _letter_filter(gateway, reason)
    if where.gateway is None or where.reason_class is None:
        return RedirectResponse("/console/dead-letters", status_code=status.HTTP_303_SEE_OTHER)
    marked = mark_for_replay(resources.db, ids=None, where=where, limit=REPLAY_MAX)
    target = "/console/dead-letters?" + urlencode({"marked": marked})
    return RedirectResponse(target, status_code=status.HTTP_303_SEE_OTHER)
