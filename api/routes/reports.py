"""The monthly report of a scope: HTML ready to print, or PDF (``format=pdf``), in Chinese or English."""

from __future__ import annotations

import base64
import hashlib
import re
from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Query, status
from fastapi.responses import HTMLResponse, Response

from api.console.i18n import TEXT
from api.deps import CurrentUser, Resources, ResourcesDep
from api.errors import problem
from api.reports.monthly import build_report
from api.reports.render import TEMPLATES, report_html, report_pdf
from api.routes.kpis import display_zone, known_scopes
from api.scope import may_read_report
from cases.kpi_periods import PeriodError, month_period
from cases.kpis import Level

router = APIRouter(prefix="/api/v1/reports", tags=["reports"])
LEVELS: tuple[Level, ...] = ("district", "town", "community", "grid")


def _style_hash() -> str:
    """The CSP hash of the report's one inline stylesheet (the report carries no script at all)."""
    source = (TEMPLATES / "monthly.html").read_text(encoding="utf-8")
    match = re.search(r"<style>(.*?)</style>", source, re.DOTALL)
    assert match is not None, "the report template has its stylesheet inline"
    digest = hashlib.sha256(match.group(1).encode("utf-8")).digest()
    return "'sha256-" + base64.b64encode(digest).decode("ascii") + "'"


REPORT_CSP = (
    f"default-src 'none'; style-src {_style_hash()}; img-src data:; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'none'"
)


def scope_level(resources: Resources, scope: str, level: Level | None) -> Level:
    """The level of a scope id (given, or found: the district, a town, a community, a grid); 404 if none."""
    known = known_scopes(resources)
    found = [level] if level is not None else [lv for lv in LEVELS if scope in known[lv]]
    if not found or scope not in known[found[0]]:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no district, town, community or grid {scope!r}")
    return found[0]


@router.get(
    "/monthly",
    response_class=Response,
    responses={
        200: {
            "content": {"text/html": {}, "application/pdf": {}},
            "description": "The report (HTML, or PDF)",
        },
        403: problem("The scope is outside your jurisdiction"),
        404: problem("No such district, town, community or grid"),
        422: problem("Bad parameters: month is YYYY-MM"),
    },
)
def monthly_report(
    resources: ResourcesDep,
    user: CurrentUser,
    month: Annotated[
        str, Query(pattern=r"^[0-9]{4}-[0-9]{2}$", description="The month, YYYY-MM (local time).")
    ],
    scope: Annotated[
        str | None, Query(max_length=64, description="A district, town, community or grid.")
    ] = None,
    level: Annotated[Level | None, Query(description="The scope's level, when its id is ambiguous.")] = None,
    lang: Literal["zh", "en"] = "zh",
    format_: Annotated[Literal["html", "pdf"], Query(alias="format")] = "html",
) -> Response:
    """KPI tables beside last month's, the week-by-week trend, the units and departments ranked, and the
    month's 通报 (overdue and returned cases by unit). No personal data."""
    tz = display_zone(resources)
    try:
        period = month_period(month, tz)
    except PeriodError as err:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(err)) from err
    if period.start.year < 1971:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "a month from 1971 on")
    scope = scope or resources.policy.organisation.district.id
    found = scope_level(resources, scope, level)
    if not may_read_report(user, resources.policy, resources.catalog, found, scope):
        raise HTTPException(status.HTTP_403_FORBIDDEN, f"the {found} {scope!r} is outside your jurisdiction")
    words = TEXT[lang]
    report = build_report(
        resources,
        found,
        scope,
        month,
        period,
        (words["cases_per_week"], words["on_time_rate"]),
        datetime.now(UTC),
    )
    html = report_html(report, lang, tz)
    if format_ == "pdf":
        name = f"report-{scope}-{month}-{lang}.pdf"
        return Response(
            report_pdf(html),
            media_type="application/pdf",
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )
    return HTMLResponse(html, headers={"Content-Security-Policy": REPORT_CSP})
