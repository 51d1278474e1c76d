"""The console's KPI page, a report people read: a period picker (in the URL), each figure beside the
period before with the change, the weekly trend with real axes, towns and departments ranked for the
district, and a drill-down from every figure to the cases behind it.

Figures and lists come from one reading of the case event log per period (``cases.kpis.load_lives``),
summarised the way ``compute_kpis`` does and selected the way ``cases.kpi_cases`` does, so a figure and
its list always agree.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request, status
from fastapi.responses import HTMLResponse, Response

from api.console.charts import Bucket, TrendChart, trend_chart
from api.console.i18n import TEXT
from api.console.queue_view import row_sla
from api.console.web import ConsoleUser, language, page
from api.deps import Resources, ResourcesDep
from api.scope import kpi_scopes, may_compare_units, may_see_kpis
from cases.kpi_cases import FIGURES, PAGE_SIZE, SELECTORS, DrillError, drill_down, in_scope
from cases.kpi_periods import MAX_CUSTOM, Period, PeriodError, calendar_period, weeks_of
from cases.kpi_rankings import Ranked, rank_children, rank_departments
from cases.kpis import Kpis, Level, LivedCase, scope_lives, summarise

router = APIRouter(include_in_schema=False)
KINDS = ("week", "month", "quarter", "custom")
LEVELS: tuple[Level, ...] = ("district", "town", "community", "grid")
MAX_PARAM = 40  # every query value is at most this long, checked before it is parsed
TREND_WEEKS = 8  # a week's report shows the eight weeks up to it


class ChoiceError(ValueError):
    """A period the picker cannot read; ``key`` names the catalogue sentence that says what to fix."""

    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


@dataclass(frozen=True, slots=True)
class Choice:
    """What the URL asked for, kept as typed so a refused picker shows it again."""

    kind: str
    date: str
    from_: str
    to: str

    def query(self) -> dict[str, str]:
        if self.kind == "custom":
            return {"period": "custom", "from": self.from_, "to": self.to}
        return {"period": self.kind, "date": self.date}


def _short(value: str | None) -> str:
    if value is not None and len(value) > MAX_PARAM:
        raise ChoiceError("kpi_err_too_long")
    return (value or "").strip()


def _day(text: str, key: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError as err:
        raise ChoiceError(key) from err


def read_choice(kind: str | None, anchor: str | None, from_: str | None, to: str | None) -> Choice:
    """The picker's fields, each checked for length; the period itself is read by ``resolve``."""
    return Choice(_short(kind) or "month", _short(anchor), _short(from_), _short(to))


def resolve(choice: Choice, tz: ZoneInfo) -> Period:
    """The period the choice names, in the deployment's calendar; ChoiceError says what to fix."""
    if choice.kind not in KINDS:
        raise ChoiceError("kpi_err_kind")
    if choice.kind == "custom":
        if not choice.from_ or not choice.to:
            raise ChoiceError("kpi_err_custom_missing")
        first, last = _day(choice.from_, "kpi_err_from"), _day(choice.to, "kpi_err_to")
        if last < first:
            raise ChoiceError("kpi_err_custom_order")
        if (last - first).days + 1 > MAX_CUSTOM.days:
            raise ChoiceError("kpi_err_custom_long")
        start = datetime.combine(first, time(0), tzinfo=tz)
        return Period("custom", start, datetime.combine(last + timedelta(days=1), time(0), tzinfo=tz))
    anchor = _day(choice.date, "kpi_err_date") if choice.date else datetime.now(tz).date()
    if not date(1971, 1, 1) <= anchor <= date(9998, 12, 31):
        raise ChoiceError("kpi_err_date")
    try:
        return calendar_period(choice.kind, anchor, tz)  # type: ignore[arg-type]
    except PeriodError as err:
        raise ChoiceError("kpi_err_kind") from err


# -- figures -------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FigureRow:
    key: str  # the catalogue word and data-kpi attribute
    now: str
    before: str
    change: str
    trend: str  # "up", "down", "same" or "none": the change's arrow (a shape, not only a colour)
    drill: str | None  # the figure of cases.kpi_cases behind it
    drill_count: int | None  # how many cases that list holds
    detail: str  # numerator / denominator, e.g. "30 / 34"


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.1f}%"


def _change(now: float | None, before: float | None, rate: bool, words: dict[str, str]) -> tuple[str, str]:
    if now is None or before is None:
        return "—", "none"
    delta = (now - before) * (100 if rate else 1)
    trend = "up" if delta > 1e-9 else "down" if delta < -1e-9 else "same"
    sign = {"up": "+", "down": "−", "same": "±"}[trend]
    amount = f"{abs(delta):.1f}" if rate else f"{abs(delta):.0f}"
    return (words["kpi_points"] if rate else "{n}").format(n=f"{sign}{amount}"), trend


def figure_rows(now: Kpis, before: Kpis, lived: list[LivedCase], words: dict[str, str]) -> list[FigureRow]:
    """Each figure of the period beside the one before, with the list of cases behind it."""
    counts = {figure: sum(SELECTORS[figure](c) for c in lived) for figure in FIGURES}
    a, b = now.all_cases, before.all_cases
    rows: list[tuple[str, float | int | None, float | int | None, bool, str | None, str]] = [
        ("calls", now.calls, before.calls, False, "calls", ""),
        ("cases", a.cases, b.cases, False, "cases", ""),
        ("completion_rate", a.completion_rate, b.completion_rate, True, "unfinished",
         f"{counts['completed']} / {counts['cases']}"),
        ("on_time_rate", a.on_time_rate, b.on_time_rate, True, "late",
         f"{counts['on_time']} / {counts['completed']}"),
        ("satisfaction_rate", a.satisfaction_rate, b.satisfaction_rate, True, "unsatisfied",
         f"{counts['satisfied']} / {counts['visited']}"),
        ("rework_rate", now.rework_rate, before.rework_rate, True, "reworked",
         f"{counts['reworked']} / {counts['completed']}"),
        ("extension_rate", now.extension_rate, before.extension_rate, True, "extended",
         f"{counts['extended']} / {counts['cases']}"),
        ("false_alarm_rate", now.false_alarm_rate, before.false_alarm_rate, True, None, ""),
    ]  # fmt: skip
    out = []
    for key, value, previous, rate, drill, detail in rows:
        shown = _pct if rate else (lambda v: "—" if v is None else str(v))
        change, trend = _change(value, previous, rate, words)
        out.append(
            FigureRow(
                key,
                shown(value),
                shown(previous),
                change,
                trend,
                drill,
                counts[drill] if drill else None,
                detail,
            )
        )
    return out


@dataclass(frozen=True, slots=True)
class ScopeReport:
    level: Level
    scope: str
    name: str
    kpis: Kpis
    rows: list[FigureRow]


def _load(resources: Resources, level: Level, scope: str, period: Period) -> list[LivedCase]:
    return scope_lives(
        resources.db, resources.policy, level=level, scope=scope, start=period.start, end=period.end
    )


def scope_name(resources: Resources, names_lang: str, level: Level, scope: str) -> str:
    """The scope as people call it: a grid by its name, never its id."""
    org = resources.policy.organisation
    if level == "district":
        return org.district.name
    if level == "town":
        return next((t.name for t in org.towns if t.id == scope), "—")
    communities = resources.catalog.communities
    if level == "community":
        return communities[scope].name if scope in communities else "—"
    for community in communities.values():
        for grid in community.grids:
            if grid.id == scope:
                return f"{community.name} · {grid.name}"
    return "—"


# -- trend ---------------------------------------------------------------------------------------------


def trend_weeks(period: Period) -> list[tuple[datetime, datetime]]:
    """The weeks the trend shows: a week's report the eight weeks up to it, a longer period its weeks."""
    if period.kind == "week":
        first = period.start - timedelta(weeks=TREND_WEEKS - 1)
        return weeks_of(Period("custom", first, period.end))
    return weeks_of(period)


def _bucket(start: datetime, end: datetime, tz: ZoneInfo, words: dict[str, str]) -> Bucket:
    first, last = start.astimezone(tz).date(), (end - timedelta(seconds=1)).astimezone(tz).date()
    label = f"{first:%m/%d}–{last:%m/%d}" if first != last else f"{first:%m/%d}"
    whole_week = first.weekday() == 0 and (last - first).days == 6
    return Bucket(label, words["kpi_week_no"].format(n=first.isocalendar().week) if whole_week else "")


def weekly_trend(
    resources: Resources, level: Level, scope: str, period: Period, tz: ZoneInfo, words: dict[str, str]
) -> list[tuple[str, TrendChart]]:
    """Cases opened and completed per week, and the completion and on-time rates per week, as charts."""
    weeks = trend_weeks(period)
    lived = _load(resources, level, scope, Period("custom", weeks[0][0], weeks[-1][1]))
    per_week: list[list[LivedCase]] = [[] for _ in weeks]
    for case in lived:
        opened = case.opened_at if case.opened_at.tzinfo else case.opened_at.replace(tzinfo=UTC)
        for i, (a, b) in enumerate(weeks):
            if a <= opened < b:
                per_week[i].append(case)
                break
    now = datetime.now(UTC)
    # A week that has not begun has no figures yet: a gap in the line, not a zero.
    reports = [
        summarise(level, scope, a, b, cases) if a <= now else None
        for (a, b), cases in zip(weeks, per_week, strict=True)
    ]
    buckets = [_bucket(a, b, tz, words) for a, b in weeks]
    counts = trend_chart(
        buckets,
        [
            ("opened", words["kpi_series_opened"], [_count(k, "cases") for k in reports]),
            ("completed", words["kpi_series_completed"], [_count(k, "completed") for k in reports]),
        ],
        words["kpi_unit_cases"],
    )
    rates = trend_chart(
        buckets,
        [
            ("on-time", words["on_time_rate"], [_rate(k, "on_time_rate") for k in reports]),
            (
                "completion",
                words["completion_rate"],
                [_rate(k, "completion_rate") for k in reports],
            ),
        ],
        "%",
        percent=True,
    )
    return [("cases", counts), ("rates", rates)]


def _count(kpis: Kpis | None, figure: str) -> float | None:
    return None if kpis is None else float(getattr(kpis.all_cases, figure))


def _rate(kpis: Kpis | None, figure: str) -> float | None:
    value = None if kpis is None else getattr(kpis.all_cases, figure)
    return None if value is None else value * 100


# -- pages ---------------------------------------------------------------------------------------------


def _period_links(choice: Choice, period: Period, tz: ZoneInfo) -> tuple[str, str]:
    """The picker's query for the period before and the one after (a custom one: as long)."""
    if choice.kind == "custom":
        length = period.end - period.start
        before = Period("custom", period.start - length, period.start)
        after = Period("custom", period.end, period.end + length)

        def first(p: Period) -> str:
            return p.start.astimezone(tz).date().isoformat()

        def last(p: Period) -> str:
            return (p.end - timedelta(seconds=1)).astimezone(tz).date().isoformat()

        return (
            urlencode({"period": "custom", "from": first(before), "to": last(before)}),
            urlencode({"period": "custom", "from": first(after), "to": last(after)}),
        )
    previous = period.previous().start.astimezone(tz).date().isoformat()
    following = period.end.astimezone(tz).date().isoformat()
    return urlencode({"period": choice.kind, "date": previous}), urlencode(
        {"period": choice.kind, "date": following}
    )


@router.get("/console/kpis", response_class=HTMLResponse, response_model=None)
def kpis_page(
    request: Request,
    resources: ResourcesDep,
    user: ConsoleUser,
    period: str | None = None,
    date: str | None = None,
) -> Response:
    tz = ZoneInfo(resources.settings.display_timezone)
    words = TEXT[language(request)]
    raw_from, raw_to = request.query_params.get("from"), request.query_params.get("to")
    try:
        choice = read_choice(period, date, raw_from, raw_to)
        chosen = resolve(choice, tz)
    except ChoiceError as err:
        kept = Choice(*(v[:MAX_PARAM] for v in (period or "", date or "", raw_from or "", raw_to or "")))
        response = page(request, resources, "kpis.html", user=user, choice=kept, error=err.key, reports=[])
        response.status_code = status.HTTP_422_UNPROCESSABLE_CONTENT
        return response
    scopes = kpi_scopes(user, resources.policy)
    reports: list[ScopeReport] = []
    towns: list[Ranked] = []
    departments: list[Ranked] = []
    trend: list[tuple[str, TrendChart]] = []
    if scopes:
        previous = chosen.previous()
        widest_level, widest = scopes[0][0], scopes[0][1]
        lived_now = _load(resources, widest_level, widest, chosen)
        lived_before = _load(resources, widest_level, widest, previous)
        for level, scope, _name in scopes:
            mine = in_scope(resources.policy, level, scope, lived_now)
            now = summarise(level, scope, chosen.start, chosen.end, mine)
            before = summarise(
                level,
                scope,
                previous.start,
                previous.end,
                in_scope(resources.policy, level, scope, lived_before),
            )
            name = scope_name(resources, language(request), level, scope)
            reports.append(ScopeReport(level, scope, name, now, figure_rows(now, before, mine, words)))
        if may_compare_units(user) and widest_level == "district":
            org = resources.policy.organisation
            units = [(t.id, t.name) for t in org.towns]
            towns = rank_children(
                resources.policy, "district", widest, units, chosen, (lived_now, lived_before)
            )
            departments = rank_departments(resources.db, resources.policy, chosen)
        trend = weekly_trend(resources, widest_level, widest, chosen, tz, words)
    before_link, after_link = _period_links(choice, chosen, tz)
    return page(
        request,
        resources,
        "kpis.html",
        user=user,
        choice=choice,
        error=None,
        period=chosen,
        last_day=chosen.end - timedelta(seconds=1),
        query=urlencode(choice.query()),
        before_link=before_link,
        after_link=after_link,
        reports=reports,
        towns=towns,
        departments=departments,
        trend=trend,
        trend_name=reports[0].name if reports else "",
    )


def known_scope(resources: Resources, level: str, scope: str) -> bool:
    org = resources.policy.organisation
    communities = resources.catalog.communities
    return (
        (level == "district" and scope == org.district.id)
        or (level == "town" and any(t.id == scope for t in org.towns))
        or (level == "community" and scope in communities)
        or (level == "grid" and any(g.id == scope for c in communities.values() for g in c.grids))
    )


@router.get("/console/kpis/cases", response_class=HTMLResponse, response_model=None)
def kpi_cases_page(
    request: Request,
    resources: ResourcesDep,
    user: ConsoleUser,
    level: str = "district",
    scope: str | None = None,
    period: str | None = None,
    date: str | None = None,
    figure: str = "cases",
) -> Response:
    """The cases behind one figure of one scope and period, 50 a page, inside the user's jurisdiction."""
    tz = ZoneInfo(resources.settings.display_timezone)
    params = request.query_params
    scope = scope or resources.policy.organisation.district.id
    context: dict[str, object] = {"user": user, "figure": figure[:MAX_PARAM], "drill": None}

    def refused(key: str, code: int) -> Response:
        response = page(request, resources, "kpi_cases.html", error=key, **context)
        response.status_code = code
        return response

    try:
        choice = read_choice(period, date, params.get("from"), params.get("to"))
        chosen = resolve(choice, tz)
        if len(level) > MAX_PARAM or len(scope) > MAX_PARAM or len(figure) > MAX_PARAM:
            raise ChoiceError("kpi_err_too_long")
        number = _page_number(params.get("page"))
    except ChoiceError as err:
        return refused(err.key, status.HTTP_422_UNPROCESSABLE_CONTENT)
    if figure not in FIGURES:
        return refused("kpi_err_figure", status.HTTP_422_UNPROCESSABLE_CONTENT)
    if level not in LEVELS or not known_scope(resources, level, scope):
        return refused("kpi_err_scope", status.HTTP_404_NOT_FOUND)
    lvl: Level = level  # narrowed by the check against LEVELS above
    if not may_see_kpis(user, resources.policy, resources.catalog, lvl, scope):
        return refused("kpi_err_forbidden", status.HTTP_403_FORBIDDEN)
    try:
        drill = drill_down(
            resources.db,
            resources.policy,
            level=lvl,
            scope=scope,
            start=chosen.start,
            end=chosen.end,
            figure=figure,
            page=number,
        )
    except DrillError:
        return refused("kpi_err_page", status.HTTP_422_UNPROCESSABLE_CONTENT)
    base = {"level": level, "scope": scope, **choice.query(), "figure": figure}
    now = datetime.now(UTC)
    return page(
        request,
        resources,
        "kpi_cases.html",
        error=None,
        **{**context, "drill": drill},
        scope_title=scope_name(resources, language(request), lvl, scope),
        period=chosen,
        last_day=chosen.end - timedelta(seconds=1),
        back=urlencode(choice.query()),
        page_link=lambda n: urlencode({**base, "page": n}),
        sla={row.case.id: row_sla(row.case, now) for row in drill.rows if row.outcome == "unfinished"},
        first_row=(drill.page - 1) * PAGE_SIZE + 1,
    )


def _page_number(text: str | None) -> int:
    if not text:
        return 1
    if len(text) > 6 or not text.isdigit():
        raise ChoiceError("kpi_err_page")
    return int(text)
