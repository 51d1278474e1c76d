"""`yiwang fleet upgrade` and `yiwang fleet status` on SQLite and PostgreSQL: canary first, widened
by a percentage then all once the canary runs the version, refused with what to fix otherwise, and
stopped by itself when the canary rolls back."""

from __future__ import annotations

import json
from typing import Any

from typer.testing import CliRunner

from alerts.fleet import record_gateway
from common.db import make_engine
from contract import StateMessage
from tests.edge.upgrade.rollout_fleet import register
from yiwang.cli.root import app

C = "cli-fleet"
GATEWAYS = ["gw-01", "gw-02", "gw-03", "gw-04"]


def fleet(database_url: str, *argv: str) -> Any:
    return CliRunner().invoke(app, ["fleet", *argv], env={"YIWANG_DATABASE_URL": database_url})


def reports(database_url: str, gateway: str, agent: str, upgrade: dict[str, Any] | None = None) -> None:
    db = make_engine(database_url)
    body: dict[str, Any] = {"online": True, "agent": agent} | ({"upgrade": upgrade} if upgrade else {})
    record_gateway(db, C, gateway, StateMessage.model_validate(body))
    db.dispose()


def status(database_url: str) -> dict[str, Any]:
    result = fleet(database_url, "status", "--json")
    assert result.exit_code == 0, result.output
    out: dict[str, Any] = json.loads(result.output)
    return out


def desired(database_url: str) -> dict[str, str | None]:
    return {g["gateway"].split("/")[1]: g["desired"] for g in status(database_url)["gateways"]}


def test_canary_then_a_quarter_then_all(database_url: str) -> None:
    db = make_engine(database_url)
    register(db, C, GATEWAYS)
    db.dispose()
    started = fleet(database_url, "upgrade", "--version", "0.2.0", "--canary", "gw-01")
    assert started.exit_code == 0 and "rollout 1 of 0.2.0: canary, 1 gateway(s) newly told" in started.output
    waiting = fleet(database_url, "upgrade", "--version", "0.2.0", "--percent", "50")
    assert waiting.exit_code == 1
    assert f"canary {C}/gw-01 has not reported 0.2.0 running yet" in waiting.output
    assert desired(database_url) == {"gw-01": "0.2.0", "gw-02": None, "gw-03": None, "gw-04": None}

    reports(database_url, "gw-01", "0.2.0", {"attempt": "0.2.0", "outcome": "confirmed"})
    half = fleet(database_url, "upgrade", "--version", "0.2.0", "--percent", "50")
    assert half.exit_code == 0 and "rolling, 1 gateway(s) newly told" in half.output
    assert desired(database_url) == {"gw-01": "0.2.0", "gw-02": "0.2.0", "gw-03": None, "gw-04": None}
    everyone = fleet(database_url, "upgrade", "--version", "0.2.0", "--all")
    assert everyone.exit_code == 0 and "done, 2 gateway(s) newly told" in everyone.output
    table = fleet(database_url, "status")
    assert "rollout 1: 0.2.0 done 100%" in table.output
    assert f"{C}/gw-01" in table.output and "current" in table.output and "pending" in table.output


def test_a_rolled_back_canary_stops_the_rollout_and_bad_input_is_refused(database_url: str) -> None:
    db = make_engine(database_url)
    register(db, C, GATEWAYS)
    db.dispose()
    assert fleet(database_url, "upgrade", "--version", "0.3.0", "--canary", f"{C}/gw-02").exit_code == 0
    reason = "not healthy within 120 s: no reading spooled while watched (seq stayed at 88)"
    reports(database_url, "gw-02", "0.2.0", {"attempt": "0.3.0", "outcome": "rolled_back", "reason": reason})
    out = status(database_url)
    assert out["rollouts"][0]["status"] == "stopped"
    assert out["rollouts"][0]["stopped_reason"] == f"{C}/gw-02 rolled back 0.3.0: {reason}"
    row = next(g for g in out["gateways"] if g["gateway"] == f"{C}/gw-02")
    assert (row["running"], row["desired"], row["phase"], row["reason"]) == (
        "0.2.0",
        "0.3.0",
        "rolled_back",
        reason,
    )
    refused = fleet(database_url, "upgrade", "--version", "0.3.0", "--all")
    assert refused.exit_code == 1 and f"the rollout of 0.3.0 stopped: {C}/gw-02 rolled back" in refused.output
    assert desired(database_url) == {"gw-01": None, "gw-02": "0.3.0", "gw-03": None, "gw-04": None}

    both = fleet(database_url, "upgrade", "--version", "0.4.0", "--canary", "gw-01", "--all")
    assert both.exit_code == 2 and "exactly one of --canary, --all, --percent" in both.output
    unknown = fleet(database_url, "upgrade", "--version", "0.4.0", "--canary", "gw-77")
    assert unknown.exit_code == 1 and "no gateway 'gw-77' in the registry" in unknown.output
    bad = fleet(database_url, "upgrade", "--version", "../0.4", "--canary", "gw-01")
    assert bad.exit_code == 1 and "'../0.4' is not a version" in bad.output
    assert fleet(database_url, "upgrade", "--version", "0.4.0", "--percent", "0").exit_code == 2
    assert len(status(database_url)["rollouts"]) == 1  # none of them stored anything
