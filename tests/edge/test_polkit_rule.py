"""The polkit rule that lets the agent start its own upgrade unit, and nothing else, run as polkit runs
it: a JavaScript file calling ``polkit.addRule`` (evaluated here by Node with polkit's two objects)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

RULE = Path(__file__).resolve().parents[2] / "edge" / "polkit" / "50-yiwang-edge-upgrade.rules"
NODE = shutil.which("node") or shutil.which("nodejs")
# polkit's API as the rule sees it: addRule, Result, action.id/lookup, subject.user.
HARNESS = """
const fs = require("fs");
const rules = [];
const polkit = {Result: {YES: "yes", NO: "no", NOT_HANDLED: null}, addRule: (f) => rules.push(f)};
new Function("polkit", fs.readFileSync(process.argv[1], "utf8"))(polkit);
const asked = JSON.parse(process.argv[2]);
const action = {id: asked.id, lookup: (key) => asked.details[key]};
const subject = {user: asked.user};
process.stdout.write(JSON.stringify(rules.map((rule) => rule(action, subject))));
"""


def decide(
    user: str, verb: str, unit: str, action: str = "org.freedesktop.systemd1.manage-units"
) -> list[str | None]:
    asked = {"id": action, "user": user, "details": {"verb": verb, "unit": unit}}
    assert NODE is not None, "node is a test requirement (.ci/run installs nodejs)"
    done = subprocess.run(
        [NODE, "-e", HARNESS, str(RULE), json.dumps(asked)],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    decisions: list[str | None] = json.loads(done.stdout)
    return decisions


def test_the_agent_may_start_its_upgrade_unit() -> None:
    assert decide("yiwang", "start", "yiwang-edge-upgrade@1.5.0.service") == ["yes"]
    assert decide("yiwang", "start", "yiwang-edge-upgrade@2.0.0rc1+pi.service") == ["yes"]


@pytest.mark.parametrize(
    ("user", "verb", "unit", "action"),
    [
        ("yiwang", "stop", "yiwang-edge-upgrade@1.5.0.service", "org.freedesktop.systemd1.manage-units"),
        ("yiwang", "start", "yiwang-edge.service", "org.freedesktop.systemd1.manage-units"),
        ("yiwang", "start", "ssh.service", "org.freedesktop.systemd1.manage-units"),
        ("yiwang", "start", "yiwang-edge-upgrade@.service", "org.freedesktop.systemd1.manage-units"),
        ("yiwang", "start", "yiwang-edge-upgrade@1;reboot.service", "org.freedesktop.systemd1.manage-units"),
        ("yiwang", "start", "yiwang-edge-upgrade@1.5.0.service.d", "org.freedesktop.systemd1.manage-units"),
        ("pi", "start", "yiwang-edge-upgrade@1.5.0.service", "org.freedesktop.systemd1.manage-units"),
        ("yiwang", "start", "yiwang-edge-upgrade@1.5.0.service", "org.freedesktop.systemd1.reload-daemon"),
    ],
)
def test_nothing_else_is_allowed(user: str, verb: str, unit: str, action: str) -> None:
    assert decide(user, verb, unit, action) == [None]
