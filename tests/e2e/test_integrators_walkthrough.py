"""docs/integrators.md §1.5, run as written: every ``sh walkthrough`` block in order, in one shell, after
the ``file=`` blocks are written where the walkthrough reads them — against a running platform (the API,
ingest and alerts as processes on real Mosquitto, influxd and PostgreSQL). From the datasheet's answer
to the first case, with no restart: if a command in the doc stops working, this fails (#28)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.conftest import LiveStack
from tests.platform import REPO

pytestmark = [pytest.mark.e2e, pytest.mark.integration]
DOC = REPO / "docs" / "integrators.md"
FENCE = re.compile(r"^```(?P<info>[^\n]*)\n(?P<body>.*?)^```$", re.M | re.S)


def blocks(markdown: str) -> list[tuple[str, str]]:
    """The doc's fenced blocks as (info string, body), in order."""
    return [(m["info"].strip(), m["body"]) for m in FENCE.finditer(markdown)]


def test_the_doc_marks_a_whole_walkthrough() -> None:
    """The parts the issue names are all there: the profile, `types test`, the type, a category, the
    device through the API, a rule, and the look at the first case."""
    found = blocks(DOC.read_text())
    files = {info.split("file=", 1)[1] for info, _ in found if "file=" in info}
    script = "\n".join(body for info, body in found if info == "sh walkthrough")
    assert files == {"air.co2.yaml", "co2-rules.yaml"}
    for step in (
        "yiwang types test air.co2.yaml",
        "yiwang types add air.co2.yaml",
        "/api/v1/categories",
        "/api/v1/devices",
        "yiwang rules apply co2-rules.yaml",
        "/api/v1/cases?category=air_quality",
    ):
        assert step in script, f"the walkthrough lost its step {step!r}"


def test_the_walkthrough_runs_from_datasheet_to_the_first_case(live_stack: LiveStack, tmp_path: Path) -> None:
    found = blocks(DOC.read_text())
    for info, body in found:
        if "file=" in info:
            (tmp_path / info.split("file=", 1)[1]).write_text(body)
    script = "set -euo pipefail\n" + "\n".join(body for info, body in found if info == "sh walkthrough")
    env = {
        **os.environ,
        **live_stack.env,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",  # this venv's `yiwang`
        "YIWANG_API": live_stack.base_url,
        "TOKEN": live_stack.token,
        "MQTT_PORT": live_stack.env["YIWANG_MQTT_PORT"],
        "MQTT_LOGIN": "",  # the test's broker takes anonymous gateways
    }
    run = subprocess.run(
        ["bash", "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0, f"{run.stdout}\n{run.stderr}\n{live_stack.logs()}"
    # `types test` printed every field with its unit and the register it came from.
    assert re.search(r"co2_ppm\s+612\.0 ppm\s+in range .*input 0 = 0x0264", run.stdout), run.stdout
    # The last command lists the case the rule opened, in the device's grid and the new category.
    cases = json.loads(run.stdout.strip().splitlines()[-1])["items"]
    assert [(c["category"], c["grid"], c["community"]) for c in cases] == [
        ("air_quality", "g-middle", "zhuganxiang")
    ]
    assert cases[0]["category_name"] == "空气质量"
