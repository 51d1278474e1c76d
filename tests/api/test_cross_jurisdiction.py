"""Across the line between two towns: a town-A account asking for town-B ids gets 404, never data.

KPIs and rosters name organisation units that are public in ``/api/v1/organisation``: outside the
jurisdiction they answer 403 (tested in test_jurisdiction.py), and never the figures.
"""

import pytest
from fastapi.testclient import TestClient

from tests.api.conftest import auth
from tests.api.two_towns import A, B, Seeded


# A district department serves every town (it sees what either town called up to it): not listed here.
@pytest.mark.parametrize("who", ["town_operator", "grid_worker", "building_head"])
def test_the_other_towns_ids_do_not_exist(towns_api: TestClient, towns: Seeded, who: str) -> None:
    token = towns.tokens[who]
    for case_id in towns.cases[B]:
        for response in (
            towns_api.get(f"/api/v1/cases/{case_id}", headers=auth(token)),
            towns_api.post(
                f"/api/v1/cases/{case_id}/actions", headers=auth(token), json={"action": "accept"}
            ),
            towns_api.get(f"/open311/v2/requests/{case_id}.json", params={"api_key": token}),
        ):
            assert response.status_code == 404 and B not in response.text, response.request.url
        assert (
            towns_api.get(
                "/open311/v2/requests.json", params={"api_key": token, "service_request_id": case_id}
            ).json()
            == []
        )
    for path in (
        "/api/v1/devices/xwl-01/telemetry",
        "/api/v1/devices/xwl-01/telemetry/aggregate?field=level_cm",
    ):
        response = towns_api.get(path, headers=auth(token))
        assert response.status_code == 404 and 'level_cm":' not in response.text
    assert towns_api.delete(f"/api/v1/silences/{towns.silences[B]}", headers=auth(token)).status_code == 404
    # Lists leave the other town out altogether.
    lists = {
        "cases": [
            c["community"] for c in towns_api.get("/api/v1/cases", headers=auth(token)).json()["items"]
        ],
        "alerts": [
            a["community"] for a in towns_api.get("/api/v1/alerts", headers=auth(token)).json()["items"]
        ],
        "devices": [
            d["community"] for d in towns_api.get("/api/v1/devices", headers=auth(token)).json()["items"]
        ],
        "gateways": [
            g["community"] for g in towns_api.get("/api/v1/gateways", headers=auth(token)).json()["items"]
        ],
        "silences": [
            s["matchers"]["community"] for s in towns_api.get("/api/v1/silences", headers=auth(token)).json()
        ],
        "open311": [
            r["address_id"]
            for r in towns_api.get("/open311/v2/requests.json", params={"api_key": token}).json()
        ],
    }
    assert not any(B in str(values) for values in lists.values()), lists
    assert A in lists["cases"] and A in lists["alerts"] and A in lists["devices"] and A in lists["silences"]


def test_the_line_holds_from_the_other_side_and_district_staff_see_both(
    towns_api: TestClient, towns: Seeded
) -> None:
    town_b = towns.tokens["town_b"]
    for case_id in towns.cases[A]:
        assert towns_api.get(f"/api/v1/cases/{case_id}", headers=auth(town_b)).status_code == 404
    assert towns_api.get(f"/api/v1/cases/{towns.cases[B][0]}", headers=auth(town_b)).status_code == 200
    assert (
        towns_api.get("/api/v1/devices/wl-01/telemetry", headers=auth(towns.tokens["worker_b"])).status_code
        == 404
    )
    district = {
        c["community"]
        for c in towns_api.get("/api/v1/cases", headers=auth(towns.tokens["supervisor"])).json()["items"]
    }
    assert district == {A, B}


def test_only_the_towns_operator_or_district_staff_end_a_silence(
    towns_api: TestClient, towns: Seeded
) -> None:
    # The grid worker sees its community's silence but may not end it; the town's operator may.
    silence = towns.silences[A]
    assert (
        towns_api.delete(f"/api/v1/silences/{silence}", headers=auth(towns.tokens["grid_worker"])).status_code
        == 403
    )
    assert (
        towns_api.delete(f"/api/v1/silences/{silence}", headers=auth(towns.tokens["town_b"])).status_code
        == 404
    )
    assert (
        towns_api.delete(
            f"/api/v1/silences/{silence}", headers=auth(towns.tokens["town_operator"])
        ).status_code
        == 204
    )


def test_found_by_schemathesis_stay_fixed(towns_api: TestClient, towns: Seeded) -> None:
    token = towns.tokens["grid_worker"]
    huge = 2**63
    # Ids and offsets beyond a 64-bit integer were a 500 (the driver overflowed): now a 4xx. So are ids
    # beyond a 32-bit one, the size of an id column on PostgreSQL.
    for big in (2**31, huge):
        assert towns_api.get(f"/api/v1/cases/{big}", headers=auth(token)).status_code == 422
        assert towns_api.get(f"/open311/v2/requests/{big}.json", params={"api_key": token}).status_code == 404
    assert towns_api.get("/api/v1/cases", params={"offset": huge}, headers=auth(token)).status_code == 422
    assert (
        towns_api.get(
            "/open311/v2/requests.json", params={"api_key": token, "service_request_id": huge}
        ).status_code
        == 400
    )
    # An unknown action is a bad request for every role (it was a 403 "may not  a case").
    bad = towns_api.post(
        f"/api/v1/cases/{towns.cases[A][0]}/actions", headers=auth(token), json={"action": ""}
    )
    assert bad.status_code == 422 and "unknown action" in bad.json()["detail"]
    # A route's own 422 is a sentence, which the OpenAPI document now allows next to FastAPI's list.
    kpi = towns_api.get(
        "/api/v1/kpis",
        params={"start": "2026-01-02T00:00:00Z", "end": "2026-01-01T00:00:00Z"},
        headers=auth(towns.tokens["admin"]),
    )
    assert kpi.status_code == 422 and isinstance(kpi.json()["detail"], str)
    # A time that leaves UTC's calendar overflowed the database driver: a 500, now 422 (Open311: 400).
    edge = {"start": "0001-01-01T00:00:00+05:00", "end": "2026-01-01T00:00:00Z"}
    assert towns_api.get("/api/v1/kpis", params=edge, headers=auth(towns.tokens["admin"])).status_code == 422
    assert (
        towns_api.get(
            "/open311/v2/requests.json", params={"api_key": token, "start_date": edge["start"]}
        ).status_code
        == 400
    )
    spec = towns_api.get("/openapi.json").json()["paths"]
    assert spec["/api/v1/kpis"]["get"]["responses"]["422"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Problem"
    }
    assert "503" in spec["/healthz"]["get"]["responses"]  # the health check's "a component is down"
    assert "text/xml" in spec["/open311/v2/requests/{request_id}.{fmt}"]["get"]["responses"]["404"]["content"]
