"""Exports of KPIs, cases and supervision orders as CSV and XLSX over a generated month
(``tests/cases/kpi_month.py``): the files reopened (csv, openpyxl), the figures, the filters, the
jurisdiction, formula guarding, and no personal data anywhere in them."""

from __future__ import annotations

import csv
import io
import zipfile
from datetime import datetime
from typing import Any

import openpyxl  # type: ignore[import-untyped]
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from api.reports.tabular import guard
from cases.actions import CaseFlow
from cases.models import Case
from cases.policy import CasePolicy
from common.db import make_engine
from tests.api.conftest import auth
from tests.api.two_towns import TOWN_A, Seeded
from tests.cases.kpi_month import PHONE, generate_month, opened_at

STAFF_PHONE = "13700001111"
NOVEMBER = {"from": "2026-11-01T00:00:00+08:00", "to": "2026-12-01T00:00:00+08:00"}
TRAPS = ("=1+2", "@SUM(A1)", "+1-1", "-2+3")  # assignees that a spreadsheet would run as formulas


@pytest.fixture(scope="module")
def month(towns: Seeded) -> dict[int, int]:
    db = make_engine(towns.settings.database_url)
    policy = CasePolicy.load(towns.settings.config_dir)
    try:
        ids = generate_month(db, policy)
        flow = CaseFlow(db, policy)
        for number, trap in zip((28, 29, 24, 25), TRAPS, strict=True):
            case_id = ids[number]
            if number in (28, 29):  # new: accepted and verified first
                for action in ("accept", "verify"):
                    flow.act(case_id, action, actor="wang.wei")
            else:  # in handling: handed back first
                flow.act(
                    case_id, "return", actor="wang.wei", params={"reason": "r", "approved_by": "chen.jie"}
                )
            # Assignees are people of the organisation now; a trap can only be an older row's.
            flow.act(case_id, "assign", actor="wang.wei", params={"assignee": "li.na"})
            with db.begin() as conn:
                conn.execute(update(Case).where(Case.id == case_id).values(assignee=trap))
        return ids
    finally:
        db.dispose()


@pytest.fixture(scope="module")
def api(towns_api: TestClient, towns: Seeded, month: dict[int, int]) -> TestClient:
    # A staff phone in the organisation: personal data no export may carry.
    person = {"name": "李娜", "role": "grid_worker", "unit": "g-north", "phone": STAFF_PHONE}
    answer = towns_api.put(
        "/api/v1/organisation/people/li.na", json=person, headers=auth(towns.tokens["admin"])
    )
    assert answer.status_code in (200, 201), answer.text
    return towns_api


def _get(api: TestClient, towns: Seeded, path: str, who: str = "admin", **params: Any) -> Any:
    return api.get(f"/api/v1/exports/{path}", params=params, headers=auth(towns.tokens[who]))


def _csv(api: TestClient, towns: Seeded, path: str, who: str = "admin", **params: Any) -> list[list[str]]:
    answer = _get(api, towns, path, who, **params)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/csv")
    assert answer.content.startswith("\ufeff".encode())
    return list(csv.reader(io.StringIO(answer.content.decode("utf-8-sig"))))


def _xlsx(api: TestClient, towns: Seeded, path: str, who: str = "admin", **params: Any) -> Any:
    answer = _get(api, towns, path, who, **params)
    assert answer.status_code == 200, answer.text
    return openpyxl.load_workbook(io.BytesIO(answer.content)).active


def test_kpis_as_csv_and_xlsx(api: TestClient, towns: Seeded) -> None:
    params = {"period": "month", "date": "2026-11-15"}
    rows = _csv(api, towns, "kpis.csv", **params)
    header = rows[0]
    assert header[:4] == ["范围", "周期", "起", "止"] and "按时办结率" in header
    current, previous = (dict(zip(header, row, strict=True)) for row in rows[1:])
    assert (current["周期"], current["工单数"], current["按时办结率"], current["呼叫次数"]) == (
        "本期",
        "39",
        "0.8824",
        "4",
    )
    assert (previous["周期"], previous["工单数"], previous["按时办结率"]) == ("上期", "2", "0.5")
    assert current["起"] == "2026-11-01 00:00:00" and previous["起"] == "2026-10-01 00:00:00"
    sheet = _xlsx(api, towns, "kpis.xlsx", lang="en", **params)
    cells = [[c.value for c in row] for row in sheet.iter_rows()]
    assert cells[0][:2] == ["Scope", "Period"] and "On-time completion" in cells[0]
    on_time = cells[0].index("On-time completion")
    assert cells[1][on_time] == 0.8824 and cells[2][on_time] == 0.5
    assert cells[1][cells[0].index("Cases")] == 39 and isinstance(cells[1][cells[0].index("Cases")], int)
    assert cells[1][2] == datetime(2026, 11, 1) and sheet.cell(2, 3).is_date
    assert sheet.cell(2, on_time + 1).number_format == "0.0%"


def test_department_kpis_export(api: TestClient, towns: Seeded) -> None:
    sheet = _xlsx(
        api,
        towns,
        "kpis.xlsx",
        lang="en",
        level="department",
        id="enforcement",
        period="month",
        date="2026-11-01",
    )
    header = [c.value for c in sheet[1]]
    row = dict(zip(header, [c.value for c in sheet[2]], strict=True))
    assert (row["Calls received"], row["Completed"], row["Returned"], row["Average rating"]) == (
        3,
        2,
        1,
        3.67,
    )
    assert [row[f"Ratings (1-5 stars) · {n}★"] for n in range(1, 6)] == [0, 1, 0, 1, 1]


def test_cases_export_with_the_filters_of_the_listing(
    api: TestClient, towns: Seeded, month: dict[int, int]
) -> None:
    rows = _csv(api, towns, "cases.csv", grid="g-north", **NOVEMBER)
    ids = {int(r[0]) for r in rows[1:]}
    assert ids == {month[i] for i in range(0, 30, 3)}  # 0, 3, ..., 27: town A's north grid
    closed = _csv(api, towns, "cases.csv", state="RETURN_VISIT", **NOVEMBER)
    assert {int(r[0]) for r in closed[1:]} == {month[i] for i in (*range(20), 21, 22, 23)}
    sheet = _xlsx(api, towns, "cases.xlsx", lang="en", grid="xg-north", **NOVEMBER)
    header = [c.value for c in sheet[1]]
    first = dict(zip(header, [c.value for c in sheet[2]], strict=True))
    assert first["No."] == month[30] and first["Opened"] == opened_at(30).replace(tzinfo=None)
    assert first["State"] == "Closed" and first["Community"] == "新河社区"
    assert len(list(sheet.iter_rows())) == 1 + 4  # 30, 33, 36, 39
    assert _get(api, towns, "cases.csv", **{"from": "2026-11-01T00:00:00"}).status_code == 422


def test_supervision_export(api: TestClient, towns: Seeded, month: dict[int, int]) -> None:
    rows = _csv(api, towns, "supervision.csv", lang="en", **NOVEMBER)
    assert rows[0][:2] == ["Order number", "No."]
    assert rows[0][-5:] == ["Source", "Reason", "Answer due", "State", "Answer"]
    # Breach orders of a past month: issued by the clock, never answered, so overdue — in words.
    assert {(r[-5], r[-2]) for r in rows[1:]} == {("Automatic (deadline missed)", "Overdue")}
    assert sorted(int(r[1]) for r in rows[1:]) == sorted([month[1], month[7], month[7], month[11]])
    yuehe = _csv(api, towns, "supervision.csv", unit=TOWN_A, **NOVEMBER)
    assert len(yuehe) == 1 + 3
    escalated = _xlsx(api, towns, "supervision.xlsx", level=2)
    assert [c.value for c in escalated[2]][1] == month[7] and escalated.max_row == 2


@pytest.mark.parametrize(
    ("who", "path", "params", "status", "rows"),
    [
        ("town_operator", "kpis.csv", {}, 403, None),  # the district's
        ("town_operator", "kpis.csv", {"level": "town", "scope": TOWN_A}, 200, 2),
        ("town_b", "kpis.csv", {"level": "town", "scope": TOWN_A}, 403, None),
        ("grid_worker", "kpis.xlsx", {"level": "grid", "scope": "g-south"}, 403, None),
        ("department_handler", "kpis.csv", {"level": "department", "id": "enforcement"}, 403, None),
        ("department_handler", "kpis.csv", {"level": "department", "id": "water"}, 200, 2),
        ("admin", "kpis.csv", {"level": "department", "id": "nowhere"}, 404, None),
        ("admin", "kpis.csv", {"period": "custom"}, 422, None),
        ("town_operator", "cases.csv", NOVEMBER, 200, 30),  # town A's month, none of town B's
        ("town_b", "cases.csv", NOVEMBER, 200, 10),
        ("grid_worker", "cases.csv", NOVEMBER, 200, 10),  # their grid
        ("department_handler", "cases.csv", NOVEMBER, 200, 1),  # the call to water (case 4)
        ("town_b", "supervision.csv", NOVEMBER, 200, 0),
        ("town_operator", "supervision.csv", NOVEMBER, 200, 4),
        ("grid_worker", "supervision.csv", NOVEMBER, 200, 0),  # 1, 7 and 11 are not on g-north
        ("admin", "supervision.pdf", {}, 422, None),
    ],
)
def test_exports_keep_to_the_jurisdiction(
    api: TestClient, towns: Seeded, who: str, path: str, params: dict[str, str], status: int, rows: int | None
) -> None:
    answer = _get(api, towns, path, who, **params)
    assert answer.status_code == status, answer.text
    if rows is not None and path.endswith(".csv"):
        assert len(list(csv.reader(io.StringIO(answer.content.decode("utf-8-sig"))))) == 1 + rows


def test_formulas_are_text(api: TestClient, towns: Seeded) -> None:
    assert [guard(t) for t in (*TRAPS, "ok", "\tx")] == [*(f"'{t}" for t in TRAPS), "ok", "'\tx"]
    rows = _csv(api, towns, "cases.csv", lang="en", **NOVEMBER)
    assignee = rows[0].index("Assignee")
    assert {r[assignee] for r in rows[1:]} >= {f"'{t}" for t in TRAPS}
    assert not any(cell[:1] in "=+-@" and cell for r in rows for cell in r)
    sheet = _xlsx(api, towns, "cases.xlsx", lang="en", **NOVEMBER)
    column = [c.value for c in sheet[1]].index("Assignee")
    traps = [row[column] for row in sheet.iter_rows(min_row=2) if row[column].value in TRAPS]
    assert {c.value for c in traps} == set(TRAPS) and {c.data_type for c in traps} == {"s"}


PHONE_WORDS = ("phone", "电话", "手机", "tel")


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_no_personal_data_in_any_export(api: TestClient, towns: Seeded, fmt: str) -> None:
    for path, params in (
        ("kpis", {"period": "month", "date": "2026-11-15"}),
        ("kpis", {"level": "department", "id": "enforcement", "period": "month", "date": "2026-11-15"}),
        ("cases", {}),
        ("supervision", {}),
    ):
        for lang in ("zh", "en"):
            answer = _get(api, towns, f"{path}.{fmt}", lang=lang, **params)
            assert answer.status_code == 200
            if fmt == "csv":
                text = answer.content.decode("utf-8-sig")
                header = next(csv.reader(io.StringIO(text)))
            else:
                with zipfile.ZipFile(io.BytesIO(answer.content)) as book:
                    text = "".join(book.read(name).decode("utf-8") for name in book.namelist())
                sheet = openpyxl.load_workbook(io.BytesIO(answer.content)).active
                header = [str(c.value) for c in sheet[1]]
            assert PHONE not in text and STAFF_PHONE not in text, path
            assert not any(word in h.lower() for h in header for word in PHONE_WORDS), header
