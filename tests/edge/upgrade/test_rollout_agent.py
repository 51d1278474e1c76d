"""A rollout for real: the agent follows its desired version. Real wheels of this source (v1, a bumped
v2, a broken one) signed and served over HTTPS, v1 running under `yiwang edge supervise` against
Mosquitto and a Modbus slave; the server side is `yiwang fleet` on a database, the desired-version
publisher and the state recorder. Checked: the canary upgrades to v2 by itself and reports it, the
rollout then widens; a broken canary is rolled back by the gateway, reported, and its rollout stops by
itself; every seq reaches the broker. The figures of docs' Numbers are printed (-s shows them).
"""

from __future__ import annotations

import itertools
import json
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import yaml
from cryptography.hazmat.primitives import serialization
from typer.testing import CliRunner

from common.db import make_engine
from contract.topics import TopicKind
from edge.upgrade.health import read_sample
from edge.upgrade.slots import Slots
from tests.edge.upgrade.release_server import TOKEN, ReleaseHttps
from tests.edge.upgrade.rollout_fleet import fleet_server, register
from tests.edge.upgrade.test_upgrade_for_real import (  # noqa: F401 - fixtures shared with that test
    BROKEN,
    KEY,
    REPO,
    V1,
    V2,
    built,
    releases,
    slave_port,
    wait_for,
)
from yiwang.cli.root import app
from yiwang.servers import MosquittoServer, free_port

pytestmark = pytest.mark.integration
GW = "gw-u"


def gateway_file(path: Path, community: str, mosquitto: MosquittoServer, port: str, metrics: int) -> None:
    bus = {
        "id": "rs485-1",
        "kind": "modbus_rtu",
        "port": port,
        "timeout_s": 0.2,
        "retries": 0,
        "devices": [{"id": "th-1", "type": "env.th@1", "unit": 1, "poll_s": 0.2, "max_interval_s": 0.2}],
    }
    path.write_text(
        yaml.safe_dump(
            {
                "community": community,
                "gateway": GW,
                "config_dir": str(REPO / "config"),
                "mqtt": {"host": mosquitto.host, "port": mosquitto.port},
                "spool": {"dir": str(path.parent / "spool")},
                "metrics": {"port": metrics},
                "state_interval_s": 1,
                "buses": [bus],
            }
        )
    )


def fleet(database_url: str, *argv: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["fleet", *argv], env={"YIWANG_DATABASE_URL": database_url})
    return result.exit_code, result.output


def readings(messages: list[tuple[float, bytes]]) -> list[tuple[float, int, int]]:
    """(arrival, seq, newest reading ts ms) of every telemetry message."""
    out = []
    for at, payload in messages:
        body = json.loads(payload)
        out.append((at, body["seq"], max(r["ts"] for r in body["readings"])))
    return out


def longest_pause(taken: list[tuple[float, int, int]], start: float, end: float) -> tuple[float, float]:
    """The longest pause between readings taken (their ts) and arriving, in a window of arrival times."""
    window = [r for r in taken if start <= r[0] <= end]
    pairs = list(itertools.pairwise(window))
    return max(b[2] - a[2] for a, b in pairs) / 1000, max(b[0] - a[0] for a, b in pairs)


def test_the_canary_follows_its_desired_version_and_a_broken_one_stops_the_rollout(
    built: dict[str, Path],  # noqa: F811
    releases: ReleaseHttps,  # noqa: F811
    mosquitto: MosquittoServer,
    slave_port: str,  # noqa: F811
    tmp_path: Path,
) -> None:
    community = f"t-{uuid.uuid4().hex[:8]}"
    database_url = f"sqlite:///{tmp_path}/fleet.db"
    db = make_engine(database_url)
    register(db, community, [GW, "gw-v"])
    metrics_port = free_port()
    config = tmp_path / "gw.yaml"
    gateway_file(config, community, mosquitto, slave_port, metrics_port)
    (tmp_path / "token").write_text(TOKEN)
    public = KEY.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    (tmp_path / "release-key.pub").write_bytes(public)
    slots = Slots(tmp_path / "prefix")
    slots.install(V1, built[V1], dependency_paths=(built["deps"],), no_deps=True)
    slots.set_link(slots.current, V1)
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "YIWANG_RELEASE_SERVER": releases.url,
        "YIWANG_RELEASE_TOKEN_FILE": str(tmp_path / "token"),
        "YIWANG_RELEASE_KEY": str(tmp_path / "release-key.pub"),
        "YIWANG_RELEASE_CA": str(releases.ca),
        "YIWANG_METRICS_URL": f"http://127.0.0.1:{metrics_port}/metrics",
        "YIWANG_UPGRADE_DEADLINE_S": "15",
        "YIWANG_UPGRADE_DEPENDENCY_PATHS": str(built["deps"]),
    }
    with fleet_server(db, mosquitto.host, mosquitto.port, community) as server:
        supervisor = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "yiwang",
                "edge",
                "supervise",
                "--config",
                str(config),
                "--prefix",
                str(slots.prefix),
            ],
            cwd=tmp_path,
            env=env,
        )
        try:
            wait_for(lambda: server.running(community, GW) == V1, 40, "v1 reports its version")
            code, out = fleet(database_url, "upgrade", "--version", V2, "--canary", GW)
            assert code == 0, out
            rollout_at = time.monotonic()
            code, out = fleet(database_url, "upgrade", "--version", V2, "--all")
            assert code == 1 and f"canary {community}/{GW} has not reported {V2} running yet" in out

            wait_for(lambda: server.running(community, GW) == V2, 120, "the canary reports v2")
            reported_at = time.monotonic()
            wait_for(lambda: server.upgrade(community, GW).get("outcome") == "confirmed", 30, "confirmed")
            assert server.upgrade(community, GW)["attempt"] == V2
            assert slots.target(slots.current) == V2 and slots.target(slots.previous) == V1
            code, out = fleet(database_url, "upgrade", "--version", V2, "--all")
            assert code == 0 and "done, 1 gateway(s) newly told" in out, out

            code, out = fleet(database_url, "upgrade", "--version", BROKEN, "--canary", f"{community}/{GW}")
            assert code == 0, out
            broken_at = time.monotonic()
            wait_for(
                lambda: server.upgrade(community, GW).get("outcome") == "rolled_back", 120, "rolled back"
            )
            report = server.upgrade(community, GW)
            assert report["attempt"] == BROKEN and "not healthy within 15 s" in report["reason"]
            assert slots.target(slots.current) == V2
            wait_for(lambda: server.running(community, GW) == V2, 30, "v2 runs again")
            back_at = time.monotonic()
            code, out = fleet(database_url, "status", "--json")
            status = json.loads(out)
            assert status["rollouts"][0]["status"] == "stopped", status
            assert status["rollouts"][0]["stopped_reason"].startswith(
                f"{community}/{GW} rolled back {BROKEN}"
            )
            assert {g["gateway"]: (g["desired"], g["phase"]) for g in status["gateways"]} == {
                f"{community}/{GW}": (BROKEN, "rolled_back"),
                f"{community}/gw-v": (V2, "pending"),  # told by --all; no agent runs there
            }
            code, out = fleet(database_url, "upgrade", "--version", BROKEN, "--all")
            assert code == 1 and f"the rollout of {BROKEN} stopped" in out

            # No reading lost: every seq from the first to the last the agent spooled reached the broker.
            sample = read_sample(f"http://127.0.0.1:{metrics_port}/metrics")
            assert not isinstance(sample, str), sample
            last = sample.last_seq
            wait_for(
                lambda: max(r[1] for r in readings(server.of_kind(TopicKind.TELEMETRY))) >= last, 30, "all"
            )
            seen = {
                json.loads(p)["seq"]
                for kind in (TopicKind.TELEMETRY, TopicKind.EVENT)
                for _, p in server.of_kind(kind)
            }
            assert seen == set(range(1, max(seen) + 1)), "a seq never reached the broker"
            taken = readings(server.of_kind(TopicKind.TELEMETRY))
            upgrade_pause = longest_pause(taken, rollout_at, reported_at + 5)
            rollback_pause = longest_pause(taken, broken_at, back_at + 5)
            print(
                f"\nrollout → canary reports {V2}: {reported_at - rollout_at:.1f} s; longest pause in "
                f"readings (taken / arriving) during the upgrade {upgrade_pause[0]:.1f} / "
                f"{upgrade_pause[1]:.1f} s, during the rollback {rollback_pause[0]:.1f} / "
                f"{rollback_pause[1]:.1f} s; seqs 1..{max(seen)} all delivered"
            )
        finally:
            supervisor.send_signal(signal.SIGTERM)
            try:
                supervisor.wait(40)
            except subprocess.TimeoutExpired:
                supervisor.kill()
            db.dispose()
