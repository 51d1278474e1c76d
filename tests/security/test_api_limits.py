"""Requests that are well-formed but ask too much, against the real API process: each gets a 4xx that
says what is wrong, and changes nothing."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from cases.workflow import ACTIONS
from tests.security.conftest import RealApi, bearer

pytestmark = pytest.mark.e2e


@pytest.fixture
def district(real_api: RealApi) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=real_api.base, headers=bearer(real_api.district_token), timeout=10) as c:
        yield c


@pytest.fixture
def town(real_api: RealApi) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=real_api.base, headers=bearer(real_api.town_token), timeout=10) as c:
        yield c


def in_hours(hours: float) -> str:
    return (datetime.now(UTC) + timedelta(hours=hours)).isoformat()


def test_an_aggregate_of_a_million_windows_is_refused_before_the_store_is_asked(
    district: httpx.Client,
) -> None:
    until = datetime(2026, 1, 1, tzinfo=UTC)
    query: dict[str, str | int] = {
        "field": "level_cm",
        "fn": "max",
        "window_s": 1,
        "until": until.isoformat(),
    }
    path = "/api/v1/devices/wl-01/telemetry/aggregate"
    too_many = district.get(path, params=query | {"since": (until - timedelta(days=365)).isoformat()})
    assert too_many.status_code == 422, too_many.text[:200]
    detail = too_many.json()["detail"]
    assert "31,536,000 windows" in detail and "at most 10,000" in detail and "3154 s" in detail
    # Exactly the bound is served.
    bound = district.get(path, params=query | {"since": (until - timedelta(seconds=10_000)).isoformat()})
    assert bound.status_code == 200, bound.text[:200]


def test_a_town_silences_neither_for_ever_nor_a_whole_community(town: httpx.Client) -> None:
    def silence(matchers: dict[str, str], hours: float) -> httpx.Response:
        return town.post("/api/v1/silences", json={"matchers": matchers, "ends_at": in_hours(hours)})

    community = {"community": "zhuganxiang"}
    until_9999 = town.post(
        "/api/v1/silences",
        json={"matchers": community | {"device": "wl-01"}, "ends_at": "9999-12-31T00:00:00+00:00"},
    )
    assert until_9999.status_code == 422, until_9999.text[:200]
    assert "at most 30 days" in until_9999.json()["detail"]
    assert silence(community | {"device": "wl-01"}, 24 * 30 + 1).status_code == 422
    everything = silence(community, 2)
    assert everything.status_code == 403, everything.text[:200]
    assert "rule, category, device" in everything.json()["detail"]
    assert silence(community | {"grid": "g-north"}, 2).status_code == 403
    assert town.get("/api/v1/silences").json() == []  # nothing of the refused ones was kept
    # Named: allowed, for up to 30 days.
    assert silence(community | {"category": "fire_smoke"}, 2).status_code == 201
    assert silence(community | {"device": "wl-01"}, 24 * 30 - 1).status_code == 201


def test_the_district_silences_a_community_but_not_for_longer_than_30_days(district: httpx.Client) -> None:
    matchers = {"community": "zhuganxiang"}
    answer = district.post("/api/v1/silences", json={"matchers": matchers, "ends_at": in_hours(24 * 31)})
    assert answer.status_code == 422, answer.text[:200]
    answer = district.post("/api/v1/silences", json={"matchers": matchers, "ends_at": in_hours(2)})
    assert answer.status_code == 201, answer.text[:200]


def test_case_action_parameters_are_checked_per_action(district: httpx.Client) -> None:
    report = {
        "community": "zhuganxiang",
        "grid": "g-north",
        "category": "fire_lane_blocked",
        "description": "车辆占用消防通道",
    }
    case_id = district.post("/api/v1/cases", json=report).json()["id"]

    def act(action: str, **params: Any) -> httpx.Response:
        return district.post(f"/api/v1/cases/{case_id}/actions", json={"action": action, "params": params})

    assert act("accept").status_code == 200
    assert act("verify").status_code == 200
    refused = {
        "unknown key": (act("assign", assignee="li.na", sudo=True), "'sudo'"),
        "set by the platform": (act("assign", assignee="li.na", from_roster=True), "'from_roster'"),
        "too long": (act("assign", assignee="x" * 100_000), "assignee is longer than 128"),
        "not text": (act("assign", assignee={"$ne": ""}), "assignee must be text"),
        "another action's key": (act("verify", urgency="urgent", rating=5), "'rating'"),
    }
    for why, (answer, named) in refused.items():
        assert answer.status_code == 422, f"{why}: {answer.status_code} {answer.text[:200]}"
        assert named in answer.json()["detail"], f"{why}: {answer.json()['detail']}"
    case = district.get(f"/api/v1/cases/{case_id}").json()
    assert case["state"] == "FILED" and case["assignee"] is None  # nothing of the refused ones happened
    assigned = act("assign", assignee="li.na")
    assert assigned.status_code == 200 and assigned.json()["assignee"] == "li.na"


def test_every_action_declares_the_parameters_it_needs() -> None:
    for name, action in ACTIONS.items():
        assert set(action.needs) <= set(action.params), name
