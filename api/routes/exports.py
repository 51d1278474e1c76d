"""Exports as CSV or XLSX: KPIs (the filters of ``/api/v1/kpis``), cases (those of ``/api/v1/cases``)
and supervision orders (督办), each within the caller's jurisdiction. No personal data: neither a
reporter's phone nor a staff member's is ever a column, and no column is built from one."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, tzinfo
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query, status
from fastapi.responses import Response
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from api.console.i18n import STATE_NAMES, TEXT
from api.deps import CurrentUser, ResourcesDep
from api.errors import problem
from api.params import in_utc_range
from api.reports.monthly import unit_names
from api.reports.tabular import Cell, Column, Table, to_csv, to_xlsx
from api.routes.kpis import (
    Anchor,
    End,
    From,
    Kind,
    KpiLevel,
    Start,
    To,
    check_kpi_access,
    display_zone,
    kpi_figures,
    resolve_period,
    resolve_scope,
)
from api.scope import case_filter
from cases import queue
from cases.models import Case, CaseState, SupervisionOrder
from cases.queue import CaseFilters, SlaStatus
from cases.supervision_orders import state_at

router = APIRouter(prefix="/api/v1/exports", tags=["exports"])
Format = Literal["csv", "xlsx"]
Lang = Literal["zh", "en"]
# The most rows one export carries: a year of a large district's cases; more must be narrowed first.
MAX_ROWS = 100_000
MEDIA = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}
ERRORS: dict[int | str, dict[str, Any]] = {
    200: {
        "content": {"text/csv": {}, MEDIA["xlsx"]: {}},
        "description": "The file, with a header row",
    },
    403: problem("The scope is outside your jurisdiction"),
    404: problem("No such scope"),
    422: problem("Bad parameters, or more rows than one export carries"),
}


def _file(table: Table, fmt: Format, name: str, tz: tzinfo) -> Response:
    body = to_csv(table, tz) if fmt == "csv" else to_xlsx(table, tz)
    return Response(
        body,
        media_type=MEDIA[fmt],
        headers={"Content-Disposition": f'attachment; filename="{name}.{fmt}"', "Cache-Control": "no-store"},
    )


def _aware(*moments: datetime | None) -> None:
    """Times filter with their UTC offset, inside the calendar; 422 otherwise."""
    if any(m is not None and m.tzinfo is None for m in moments) or not in_utc_range(*moments):
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "from and to need a UTC offset")


def _not_too_many(count: int) -> None:
    if count > MAX_ROWS:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            f"{count} rows: one export carries at most {MAX_ROWS}; narrow the filters",
        )


AREA_FIGURES = (
    ("calls", "calls", "int"),
    ("all_cases.cases", "cases", "int"),
    ("all_cases.completed", "rpt_completed", "int"),
    ("all_cases.completion_rate", "completion_rate", "rate"),
    ("all_cases.on_time_rate", "on_time_rate", "rate"),
    ("all_cases.satisfaction_rate", "satisfaction_rate", "rate"),
    ("called_cases.cases", "called_cases", "int"),
    ("called_cases.completion_rate", "called_cases|completion_rate", "rate"),
    ("called_cases.on_time_rate", "called_cases|on_time_rate", "rate"),
    ("called_cases.satisfaction_rate", "called_cases|satisfaction_rate", "rate"),
    ("rework_rate", "rework_rate", "rate"),
    ("extension_rate", "extension_rate", "rate"),
    ("void_rate", "void_rate", "rate"),
    ("false_alarm_rate", "false_alarm_rate", "rate"),
)
DEPARTMENT_FIGURES = (
    ("calls", "rpt_calls_received", "int"),
    ("completed", "rpt_completed", "int"),
    ("on_time", "rpt_on_time", "int"),
    ("returned", "rpt_returned", "int"),
    ("completion_rate", "completion_rate", "rate"),
    ("on_time_rate", "on_time_rate", "rate"),
    ("return_rate", "rpt_return_rate", "rate"),
    ("rated", "rpt_rated", "int"),
    ("average_rating", "rpt_average_rating", "number"),
    *((f"rating_distribution.{n}", f"rpt_rating_distribution|{n}★", "int") for n in range(1, 6)),
)


def _pick(figures: dict[str, Any], path: str) -> Cell:
    value: Any = figures
    for key in path.split("."):
        value = value[int(key) if key.isdigit() else key]
    return value  # type: ignore[no-any-return]


def _header(words: dict[str, str], key: str) -> str:
    return " · ".join(words.get(part, part) for part in key.split("|"))


@router.get("/kpis.{fmt}", responses=ERRORS, response_class=Response)
def export_kpis(
    fmt: Format,
    resources: ResourcesDep,
    user: CurrentUser,
    start: Start = None,
    end: End = None,
    from_: From = None,
    to: To = None,
    level: KpiLevel = "district",
    scope: str | None = None,
    id_: Annotated[str | None, Query(alias="id")] = None,
    period: Kind = None,
    date_: Anchor = None,
    lang: Lang = "zh",
) -> Response:
    """The scope's KPIs of the period and of the period before: one row each."""
    chosen = resolve_period(resources, period, date_, from_ or start, to or end)
    unit = resolve_scope(resources, level, scope or id_)
    check_kpi_access(resources, user, level, unit)
    words, tz = TEXT[lang], display_zone(resources)
    figures = DEPARTMENT_FIGURES if level == "department" else AREA_FIGURES
    columns = [
        Column(words["rpt_scope"]),
        Column(words["rpt_which_period"]),
        Column(words["rpt_period_start"], "time"),
        Column(words["rpt_period_end"], "time"),
        *(Column(_header(words, key), kind) for _, key, kind in figures),  # type: ignore[arg-type]
    ]
    name = unit_names(resources).get(unit, unit)
    rows = []
    for label, span in ((words["rpt_current"], chosen), (words["rpt_previous"], chosen.previous())):
        found = kpi_figures(resources, level, unit, span)
        rows.append([name, label, span.start, span.end, *(_pick(found, path) for path, _, _ in figures)])
    return _file(Table("KPI", columns, rows), fmt, f"kpis-{unit}-{chosen.kind}", tz)


CASE_COLUMNS = (
    ("id", "int"),
    ("rpt_community", "text"),
    ("grid", "text"),
    ("category", "text"),
    ("state", "text"),
    ("rpt_severity", "text"),
    ("rpt_urgency", "text"),
    ("rpt_source", "text"),
    ("rpt_case_title", "text"),
    ("opened", "time"),
    ("deadline", "time"),
    ("rpt_closed_at", "time"),
    ("rpt_owner_town", "text"),
    ("department", "text"),
    ("assignee", "text"),
    ("stage", "text"),
    ("rpt_orders", "int"),
)


@router.get("/cases.{fmt}", responses=ERRORS, response_class=Response)
def export_cases(
    fmt: Format,
    resources: ResourcesDep,
    user: CurrentUser,
    state: Annotated[list[CaseState] | None, Query(description="Only cases in these states.")] = None,
    open_only: Annotated[bool, Query(alias="open", description="Only cases not yet closed.")] = False,
    category: str | None = None,
    grid: str | None = None,
    assignee: str | None = None,
    sla: SlaStatus | None = None,
    from_: From = None,
    to: To = None,
    lang: Lang = "zh",
) -> Response:
    """The cases of ``/api/v1/cases`` (same filters; ``from``/``to``: opened within), oldest first."""
    filters = CaseFilters(
        states=state or (), open_only=open_only, category=category, grid=grid, assignee=assignee, sla=sla
    )
    _aware(from_, to)
    query = queue.filtered(case_filter(user, resources.policy), filters)
    if from_ is not None:
        query = query.where(Case.opened_at >= from_)
    if to is not None:
        query = query.where(Case.opened_at < to)
    words, tz = TEXT[lang], display_zone(resources)
    names = unit_names(resources)
    categories = {c.code: (c.name_zh if lang == "zh" else c.name_en) for c in resources.categories.values()}
    states = STATE_NAMES[lang]
    columns = [Column(words[key], kind) for key, kind in CASE_COLUMNS]  # type: ignore[arg-type]
    with Session(resources.db) as session:
        _not_too_many(session.scalar(select(func.count()).select_from(query.subquery())) or 0)
        rows = session.execute(
            query.with_only_columns(
                Case.id,
                Case.community,
                Case.grid,
                Case.category,
                Case.state,
                Case.severity,
                Case.urgency,
                Case.source,
                Case.title,
                Case.opened_at,
                Case.deadline,
                Case.closed_at,
                Case.owner_town,
                Case.department,
                Case.assignee,
                Case.stage,
                Case.breaches,
            ).order_by(Case.opened_at, Case.id)
        ).all()

    def cells() -> Iterator[Sequence[Cell]]:
        for r in rows:
            yield [
                r.id,
                names.get(r.community, r.community),
                names.get(r.grid, r.grid),
                categories.get(r.category, r.category),
                states.get(r.state, r.state),
                r.severity,
                r.urgency,
                r.source,
                r.title,
                r.opened_at,
                r.deadline,
                r.closed_at,
                names.get(r.owner_town, r.owner_town),
                names.get(r.department or "", r.department),
                r.assignee,
                r.stage,
                r.breaches,
            ]

    return _file(Table("cases", columns, cells()), fmt, "cases", tz)


SUPERVISION_COLUMNS = (
    ("rpt_order_id", "int"),
    ("id", "int"),
    ("rpt_community", "text"),
    ("grid", "text"),
    ("category", "text"),
    ("rpt_issued_at", "time"),
    ("stage", "text"),
    ("rpt_level", "int"),
    ("rpt_breach_unit", "text"),
    ("rpt_addressed_to", "text"),
    ("sup_kind", "text"),
    ("sup_reason", "text"),
    ("sup_due", "time"),
    ("sup_state", "text"),
    ("sup_answer", "text"),
)


@router.get("/supervision.{fmt}", responses=ERRORS, response_class=Response)
def export_supervision(
    fmt: Format,
    resources: ResourcesDep,
    user: CurrentUser,
    from_: Annotated[datetime | None, Query(alias="from", description="Issued from (with offset).")] = None,
    to: Annotated[datetime | None, Query(description="Issued until (exclusive).")] = None,
    unit: Annotated[
        str | None, Query(max_length=64, description="Only orders counted against this unit.")
    ] = None,
    level: Annotated[int | None, Query(ge=1, le=2, description="1: the unit; 2: its leader.")] = None,
    stage: Annotated[str | None, Query(max_length=16)] = None,
    grid: Annotated[str | None, Query(max_length=64)] = None,
    lang: Lang = "zh",
) -> Response:
    """The supervision orders (督办) of the cases you may see, oldest first."""
    _aware(from_, to)
    query = (
        select(SupervisionOrder, Case.community, Case.grid, Case.category)
        .join(Case, Case.id == SupervisionOrder.case_id)
        .where(case_filter(user, resources.policy))
    )
    if from_ is not None:
        query = query.where(SupervisionOrder.issued_at >= from_)
    if to is not None:
        query = query.where(SupervisionOrder.issued_at < to)
    if unit is not None:
        query = query.where(SupervisionOrder.unit == unit)
    if level is not None:
        query = query.where(SupervisionOrder.level == level)
    if stage is not None:
        query = query.where(SupervisionOrder.stage == stage)
    if grid is not None:
        query = query.where(Case.grid == grid)
    words, tz = TEXT[lang], display_zone(resources)
    names = unit_names(resources)
    categories = {c.code: (c.name_zh if lang == "zh" else c.name_en) for c in resources.categories.values()}
    columns = [Column(words[key], kind) for key, kind in SUPERVISION_COLUMNS]  # type: ignore[arg-type]
    now = datetime.now(UTC)
    with Session(resources.db) as session:
        _not_too_many(session.scalar(select(func.count()).select_from(query.subquery())) or 0)
        rows = session.execute(query.order_by(SupervisionOrder.issued_at, SupervisionOrder.id)).all()
    # Who answered is left out with every other person's name: the export goes to leaders and files.
    table = Table(
        "supervision",
        columns,
        (
            [
                order.id,
                order.case_id,
                names.get(community, community),
                names.get(grid, grid),
                categories.get(category, category),
                order.issued_at,
                order.stage,
                order.level,
                names.get(order.unit, order.unit),
                order.addressed_to,
                words[f"sup_kind_{order.kind}"],
                order.reason or "",
                order.due_at,
                words[f"sup_state_{state_at(order, now)}"],
                order.answer or "",
            ]
            for order, community, grid, category in rows
        ),
    )
    return _file(table, fmt, "supervision", tz)
