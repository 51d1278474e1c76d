"""The console's KPI page: the user's scopes over a period and the weekly trend."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from api.console.charts import Chart, line_chart
from api.console.i18n import TEXT
from api.console.web import ConsoleUser, language, page
from api.deps import ResourcesDep
from api.scope import kpi_scopes
from cases.kpis import Level, compute_kpis

router = APIRouter(include_in_schema=False)


@router.get("/console/kpis", response_class=HTMLResponse, response_model=None)
def kpis_page(request: Request, resources: ResourcesDep, user: ConsoleUser, days: int = 30) -> Response:
    end = datetime.now(UTC) + timedelta(minutes=1)
    start = end - timedelta(days=max(1, min(days, 366)))
    policy = resources.policy
    scopes = kpi_scopes(user, policy)
    reports = [
        (name, compute_kpis(resources.db, policy, level=level, scope=scope, start=start, end=end))
        for level, scope, name in scopes
    ]
    labels = TEXT[language(request)]
    trend = _weekly_trend(resources, scopes[0][:2], end, labels) if scopes else []
    return page(
        request,
        resources,
        "kpis.html",
        reports=reports,
        start=start,
        end=end,
        user=user,
        trend=trend,
        trend_name=scopes[0][2] if scopes else "",
    )


WEEKS = 8


def _weekly_trend(
    resources: ResourcesDep, scope: tuple[Level, str], end: datetime, labels: dict[str, str]
) -> list[tuple[str, Chart]]:
    """Cases and on-time completion per week over the last eight weeks, as charts."""
    level, scope_id = scope
    weeks = [(end - timedelta(weeks=WEEKS - i), end - timedelta(weeks=WEEKS - i - 1)) for i in range(WEEKS)]
    reports = [
        (
            int(a.timestamp() * 1000),
            compute_kpis(
                resources.db,
                resources.policy,
                level=level,
                scope=scope_id,
                start=a,
                end=b,
            ),
        )
        for a, b in weeks
    ]
    cases = line_chart(
        [(ts, float(k.all_cases.cases)) for ts, k in reports], labels["cases_per_week"], "", None
    )
    on_time = line_chart(
        [(ts, 100 * k.all_cases.on_time_rate) for ts, k in reports if k.all_cases.on_time_rate is not None],
        labels["on_time_rate"],
        "%",
        None,
    )
    return [(key, chart) for key, chart in (("cases", cases), ("on-time", on_time)) if chart is not None]
