"""Sensor types and rules changed through the API while it runs (#28): stored versioned, checked
completely (a refused change names what to fix and leaves the running set as it was), scoped to the
district's admins and operators, and audited. On SQLite and on a real PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import yaml
from fastapi.testclient import TestClient

from api.settings import ApiSettings
from common.db import make_engine
from registry import definitions
from tests.api.conftest import audited, auth

CO2 = """\
id: air.co2@1
name: CO2 sensor
name_zh: 二氧化碳
expected_interval_s: 10
fields:
  co2_ppm: {type: float, unit: ppm, min: 0, max: 10000, normal: [400, 1000]}
protocol:
  kind: modbus
  fields:
    co2_ppm: {function: input, address: 0, data_type: uint16}
"""
CO2_RULE = """\
id: co2-high
version: 1
scope: {type: air.co2@1}
threshold: {field: co2_ppm, op: ">=", value: 2000, clear: 1500}
severity: warning
category: flooding
"""
YAML = {"Content-Type": "application/yaml"}


def post_type(client: TestClient, token: str, body: str) -> dict[str, Any]:
    response = client.post("/api/v1/sensor-types", content=body, headers=auth(token) | YAML)
    return {"status": response.status_code, **response.json()}


def file_of(rule: str) -> str:
    """One rule's YAML as a rule file of it."""
    lines = rule.splitlines()
    return "rules:\n  - " + lines[0] + "\n" + "".join(f"    {line}\n" for line in lines[1:])


def rule_ids(client: TestClient, token: str) -> list[str]:
    response = client.get("/api/v1/rules", headers=auth(token))
    assert response.status_code == 200, response.text
    return sorted(r["id"] for r in response.json())


def test_a_type_is_stored_versioned_and_listed(client: TestClient, token: str, settings: ApiSettings) -> None:
    first = post_type(client, token, CO2)
    assert (first["status"], first["id"], first["stored"]) == (201, "air.co2@1", True)
    again = post_type(client, token, CO2)
    assert (again["status"], again["stored"]) == (200, False)  # the same content: nothing changed
    v2 = CO2.replace("air.co2@1", "air.co2@2").replace("max: 10000", "max: 5000")
    as_json = json.dumps(yaml.safe_load(v2))
    stored = client.post(
        "/api/v1/sensor-types", content=as_json, headers=auth(token) | {"Content-Type": "application/json"}
    )
    assert stored.status_code == 201, stored.text
    assert stored.json()["revision"] > first["revision"]
    listed = {t["name"]: t for t in client.get("/api/v1/sensor-types", headers=auth(token)).json()}
    co2 = listed["air.co2"]
    assert [v["id"] for v in co2["versions"]] == ["air.co2@1", "air.co2@2"] and co2["newest"] == "air.co2@2"
    assert co2["versions"][1]["fields"]["co2_ppm"]["max"] == 5000
    assert co2["versions"][0]["author"] == "op" and co2["versions"][0]["protocol"] == "modbus"
    assert "env.th" in listed  # the types of config/ were seeded beside it
    # A stored version never changes: other content under its id is refused with the next free id.
    changed = post_type(client, token, CO2.replace("max: 10000", "max: 9000"))
    assert changed["status"] == 409 and "give the changed profile id air.co2@3" in changed["detail"]
    # The API's catalog knows the new type at once: a device may name it.
    db = make_engine(settings.database_url)
    try:
        assert {"air.co2@1", "air.co2@2"} <= {s.profile.id for s in definitions.stored_profiles(db)}
    finally:
        db.dispose()


def test_bad_profiles_are_refused_with_what_to_fix(client: TestClient, token: str) -> None:
    before = client.get("/api/v1/sensor-types", headers=auth(token)).json()
    overlap = CO2.replace(
        "co2_ppm: {function: input, address: 0, data_type: uint16}",
        "co2_ppm: {function: input, address: 0, data_type: float32}\n    temp: {function: input, address: 1}",
    ).replace("fields:\n  co2_ppm: {type: float", "fields:\n  temp: {type: float}\n  co2_ppm: {type: float")
    for body, reasons in (
        (overlap, ["protocol.modbus", "fields co2_ppm and temp overlap at input register 1"]),
        (
            CO2.replace("data_type: uint16", "data_type: uint12"),
            ["protocol.modbus.fields.co2_ppm.data_type", "'uint16'", "'float32'"],
        ),
        (CO2.replace("type: float", "type: decimal"), ["fields.co2_ppm.type", "'float'"]),
        (CO2.replace("id: air.co2@1", "id: air.co2"), ["id:"]),
        ("- just\n- a list\n", ["a profile is a mapping with id"]),
        ("id: [", ["not a YAML document"]),
        (
            CO2.replace("name: CO2 sensor", "nmae: CO2 sensor"),
            ["name: required, missing", "nmae: not a known key"],
        ),
    ):
        answer = post_type(client, token, body)
        assert answer["status"] == 422, body
        for reason in reasons:
            assert reason in answer["detail"], (reason, answer["detail"])
        assert answer["detail"].startswith("profile: ")
    too_big = "# " + "x" * definitions.MAX_DOCUMENT_BYTES + "\n" + CO2
    assert post_type(client, token, too_big)["status"] == 413
    assert client.get("/api/v1/sensor-types", headers=auth(token)).json() == before  # nothing stored


def test_rules_apply_one_rule_or_a_file_and_are_served(client: TestClient, token: str) -> None:
    assert post_type(client, token, CO2)["status"] == 201
    running = rule_ids(client, token)
    assert "gas-lel-high" in running and "co2-high" not in running
    one = client.post("/api/v1/rules", content=CO2_RULE, headers=auth(token) | YAML)
    assert one.status_code == 200, one.text
    assert one.json()["file"] == "api" and one.json()["version"] == 1 and one.json()["rules"] == ["co2-high"]
    assert rule_ids(client, token) == sorted([*running, "co2-high"])
    served = client.get("/api/v1/rules/co2-high", headers=auth(token)).json()
    assert served["spec"]["value"] == 2000 and served["scope"] == {"type": "air.co2@1"}
    # A changed rule replaces itself in its file, at its next version.
    v2 = CO2_RULE.replace("version: 1", "version: 2").replace("value: 2000", "value: 2500")
    changed = client.post("/api/v1/rules", content=v2, headers=auth(token) | YAML).json()
    assert (changed["file"], changed["version"]) == ("api", 2)
    assert client.get("/api/v1/rules/co2-high", headers=auth(token)).json()["spec"]["value"] == 2500
    # A file: stored under the name given.
    as_file = file_of(v2.replace("co2-high", "co2-very-high").replace("2500", "5000"))
    stored = client.post("/api/v1/rules?file=co2", content=as_file, headers=auth(token) | YAML)
    assert stored.status_code == 200, stored.text
    assert (stored.json()["file"], stored.json()["rules"]) == ("co2", ["co2-very-high"])
    assert "co2-very-high" in rule_ids(client, token)
    # validate takes one rule as well as a file, and changes nothing.
    check = client.post(
        "/api/v1/rules/validate", content=v2.replace("co2-high", "co2-x"), headers=auth(token)
    )
    assert check.json() == {"ok": True, "rules": ["co2-x"]}
    assert "co2-x" not in rule_ids(client, token)


def test_bad_rules_are_refused_and_the_running_set_is_kept(client: TestClient, token: str) -> None:
    assert post_type(client, token, CO2)["status"] == 201
    assert client.post("/api/v1/rules", content=CO2_RULE, headers=auth(token) | YAML).status_code == 200
    running = rule_ids(client, token)
    for body, reason in (
        (
            CO2_RULE.replace("field: co2_ppm", "field: co2"),
            "threshold.field: 'co2' is not a field of air.co2@1 (fields: co2_ppm)",
        ),
        (
            CO2_RULE.replace("air.co2@1", "air.co2@7"),
            "scope.type: unknown sensor type 'air.co2@7'; add its profile first",
        ),
        (
            CO2_RULE.replace("value: 2000", "value: 2100"),
            "version: rule co2-high changed but is still version 1; give it version 2",
        ),
        (CO2_RULE.replace("category: flooding", "category: air"), "category: unknown category 'air'"),
        (CO2_RULE.replace("severity: warning", "severity: loud"), "severity: Input should be"),
        ("id: only-an-id\n", "a rule file holds `rules: [...]`"),
        ("rules:\n  - {id: x}\n", "rules.0.version: required, missing"),
        ("- 1\n", "a rule file holds `rules: [...]`"),
    ):
        for path in ("/api/v1/rules", "/api/v1/rules/validate"):
            answer = client.post(path, content=body, headers=auth(token) | YAML)
            assert answer.status_code == 422, (path, body)
            assert reason in answer.json()["detail"], (reason, answer.json()["detail"])
            assert answer.json()["detail"].startswith("request body: ")
    assert rule_ids(client, token) == running
    assert client.get("/api/v1/rules/co2-high", headers=auth(token)).json()["spec"]["value"] == 2000
    too_big = "# " + "x" * definitions.MAX_DOCUMENT_BYTES + "\n" + CO2_RULE
    assert client.post("/api/v1/rules", content=too_big, headers=auth(token) | YAML).status_code == 413


def test_only_district_admins_and_operators_change_and_every_change_is_audited(
    client: TestClient, token: str, login: Callable[..., str], settings: ApiSettings
) -> None:
    admin = login("root", "admin")
    assert post_type(client, admin, CO2)["status"] == 201
    for role, scope in (
        ("supervisor", {}),
        ("town_operator", {"town": "jiyang"}),
        ("grid_worker", {"town": "jiyang", "community": "zhuganxiang", "grid": "g-north"}),
        ("inspector", {}),
    ):
        other = login(f"u-{role}", role, **scope)
        v2 = CO2.replace("air.co2@1", "air.co2@2")
        assert post_type(client, other, v2)["status"] == 403, role
        refused = client.post("/api/v1/rules", content=CO2_RULE, headers=auth(other) | YAML)
        assert refused.status_code == 403, role
        assert client.get("/api/v1/sensor-types", headers=auth(other)).status_code == 200
        assert client.get("/api/v1/rules", headers=auth(other)).status_code == 200
    assert client.post("/api/v1/rules", content=CO2_RULE, headers=auth(token) | YAML).status_code == 200
    assert client.post("/api/v1/sensor-types", content=CO2).status_code == 401
    rows = audited(settings, "/api/v1/sensor-types") + audited(settings, "/api/v1/rules")
    assert ("root", "POST", "/api/v1/sensor-types", 201) in rows
    assert ("op", "POST", "/api/v1/rules", 200) in rows
    assert ("u-grid_worker", "POST", "/api/v1/rules", 403) in rows
    db = make_engine(settings.database_url)
    try:
        [api_file] = [f for f in definitions.rule_files(db) if f.name == "api"]
        assert (api_file.author, api_file.source, api_file.version) == ("op", "api", 1)
    finally:
        db.dispose()
