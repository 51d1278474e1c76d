"""The console's device page: the device's profile, place, gateway, last report and health; a chart per
numeric field over a chosen time range with the rule thresholds drawn; its recent alerts and cases.

A device is addressed by (community, device id): two communities may both have a ``wl-01``. The charts
are served by the aggregate API's own code (``read_aggregate``), so the store buckets them (at most
~500 windows whatever the range) and a 30-day chart costs what a 1-hour one does. ``static/device.js``
swaps a chart in place when the range changes or the user drags across it to zoom; without scripts the
range links reload the page.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated
from urllib.parse import quote
from zoneinfo import ZoneInfo

from fastapi import APIRouter, HTTPException, Path, Query, Request, status
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from alerts.fleet import device_last_seen
from alerts.models import Alert
from alerts.rules import Rule
from api.accounts import User
from api.console.i18n import catalogue
from api.console.time_chart import TimeChart, format_value, time_chart
from api.console.web import ConsoleUser, language, page, templates
from api.deps import Resources, ResourcesDep
from api.routes.devices import read_aggregate
from api.scope import case_filter, sees_area
from cases.models import Case, Evidence
from contract.catalog import DeviceInfo
from contract.ids import ID_PATTERN

router = APIRouter(include_in_schema=False)
CommunityId = Annotated[str, Path(pattern=ID_PATTERN)]
DeviceId = Annotated[str, Path(max_length=64)]
# Ranges offered as buttons, in seconds; anything else is a custom range (or a zoom).
RANGES = {"1h": 3600, "24h": 86_400, "7d": 7 * 86_400, "30d": 30 * 86_400}
DEFAULT_RANGE = "24h"
MIN_SPAN_MS = 60_000
MAX_SPAN_MS = 400 * 86_400_000
LATEST_MS = 4_102_444_800_000  # 2100-01-01: later than any reading, small enough for every store
RECENT = 20  # alerts and cases listed
OP_WORDS = {">=": "dev_op_ge", ">": "dev_op_gt", "<=": "dev_op_le", "<": "dev_op_lt", "==": "dev_op_eq"}
Millis = Annotated[int, Query(ge=0, le=LATEST_MS)]


def device_url(community: str, device: str) -> str:
    return f"/console/devices/{quote(community, safe='')}/{quote(device, safe='')}"


@dataclass(frozen=True, slots=True)
class FieldChart:
    field: str
    label: str  # the field in words, with its unit
    unit: str
    chart: TimeChart
    source: str  # where the script fetches it again for another range


def _visible(resources: Resources, user: User, community: str, device: str) -> DeviceInfo:
    info = resources.catalog.device_in(community, device)
    if info is None or not sees_area(user, resources.policy, community, info.device.grid):
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such device in your jurisdiction")
    return info


def numeric_fields(info: DeviceInfo) -> list[str]:
    return [name for name, spec in info.profile.fields.items() if spec.type in ("float", "int")]


def thresholds(
    rules: list[Rule], info: DeviceInfo, field: str, words: dict[str, str]
) -> list[tuple[float, str]]:
    """The numeric threshold levels of the rules watching this device's ``field``, in words."""
    unit = info.profile.fields[field].unit or ""
    found = []
    for rule in rules:
        cond = rule.threshold
        if cond is None or cond.field != field or not rule.scope.matches(info):
            continue
        if isinstance(cond.value, bool) or not isinstance(cond.value, int | float):
            continue
        level = f"{format_value(float(cond.value))} {unit}".strip()
        op = words.get(OP_WORDS.get(cond.op, ""), cond.op)
        found.append(
            (
                float(cond.value),
                words["dev_threshold"].format(severity=words[f"dev_sev_{rule.severity}"], op=op, level=level),
            )
        )
    return found


def field_label(info: DeviceInfo, field: str, words: dict[str, str]) -> str:
    spec = info.profile.fields[field]
    name = words.get(f"dev_field_{field}") or spec.description or field
    return f"{name} ({spec.unit})" if spec.unit else name


def _chart(
    resources: Resources, info: DeviceInfo, field: str, since_ms: int, until_ms: int, words: dict[str, str]
) -> FieldChart:
    since = datetime.fromtimestamp(since_ms / 1000, UTC)
    until = datetime.fromtimestamp(until_ms / 1000, UTC)
    result = read_aggregate(resources, info, field, "mean", None, since, until)
    samples = [(int(b.start.timestamp() * 1000), b.value) for b in result.buckets]
    tz = ZoneInfo(resources.settings.display_timezone)
    chart = time_chart(
        samples, since_ms, until_ms, result.window_s, thresholds(resources.rules, info, field, words), tz
    )
    source = f"{device_url(info.community.id, info.device.id)}/aggregate.svg?field={quote(field)}"
    return FieldChart(
        field, field_label(info, field, words), info.profile.fields[field].unit or "", chart, source
    )


def _window(range_: str, since: str | None, until: str | None, tz: ZoneInfo) -> tuple[str, int, int, bool]:
    """(range name, since ms, until ms, whether a custom range had to be refused)."""
    now = int(datetime.now(UTC).timestamp() * 1000)
    if range_ == "custom" and since and until:
        try:
            start = datetime.fromisoformat(since).replace(tzinfo=tz)
            end = datetime.fromisoformat(until).replace(tzinfo=tz)
            since_ms, until_ms = int(start.timestamp() * 1000), int(end.timestamp() * 1000)
        except (ValueError, OverflowError):
            since_ms = until_ms = 0
        if MIN_SPAN_MS <= until_ms - since_ms <= MAX_SPAN_MS and since_ms >= 0 and until_ms <= LATEST_MS:
            return "custom", since_ms, until_ms, False
        return DEFAULT_RANGE, now - RANGES[DEFAULT_RANGE] * 1000, now, True
    name = range_ if range_ in RANGES else DEFAULT_RANGE
    return name, now - RANGES[name] * 1000, now, False


def _alerts(resources: Resources, info: DeviceInfo) -> list[Alert]:
    with Session(resources.db) as session:
        return list(
            session.scalars(
                select(Alert)
                .where(Alert.community == info.community.id, Alert.subject == info.device.id)
                .order_by(Alert.updated_at.desc())
                .limit(RECENT)
            )
        )


def _cases(resources: Resources, user: User, info: DeviceInfo) -> list[Case]:
    """Cases with evidence from this device (of this community), as far as the user may see them."""
    with Session(resources.db) as session:
        has_evidence = select(Evidence.case_id).where(Evidence.device == info.device.id)
        return list(
            session.scalars(
                select(Case)
                .where(
                    Case.community == info.community.id,
                    Case.id.in_(has_evidence),
                    case_filter(user, resources.policy),
                )
                .order_by(Case.opened_at.desc())
                .limit(RECENT)
            )
        )


@router.get("/console/devices/{community}/{device}", response_class=HTMLResponse, response_model=None)
def device_page(
    community: CommunityId,
    device: DeviceId,
    request: Request,
    resources: ResourcesDep,
    user: ConsoleUser,
    range_: Annotated[str, Query(alias="range", max_length=16)] = DEFAULT_RANGE,
    since: Annotated[str | None, Query(max_length=32)] = None,
    until: Annotated[str | None, Query(max_length=32)] = None,
) -> Response:
    words = catalogue(language(request))["t"]
    try:
        info = _visible(resources, user, community, device)
    except HTTPException:
        response = page(request, resources, "device.html", user=user, info=None)
        response.status_code = status.HTTP_404_NOT_FOUND
        return response
    tz = ZoneInfo(resources.settings.display_timezone)
    chosen, since_ms, until_ms, refused = _window(range_, since, until, tz)
    last = device_last_seen(resources.db).get((community, device))
    limit = timedelta(seconds=3 * info.profile.expected_interval_s)
    health = "never" if last is None else ("silent" if datetime.now(UTC) - last > limit else "reporting")
    charts = [_chart(resources, info, f, since_ms, until_ms, words) for f in numeric_fields(info)]
    lang = language(request)
    return page(
        request,
        resources,
        "device.html",
        user=user,
        info=info,
        type_name=(info.profile.name_zh or info.profile.name) if lang == "zh" else info.profile.name,
        building=next(
            (b.name for g in info.community.grids for b in g.buildings if b.id == info.device.building), None
        ),
        grid_name=next((g.name for g in info.community.grids if g.id == info.device.grid), info.device.grid),
        fields=[(field_label(info, name, words), spec.type) for name, spec in info.profile.fields.items()],
        last_seen=last,
        health=health,
        charts=charts,
        ranges=list(RANGES),
        chosen=chosen,
        since_local=datetime.fromtimestamp(since_ms / 1000, tz).strftime("%Y-%m-%dT%H:%M"),
        until_local=datetime.fromtimestamp(until_ms / 1000, tz).strftime("%Y-%m-%dT%H:%M"),
        refused=refused,
        alerts=_alerts(resources, info),
        cases=_cases(resources, user, info),
        here=device_url(community, device),
    )


@router.get("/console/devices/{community}/{device}/aggregate.svg", response_model=None)
def chart_svg(
    community: CommunityId,
    device: DeviceId,
    request: Request,
    resources: ResourcesDep,
    user: ConsoleUser,
    field: Annotated[str, Query(max_length=64)],
    since: Millis,
    until: Millis,
) -> Response:
    """One field's chart for [since, until) (epoch ms), as the page draws it: what the script swaps in."""
    info = _visible(resources, user, community, device)
    if field not in numeric_fields(info):
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such numeric field")
    if not MIN_SPAN_MS <= until - since <= MAX_SPAN_MS:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "the range must be 1 minute to 400 days")
    words = catalogue(language(request))["t"]
    chart = _chart(resources, info, field, since, until, words)
    return templates.TemplateResponse(
        request,
        "device_chart.xml",
        {"f": chart, "t": words},
        media_type="image/svg+xml",
    )
