"""The console's alert page: what is firing, pending or unknown now, and the silences in force."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Form, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from alerts.models import Alert
from alerts.queries import live_alerts
from alerts.silences import Matchers, SilenceIn, SilenceStore
from api.console.web import ConsoleUser, check_csrf, page
from api.deps import ResourcesDep
from api.params import RowId
from api.scope import area_filter, may_manage_silences, may_silence, sees_silence

router = APIRouter(include_in_schema=False)


@router.get("/console/alerts", response_class=HTMLResponse, response_model=None)
def alerts_page(
    request: Request, resources: ResourcesDep, user: ConsoleUser, error: str | None = None
) -> Response:
    alerts = live_alerts(resources.db, area_filter(user, resources.policy, Alert.community, Alert.grid))
    silences = [
        s
        for s in SilenceStore(resources.db).current()
        if sees_silence(user, resources.policy, s.matchers.community)
    ]
    return page(
        request,
        resources,
        "alerts.html",
        user=user,
        alerts=alerts,
        silences=silences,
        may_silence=may_manage_silences(user),
        error=error,
    )


@router.post("/console/silences", response_model=None)
def add_silence(
    request: Request,
    resources: ResourcesDep,
    user: ConsoleUser,
    csrf: Annotated[str, Form()],
    device: Annotated[str, Form()] = "",
    rule: Annotated[str, Form()] = "",
    hours: Annotated[float, Form(gt=0, le=24 * 30)] = 2.0,
    comment: Annotated[str, Form(max_length=1000)] = "",
) -> Response:
    check_csrf(request, csrf)
    request.state.actor = user.username
    info = resources.catalog.find_device(device) if device else None
    try:
        if not may_silence(user, resources.policy, info.community.id if info else None):
            raise ValueError(
                "a district operator, or a town operator for a device of the town, sets silences"
            )
        matchers = Matchers(
            device=device or None, rule=rule or None, community=info.community.id if info else None
        )
        silence = SilenceIn(
            matchers=matchers, ends_at=datetime.now(UTC) + timedelta(hours=hours), comment=comment
        )
    except (ValueError, ValidationError) as err:
        return alerts_page(request, resources, user, error=str(err).splitlines()[0])
    SilenceStore(resources.db).add(silence, author=user.username)
    return RedirectResponse("/console/alerts", status_code=status.HTTP_303_SEE_OTHER)


@router.post("/console/silences/{silence_id}/expire", response_model=None)
def expire_silence(
    silence_id: RowId,
    request: Request,
    resources: ResourcesDep,
    user: ConsoleUser,
    csrf: Annotated[str, Form()],
) -> Response:
    check_csrf(request, csrf)
    request.state.actor = user.username
    store = SilenceStore(resources.db)
    silence = store.get(silence_id)
    if silence is not None and may_silence(user, resources.policy, silence.matchers.community):
        store.expire(silence_id)
    return RedirectResponse("/console/alerts", status_code=status.HTTP_303_SEE_OTHER)
