"""The agent upgrades itself for real: three wheels of Yiwang built from this source (the current
version, a bumped one, one that crashes at start), v1 installed into a prefix, `yiwang edge supervise`
running `yiwang edge run` as a process against Mosquitto and a Modbus slave, releases signed and served
over HTTPS. Checked: a tampered release is refused and nothing changes; the bumped version runs and
reports its version; the broken one is rolled back with its reason; every seq reaches the broker.

The slots see third-party packages through a ``.pth`` (no dependency wheels offline): the one test-only
shortcut, described in docs/upgrades.md.
"""

from __future__ import annotations

import json
import shutil
import signal
import site
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from contract.messages import StateMessage, decode_message
from contract.release import FILES_DIR
from contract.topics import TopicKind
from edge.upgrade.download import ReleaseServer, tls_context
from edge.upgrade.health import read_sample
from edge.upgrade.restart import SupervisorRestart, read_status
from edge.upgrade.slots import Slots
from edge.upgrade.state import Phase
from edge.upgrade.supervisor import STATUS_NAME
from edge.upgrade.upgrade import InstallOptions, Plan, upgrade
from tests.edge.sources.emulators import ModbusEmulator, Slave, pty_pair
from tests.edge.test_publisher import Subscriber
from tests.edge.upgrade.release_server import TOKEN, ReleaseHttps, serve_releases
from yiwang.cli.release import add_release
from yiwang.servers import MosquittoServer, free_port

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[3]
PACKAGES = (
    "yiwang",
    "common",
    "contract",
    "edge",
    "broker",
    "series",
    "ingest",
    "cases",
    "registry",
    "alerts",
    "api",
)
V1, V2, BROKEN, TAMPERED = "0.1.0", "0.1.1", "0.1.2", "0.1.3"
KEY = Ed25519PrivateKey.generate()


def build_wheel(out: Path, work: Path, version: str, broken: bool = False) -> Path:
    """A real wheel of this source tree with ``version``; ``broken``: its `yiwang` command raises."""
    src = work / f"src-{version}"
    for name in PACKAGES:
        shutil.copytree(REPO / name, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    shutil.copy(REPO / "README.md", src / "README.md")
    pyproject = (REPO / "pyproject.toml").read_text()
    (src / "pyproject.toml").write_text(pyproject.replace('version = "0.1.0"', f'version = "{version}"', 1))
    if broken:
        cli = src / "yiwang" / "cli" / "__init__.py"
        cli.write_text(
            cli.read_text().replace(
                "def main() -> None:\n",
                'def main() -> None:\n    raise RuntimeError("broken on purpose")\n',
                1,
            )
        )
    out.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            str(src),
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(out),
        ],
        check=True,
        capture_output=True,
        cwd=work,
    )
    (wheel,) = out.glob(f"yiwang-{version}-*.whl")
    return wheel


def dependency_dir(work: Path) -> Path:
    """This venv's third-party packages without Yiwang itself (a slot must import its own)."""
    deps = work / "deps"
    deps.mkdir()
    (site_packages,) = [Path(p) for p in site.getsitepackages() if p.endswith("site-packages")]
    for entry in site_packages.iterdir():
        lowered = entry.name.lower()
        if lowered.startswith(("yiwang", "__editable__")) or entry.suffix == ".pth":
            continue
        (deps / entry.name).symlink_to(entry)
    return deps


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One directory of wheels per release, built once for the module."""
    work = tmp_path_factory.mktemp("wheels")
    out = {}
    for version, broken in ((V1, False), (V2, False), (BROKEN, True)):
        out[version] = build_wheel(work / f"dist-{version}", work, version, broken).parent
    return out | {"deps": dependency_dir(work)}


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"{what}: not within {timeout} s"
        time.sleep(0.1)


@pytest.fixture
def slave_port() -> Iterator[str]:
    with pty_pair() as pair, ModbusEmulator([Slave(1, {1: 215, 2: 550})], port=pair.device):
        yield pair.gateway


@pytest.fixture
def releases(built: dict[str, Path], tmp_path: Path) -> Iterator[ReleaseHttps]:
    store = tmp_path / "store"
    for version in (V1, V2, BROKEN):
        add_release(built[version], KEY, store)
    # A release whose wheel was changed after it was signed.
    tampered = tmp_path / "dist-tampered"
    tampered.mkdir()
    shutil.copy(next(built[V2].glob("*.whl")), tampered / f"yiwang-{TAMPERED}-py3-none-any.whl")
    add_release(tampered, KEY, store)
    wheel = store / TAMPERED / FILES_DIR / f"yiwang-{TAMPERED}-py3-none-any.whl"
    data = bytearray(wheel.read_bytes())
    data[len(data) // 2] ^= 0x01
    wheel.write_bytes(bytes(data))
    (tmp_path / "certs").mkdir()
    with serve_releases(store, tmp_path / "certs") as served:
        yield served


def agent_states(sub: Subscriber) -> list[str | None]:
    out = []
    for payload, _retained in sub.of_kind(TopicKind.STATE):
        message = decode_message(TopicKind.STATE, payload)
        if isinstance(message, StateMessage) and message.online:
            out.append(message.agent)
    return out


def seqs(sub: Subscriber) -> set[int]:
    found = set()
    for kind in (TopicKind.TELEMETRY, TopicKind.EVENT):
        for payload, _ in sub.of_kind(kind):
            found.add(json.loads(payload)["seq"])
    return found


def test_the_agent_upgrades_rolls_back_a_broken_release_and_refuses_a_tampered_one(
    built: dict[str, Path],
    releases: ReleaseHttps,
    mosquitto: MosquittoServer,
    slave_port: str,
    tmp_path: Path,
) -> None:
    community = f"t-{uuid.uuid4().hex[:8]}"
    metrics_port = free_port()
    gateway = tmp_path / "gw.yaml"
    gateway.write_text(
        yaml.safe_dump(
            {
                "community": community,
                "gateway": "gw-u",
                "config_dir": str(REPO / "config"),
                "mqtt": {"host": mosquitto.host, "port": mosquitto.port},
                "spool": {"dir": str(tmp_path / "spool")},
                "metrics": {"port": metrics_port},
                "state_interval_s": 1,
                "buses": [
                    {
                        "id": "rs485-1",
                        "kind": "modbus_rtu",
                        "port": slave_port,
                        "timeout_s": 0.2,
                        "retries": 0,
                        "devices": [
                            {
                                "id": "th-1",
                                "type": "env.th@1",
                                "unit": 1,
                                "poll_s": 0.2,
                                "max_interval_s": 0.2,
                            }
                        ],
                    }
                ],
            }
        )
    )
    options = InstallOptions(dependency_paths=(built["deps"],), no_deps=True)
    slots = Slots(tmp_path / "prefix")
    slots.install(V1, built[V1], dependency_paths=options.dependency_paths, no_deps=True)
    slots.set_link(slots.current, V1)

    sub = Subscriber(mosquitto.host, mosquitto.port, f"yiwang/v1/{community}/gw-u/+")
    supervisor = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "yiwang",
            "edge",
            "supervise",
            "--config",
            str(gateway),
            "--prefix",
            str(slots.prefix),
        ],
        cwd=tmp_path,
    )
    metrics = f"http://127.0.0.1:{metrics_port}/metrics"
    plan = Plan(
        server=ReleaseServer(releases.url, TOKEN, tls_context(releases.ca), retry_pause_s=0.1),
        public_key=KEY.public_key(),
        restarter=SupervisorRestart(slots.work / STATUS_NAME, timeout_s=30),
        health_url=metrics,
        deadline_s=15,
        install=options,
    )
    try:
        wait_for(lambda: V1 in agent_states(sub), 30, "v1 reports its version")
        first_child = read_status(slots.work / STATUS_NAME)
        assert first_child is not None and first_child.version == V1

        refused = upgrade(slots, TAMPERED, plan)
        assert refused.phase is Phase.FAILED
        assert refused.reason is not None and "release refused" in refused.reason
        assert "does not match its SHA-256" in refused.reason
        assert slots.target(slots.current) == V1
        assert not (slots.versions / TAMPERED).exists()
        assert read_status(slots.work / STATUS_NAME) == first_child  # the agent was not even restarted

        confirmed = upgrade(slots, V2, plan)
        assert confirmed.phase is Phase.CONFIRMED, confirmed.reason
        assert slots.target(slots.current) == V2
        assert slots.target(slots.previous) == V1
        wait_for(lambda: V2 in agent_states(sub), 10, "v2 reports its version")

        rolled_back = upgrade(slots, BROKEN, plan)
        assert rolled_back.phase is Phase.ROLLED_BACK
        assert rolled_back.reason is not None
        assert "not healthy within 15 s" in rolled_back.reason
        assert "the agent is not running" in rolled_back.reason
        assert slots.target(slots.current) == V2
        assert not (slots.versions / BROKEN).exists()
        assert slots.state().report() == {
            "version": V2,
            "attempt": BROKEN,
            "outcome": "rolled_back",
            "reason": rolled_back.reason,
        }
        status = read_status(slots.work / STATUS_NAME)
        assert status is not None and status.version == V2

        # Every message the agents spooled — before, during and after both switches — reaches the broker.
        before = len(sub.of_kind(TopicKind.STATE))
        wait_for(lambda: len(sub.of_kind(TopicKind.STATE)) > before + 1, 10, "v2 runs again")
        sample = read_sample(metrics)
        assert not isinstance(sample, str), sample
        last = sample.last_seq
        wait_for(lambda: max(seqs(sub), default=0) >= last, 20, "published up to the last seq")
        seen = seqs(sub)
        assert seen == set(range(min(seen), max(seen) + 1)), "a seq never reached the broker"
        assert min(seen) == 1
    finally:
        supervisor.send_signal(signal.SIGTERM)
        try:
            supervisor.wait(40)
        except subprocess.TimeoutExpired:
            supervisor.kill()
        sub.close()
