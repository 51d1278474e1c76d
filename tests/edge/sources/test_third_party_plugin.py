"""Third-party protocol plugins: accepted only when they import, speak this Source API, keep off the
built-ins' names and pass the load contract; a refused plugin never stops the others.

The integration test builds the toy plugin in ``toy_plugin/`` into a real wheel, installs it into a
fresh virtualenv beside Yiwang, and runs ``yiwang edge run`` as a process that polls a toy device
over TCP and publishes to a real Mosquitto.
"""

from __future__ import annotations

import os
import shutil
import signal
import socketserver
import subprocess
import sys
import sysconfig
import threading
import uuid
from collections.abc import Iterator
from importlib.metadata import EntryPoint
from pathlib import Path

import pytest
import yaml

from contract.messages import TelemetryMessage, decode_message
from contract.topics import TopicKind
from edge.gateway_config import DeviceSet
from edge.sources.base import ConfigError
from edge.sources.build import build_sources, load_profiles
from edge.sources.modbus import ModbusTcpBus
from edge.sources.registry import RefusedSource, discover_sources, load_sources
from tests.edge.test_publisher import Subscriber
from tests.platform import wait_for
from yiwang.servers import MosquittoServer

TOY = Path(__file__).resolve().parent / "toy_plugin"
REPO = Path(__file__).resolve().parents[3]
CONFIG = REPO / "config"
GROUP = "yiwang.sources"


def toy_entry(name: str, value: str) -> EntryPoint:
    return EntryPoint(name=name, value=value, group=GROUP)


@pytest.fixture
def toy_importable(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The toy plugin's modules importable in this process, as an installed plugin's would be."""
    monkeypatch.syspath_prepend(str(TOY))
    yield
    for name in [m for m in sys.modules if m == "yiwang_toy" or m.startswith("yiwang_toy.")]:
        del sys.modules[name]


GOOD = toy_entry("toy_tcp", "yiwang_toy.source:ToyTcpSource")


@pytest.mark.usefixtures("toy_importable")
def test_a_plugin_that_passes_its_checks_is_loaded() -> None:
    found = discover_sources([GOOD])
    assert found.refused == []
    assert found.factories["toy_tcp"].__name__ == "ToyTcpSource"  # type: ignore[attr-defined]


@pytest.mark.usefixtures("toy_importable")
@pytest.mark.parametrize(
    ("entry", "reason"),
    [
        (
            toy_entry("toy_broken", "yiwang_toy.broken:BrokenSource"),
            "source 'toy_broken' failed to import: ImportError: libtoy.so.1: cannot open shared object file",
        ),
        (
            toy_entry("toy_future", "yiwang_toy.refused:FutureSource"),
            "source 'toy_future' (yiwang_toy.refused:FutureSource) speaks Source API version 2, "
            "this agent speaks 1",
        ),
        (
            toy_entry("toy_misfit", "yiwang_toy.refused:NotASource"),
            "source 'toy_misfit' built a NotASource, not a Source: missing read, aclose",
        ),
        (toy_entry("toy_missing", "yiwang_toy.nowhere:Source"), "No module named 'yiwang_toy.nowhere'"),
    ],
)
def test_a_bad_plugin_is_refused_with_its_reason_and_the_others_still_load(
    entry: EntryPoint, reason: str
) -> None:
    found = discover_sources([entry, GOOD])
    assert [r.kind for r in found.refused] == [entry.name]
    assert reason in str(found.refused[0])
    assert "toy_tcp" in found.factories and not isinstance(found.factories["toy_tcp"], RefusedSource)
    # A bus of the refused kind is refused with the reason; the running set is judged, not changed.
    devices = DeviceSet.model_validate(
        {
            "buses": [
                {
                    "id": "b1",
                    "kind": entry.name,
                    "host": "127.0.0.1",
                    "tcp_port": 9,
                    "devices": [{"id": "th-1", "type": "env.th@1", "unit": 1}],
                }
            ]
        }
    )
    with pytest.raises(ConfigError) as err:
        build_sources(devices, load_profiles(CONFIG), found.factories)
    assert str(err.value).startswith(f"bus b1: source plugin {entry.value} refused: ")
    assert reason in str(err.value)


class _NoSample:
    api_version = 1

    def __init__(self, *args: object) -> None:
        raise AssertionError("never built without a sample")


@pytest.mark.usefixtures("toy_importable")
def test_a_plugin_without_a_contract_sample_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    module = type(sys)("toy_nosample")
    module.NoSample = _NoSample  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "toy_nosample", module)
    found = discover_sources([toy_entry("toy_plain", "toy_nosample:NoSample")])
    assert "has no contract_sample()" in str(found.refused[0])


@pytest.mark.usefixtures("toy_importable")
def test_a_plugin_may_not_replace_a_built_in() -> None:
    found = discover_sources([toy_entry("modbus_tcp", "yiwang_toy.source:ToyTcpSource")])
    assert found.factories["modbus_tcp"] is ModbusTcpBus
    assert str(found.refused[0]) == (
        "source plugin yiwang_toy.source:ToyTcpSource refused: "
        "source 'modbus_tcp' is a built-in; register the plugin under another name"
    )


@pytest.mark.usefixtures("toy_importable")
def test_one_kind_from_two_plugins_is_refused_for_both() -> None:
    found = discover_sources([GOOD, toy_entry("toy_tcp", "yiwang_toy.refused:NotASource")])
    assert isinstance(found.factories["toy_tcp"], RefusedSource)
    assert "registered twice" in str(found.refused[0])


def test_our_own_built_ins_are_not_collisions() -> None:
    assert discover_sources().refused == []
    assert set(load_sources()) >= {"modbus_rtu", "modbus_tcp", "serial_line"}


# --- the real thing: a wheel, a fresh virtualenv, `yiwang edge run` as a process ---------------------


class _ToyDevice(socketserver.StreamRequestHandler):
    def handle(self) -> None:
        for line in self.rfile:
            unit = line.decode().split()[-1]
            answer = "temperature=21.5;humidity=55.1" if unit == "1" else f"ERR no unit {unit}"
            self.wfile.write(answer.encode() + b"\n")


@pytest.fixture
def toy_device() -> Iterator[int]:
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _ToyDevice)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def _build_wheel(source: Path, out: Path) -> Path:
    """The plugin built by pip through its PEP 517 backend, offline (setuptools is a dev dependency)."""
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "-w",
            str(out),
            str(source),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, f"the toy plugin's wheel did not build: {result.stderr[-2000:]}"
    return next(out.glob("yiwang_toy_plugin-*.whl"))


@pytest.fixture(scope="module")
def plugin_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtualenv with the toy wheel installed and Yiwang's environment beside it."""
    work = tmp_path_factory.mktemp("plugin")
    source = work / "src"
    shutil.copytree(TOY, source, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    wheel = _build_wheel(source, work / "dist")
    venv = work / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=60)
    python = venv / "bin" / "python"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(python),
            "install",
            "--no-deps",
            "--no-index",
            str(wheel),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    # Yiwang and its dependencies come from the project's environment, its .pth files included;
    # the plugin is found only through its own installed distribution's entry points.
    yiwang_site = sysconfig.get_paths()["purelib"]
    (Path(site) / "yiwang-beside.pth").write_text(f"import site; site.addsitedir({yiwang_site!r})\n")
    return python


def _gateway_file(tmp_path: Path, mosquitto: MosquittoServer, community: str, kind: str, port: int) -> Path:
    path = tmp_path / f"{kind}.yaml"
    config = {
        "community": community,
        "gateway": "gw-p",
        "config_dir": str(CONFIG),
        "mqtt": {"host": mosquitto.host, "port": mosquitto.port},
        "spool": {"dir": str(tmp_path / f"spool-{kind}")},
        "buses": [
            {
                "id": "toy-1",
                "kind": kind,
                "host": "127.0.0.1",
                "tcp_port": port,
                "devices": [
                    {"id": "th-9", "type": "env.th@1", "unit": 1, "poll_s": 0.2, "max_interval_s": 0.5}
                ],
            }
        ],
    }
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.mark.integration
def test_a_plugin_from_a_wheel_polls_a_device_in_a_real_agent(
    plugin_venv: Path, mosquitto: MosquittoServer, toy_device: int, tmp_path: Path
) -> None:
    community = f"t-{uuid.uuid4().hex[:10]}"
    env = {**os.environ, "YIWANG_LOG_LEVEL": "INFO", "PYTHONPATH": ""}
    sub = Subscriber(mosquitto.host, mosquitto.port, f"yiwang/v1/{community}/gw-p/telemetry")
    log_path = tmp_path / "agent.log"
    config = _gateway_file(tmp_path, mosquitto, community, "toy_tcp", toy_device)
    with log_path.open("wb") as log:
        agent = subprocess.Popen(
            [str(plugin_venv), "-m", "yiwang", "edge", "run", "--config", str(config)],
            cwd=tmp_path,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:

        def toy_readings() -> list[dict[str, object]]:
            messages = [decode_message(TopicKind.TELEMETRY, p) for p, _ in sub.of_kind(TopicKind.TELEMETRY)]
            return [
                dict(r.values)
                for m in messages
                if isinstance(m, TelemetryMessage)
                for r in m.readings
                if r.device == "th-9"
            ]

        def arrived() -> list[dict[str, object]] | None:
            assert agent.poll() is None, log_path.read_text()
            return toy_readings()

        values = wait_for(arrived, 60, "a reading of the toy device on MQTT")
        assert values[0] == {"temperature": 21.5, "humidity": 55.1}
    finally:
        agent.send_signal(signal.SIGTERM)
        agent.wait(30)
        sub.close()
    text = log_path.read_text()
    assert "source plugin toy_tcp loaded from yiwang_toy.source:ToyTcpSource" in text
    # The refused plugins in the same wheel are named with their reasons, and stopped nothing.
    assert "source 'modbus_tcp' is a built-in" in text
    assert "source 'toy_broken' failed to import: ImportError: libtoy.so.1" in text
    assert "speaks Source API version 2, this agent speaks 1" in text
    assert "source 'toy_misfit' built a NotASource, not a Source" in text


@pytest.mark.integration
def test_a_gateway_on_a_refused_plugin_is_refused_before_any_port_opens(
    plugin_venv: Path, mosquitto: MosquittoServer, toy_device: int, tmp_path: Path
) -> None:
    config = _gateway_file(tmp_path, mosquitto, "c", "toy_broken", toy_device)
    result = subprocess.run(
        [str(plugin_venv), "-m", "yiwang", "edge", "run", "--config", str(config)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "YIWANG_LOG_LEVEL": "WARNING", "PYTHONPATH": ""},
    )
    assert result.returncode == 2, result.stderr
    assert (
        "bus toy-1: source plugin yiwang_toy.broken:BrokenSource refused: source 'toy_broken' failed "
        "to import: ImportError: libtoy.so.1: cannot open shared object file"
    ) in result.stderr
    assert not (tmp_path / "spool-toy_broken").exists()
