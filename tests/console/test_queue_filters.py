"""The console queue over HTTP, on SQLite and on PostgreSQL: each filter, the search, each sort, the
counts beside the filter values, bad input named, and the live row endpoint."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from api import accounts
from api.settings import ApiSettings
from cases.actions import CaseFlow, Report, warn_stage
from cases.models import Case
from cases.policy import CasePolicy
from common.db import make_engine
from tests.api import conftest as api_fixtures
from tests.api.conftest import CONFIG, console_login
from tests.factories import open_flooding_cases

# The API tests' fixtures (an app on SQLite and on PostgreSQL), used here under their own names.
api_database_url, settings, client = api_fixtures.api_database_url, api_fixtures.settings, api_fixtures.client


def seed(settings: ApiSettings) -> dict[str, int]:
    """Five open cases and a closed one, across grids, categories, sources, states, SLA states:

    flood    sensor  g-north   NEW       on time   (the device wl-01's alert)
    smoke    report  g-middle  ASSIGNED  on time   assigned to sun.li
    lane     report  g-south   NEW       overdue   (opened two days ago)
    gas      report  g-north   NEW       warning   (the SLA monitor's 80 % mark)
    door     report  g-middle  VERIFYING on time   location 竹竿巷7号院 only in the evidence-less title
    voided   report  g-south   VOID      —         never in the queue
    """
    now = datetime.now(UTC)  # at seeding: stage clocks run from here (the suite may start minutes earlier)
    db = make_engine(settings.database_url)
    accounts.create_user(db, "op", "correct horse", role="district_operator")
    policy = CasePolicy.load(CONFIG)
    open_flooding_cases(settings.database_url, [now - timedelta(seconds=70)])
    flow = CaseFlow(db, policy)

    def report(grid: str, category: str, where: str, now: datetime) -> int:
        found, _ = flow.report(
            Report("zhuganxiang", grid, category, f"{where}有情况", location=where), actor="op", now=now
        )
        return found

    ids = {
        "smoke": report("g-middle", "fire_smoke", "竹竿巷3号楼 楼道", now - timedelta(minutes=4)),
        "lane": report("g-south", "fire_lane_blocked", "竹竿巷12号院 东门", now - timedelta(days=2)),
        "gas": report("g-north", "gas_leak", "竹竿巷1号院 厨房", now - timedelta(minutes=1)),
        "door": report("g-middle", "door_left_open", "竹竿巷7号院 配电间", now - timedelta(minutes=2)),
        "voided": report("g-south", "camera_tamper", "竹竿巷15号楼", now - timedelta(seconds=30)),
    }
    for action, params in (("accept", {}), ("verify", {}), ("assign", {"assignee": "sun.li"})):
        flow.act(ids["smoke"], action, actor="op", params=params)
    flow.act(ids["door"], "accept", actor="op")
    flow.act(ids["voided"], "void", actor="op", note="重复上报", params={"reason": "duplicate"})
    with Session(db) as session, session.begin():
        gas = session.get(Case, ids["gas"])
        assert gas is not None
        warn_stage(session, gas, note="accept: 80 % of the time used", actor="system:sla", now=now)
        flood = session.query(Case).filter(Case.source == "sensor").one()
        ids["flood"] = flood.id
    db.dispose()
    return ids


def shown(page: str) -> list[int]:
    return [int(i) for i in re.findall(r'<tr class="[^"]*" data-case-id="(\d+)"', page)]


def option_count(page: str, facet: str, value: str) -> int:
    select = re.search(rf'<select name="{facet}".*?</select>', page, re.S)
    assert select is not None, facet
    found = re.search(rf'<option value="{re.escape(value)}"[^>]*>[^<]*\((\d+)\)</option>', select.group(0))
    assert found is not None, (facet, value, select.group(0))
    return int(found.group(1))


@pytest.fixture
def signed_in(client: TestClient, settings: ApiSettings) -> tuple[TestClient, dict[str, int]]:
    ids = seed(settings)
    assert console_login(client).status_code == 200
    return client, ids


def test_every_filter_narrows_the_queue_and_the_counts_follow(
    signed_in: tuple[TestClient, dict[str, int]],
) -> None:
    client, ids = signed_in
    everything = client.get("/console", params={"lang": "zh"}).text
    assert sorted(shown(everything)) == sorted(ids[k] for k in ("flood", "smoke", "lane", "gas", "door"))
    assert (
        option_count(everything, "grid", "g-north") == 2 and option_count(everything, "grid", "g-middle") == 2
    )
    assert (
        option_count(everything, "source", "sensor") == 1
        and option_count(everything, "source", "report") == 4
    )
    assert option_count(everything, "sla", "overdue") == 1 and option_count(everything, "sla", "warning") == 1
    assert (
        option_count(everything, "assignee", "sun.li") == 1 and option_count(everything, "assignee", "-") == 4
    )
    cases = {
        "category": ("fire_smoke", ["smoke"]),
        "grid": ("g-middle", ["smoke", "door"]),
        "state": ("VERIFYING", ["door"]),
        "sla": ("overdue", ["lane"]),
        "source": ("sensor", ["flood"]),
        "assignee": ("sun.li", ["smoke"]),
    }
    for facet, (value, expected) in cases.items():
        page = client.get("/console", params={facet: value})
        assert page.status_code == 200, page.text[:300]
        assert sorted(shown(page.text)) == sorted(ids[k] for k in expected), facet
        assert 'id="queue-clear" href="/console"' in page.text  # the page offers "clear"
    # Counts are within the other filters: in g-north, one sensor case and one reported.
    north = client.get("/console", params={"grid": "g-north"}).text
    assert option_count(north, "source", "sensor") == 1 and option_count(north, "source", "report") == 1
    assert option_count(north, "grid", "g-middle") == 2  # its own facet's other values stay countable
    assert option_count(north, "state", "ASSIGNED") == 0
    # Two filters at once, and what the page says it filtered by, in words.
    both = client.get("/console", params={"grid": "g-middle", "state": "ASSIGNED", "lang": "en"}).text
    assert shown(both) == [ids["smoke"]]
    assert "Filtered by Grid: 中区网格; State: Assigned" in both
    assert 'id="queue-total">1<' in both


def test_search_by_number_title_and_location(signed_in: tuple[TestClient, dict[str, int]]) -> None:
    client, ids = signed_in
    assert shown(client.get("/console", params={"q": f"#{ids['gas']}"}).text) == [ids["gas"]]
    assert shown(client.get("/console", params={"q": "配电间"}).text) == [ids["door"]]  # in the title
    # The sensor case's evidence names its location (the device's place): found by it.
    flood = client.get("/console", params={"q": "地下车库"}).text
    assert shown(flood) == [ids["flood"]]
    none = client.get("/console", params={"q": "100%_not-there"}).text  # LIKE's wildcards are literal
    assert shown(none) == [] and 'id="no-cases"' in none and "没有符合筛选条件的待办工单" in none
    # The counts follow the search too.
    assert option_count(client.get("/console", params={"q": "竹竿巷"}).text, "grid", "g-north") == 2


def test_sorts(signed_in: tuple[TestClient, dict[str, int]], settings: ApiSettings) -> None:
    client, ids = signed_in
    db = make_engine(settings.database_url)
    with Session(db) as session:
        found = [session.get(Case, ids[k]) for k in ("flood", "smoke", "lane", "gas", "door")]
    db.dispose()
    cases = [c for c in found if c is not None]
    assert len(cases) == 5

    def due(c: Case) -> datetime:
        return c.stage_due or c.deadline

    rank = {"critical": 0, "warning": 1, "info": 2}
    by_due = [c.id for c in sorted(cases, key=lambda c: (due(c), c.id))]
    by_severity = [c.id for c in sorted(cases, key=lambda c: (rank[c.severity], due(c), c.id))]
    assert shown(client.get("/console").text) == by_due
    assert by_due[0] == ids["lane"]  # overdue for two days
    newest = shown(client.get("/console", params={"sort": "newest"}).text)
    assert newest == [ids[k] for k in ("gas", "flood", "door", "smoke", "lane")]
    assert shown(client.get("/console", params={"sort": "severity"}).text) == by_severity
    # The live endpoint's keys sort the rows as the database did, for every order.
    for sort in ("due", "newest", "severity"):
        rows = client.get("/console/queue/rows", params={"sort": sort}).json()["rows"]
        keys = [r["key"] for r in rows]
        assert keys == sorted(keys) and len(rows) == 5, sort


def test_bad_filters_are_named_and_the_rest_kept(signed_in: tuple[TestClient, dict[str, int]]) -> None:
    client, ids = signed_in
    page = client.get("/console", params={"sort": "sideways", "grid": "g-middle", "lang": "en"})
    assert page.status_code == 400
    assert "The filter “Sort” was not understood and is ignored: choose an order from the list" in page.text
    assert sorted(shown(page.text)) == sorted([ids["smoke"], ids["door"]])  # the grid filter still holds
    long = client.get("/console", params={"q": "x" * 101, "lang": "zh"})
    assert long.status_code == 400 and "内容过长" in long.text
    assert client.get("/console", params={"state": "CLOSED"}).status_code == 400  # not a queue state
    assert client.get("/console", params={"q": "y" * 3000}).status_code == 400  # too long to parse


def test_live_rows_endpoint_returns_matching_rows_and_names_the_gone(
    signed_in: tuple[TestClient, dict[str, int]],
) -> None:
    client, ids = signed_in
    asked = f"{ids['smoke']},{ids['door']},{ids['voided']},{ids['flood']}"
    answer = client.get("/console/queue/rows", params={"grid": "g-middle", "ids": asked})
    assert answer.status_code == 200
    body = answer.json()
    assert sorted(r["id"] for r in body["rows"]) == sorted([ids["smoke"], ids["door"]])
    assert sorted(body["gone"]) == sorted([ids["voided"], ids["flood"]])
    assert body["total"] == 2 and body["counts"]["grid"]["g-north"] == 2 and not body["complete"]
    assert all(r["html"].lstrip().startswith("<tr") and "中区网格" in r["html"] for r in body["rows"])
    keys = [r["key"] for r in body["rows"]]
    assert keys == sorted(keys)
    whole = client.get("/console/queue/rows", params={"sort": "newest"}).json()
    assert whole["complete"] and [r["id"] for r in whole["rows"]][:2] == [ids["gas"], ids["flood"]]
    bad = client.get("/console/queue/rows", params={"ids": "1,two"})
    assert bad.status_code == 400 and bad.json()["field"] == "ids"
    too_many = client.get("/console/queue/rows", params={"ids": ",".join(str(i) for i in range(1, 300))})
    assert too_many.status_code == 400 and "at most 200" in too_many.json()["detail"]
    client.post("/console/logout")
    assert client.get("/console/queue/rows", params={"ids": "1"}).status_code == 401
