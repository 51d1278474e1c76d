"""edge/install/install-edge.sh: a real venv, a real pip install of this source, the unit, the doctor.

The install runs into temporary directories (every path is a variable). It is fast because the venv
sees the system's setuptools/wheel (Debian's python3, as on a Pi) and pip builds this source without
downloading anything (--no-deps --no-index); the agent's dependencies come from the test's own venv
through PYTHONPATH. Everything else — the package build, the entry point, package data, modes, the
unit's paths, the doctor's run against a real broker — is the script's real work.
"""

from __future__ import annotations

import configparser
import os
import shutil
import stat
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from yiwang.cli import app
from yiwang.servers import MosquittoServer

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "edge" / "install" / "install-edge.sh"
SYSTEM_PYTHON = Path("/usr/bin/python3")
SOURCES = (
    "pyproject.toml",
    "README.md",
    "yiwang",
    "common",
    "contract",
    "edge",
    "broker",
    "series",
    "ingest",
    "cases",
    "alerts",
    "api",
)


def run(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["sh", str(SCRIPT), *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_shellcheck_finds_nothing() -> None:
    shellcheck = shutil.which("shellcheck")
    assert shellcheck is not None, "shellcheck is not installed (apt install shellcheck; .ci/run does)"
    result = subprocess.run(
        [shellcheck, "-s", "sh", str(SCRIPT)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--gateway-file", "/nonexistent/gw.yaml"], "gateway file /nonexistent/gw.yaml not found"),
        (["--password-file"], "--password-file needs a file"),
        (["--frobnicate"], "unknown option --frobnicate"),
        (["--editable", "yiwang[edge]"], "--editable needs a source directory"),
        (["a.whl", "b.whl"], "one PACKAGE only"),
    ],
)
def test_bad_arguments_are_refused_before_anything_is_installed(
    tmp_path: Path, args: list[str], message: str
) -> None:
    env = os.environ | {"PREFIX": str(tmp_path / "opt"), "CONFIG_DIR": str(tmp_path / "etc")}
    result = run(args, env, tmp_path)
    assert result.returncode == 2 and message in result.stderr
    assert not (tmp_path / "opt").exists() and not (tmp_path / "etc").exists()


def test_help_names_every_variable(tmp_path: Path) -> None:
    result = run(["--help"], dict(os.environ), tmp_path)
    assert result.returncode == 0
    for name in ("ROOT", "PREFIX", "CONFIG_DIR", "DATA_DIR", "UNIT_DIR", "--no-systemd", "--gateway-file"):
        assert name in result.stdout


@pytest.mark.integration
def test_install_configure_enable_and_doctor_then_again(mosquitto: MosquittoServer, tmp_path: Path) -> None:
    if not SYSTEM_PYTHON.exists():
        pytest.fail(f"{SYSTEM_PYTHON} is needed (Debian's python3, with python3-venv and python3-wheel)")
    source = tmp_path / "src"
    source.mkdir()
    for name in SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(ROOT / name, source / name)
    shutil.copytree(ROOT / "config" / "sensor-types", source / "config" / "sensor-types")
    prefix, etc, var, units = (tmp_path / d for d in ("opt", "etc", "var", "units"))

    # The gateway file as `yiwang gateway add` prints it on the server, for this test's broker.
    accounts = tmp_path / "accounts"
    made = CliRunner().invoke(
        app,
        [
            "gateway", "add", "zhuganxiang", "gw-09", "--accounts-dir", str(accounts),
            "--port", str(mosquitto.port), "--password-file", str(etc / "mqtt.password"),
        ],
    )  # fmt: skip
    assert made.exit_code == 0, made.output
    provisioned = yaml.safe_load(made.stdout)
    provisioned["spool"]["dir"] = str(var / "edge")
    gateway_file = tmp_path / "gw-09.yaml"
    gateway_file.write_text(yaml.safe_dump(provisioned), encoding="utf-8")
    password_file = next((accounts / "credentials").glob("*gw-09.password"))

    calls = tmp_path / "systemctl.calls"
    systemctl = tmp_path / "systemctl"  # records what the script asks of systemd on this test machine
    systemctl.write_text(f'#!/bin/sh\necho "$*" >> {calls}\n')
    systemctl.chmod(0o755)
    env = os.environ | {
        "PYTHON": str(SYSTEM_PYTHON),
        "PYTHONPATH": sysconfig.get_paths()["purelib"],
        "PIP_OPTS": "--no-deps --no-build-isolation --no-index",
        "PREFIX": str(prefix),
        "CONFIG_DIR": str(etc),
        "DATA_DIR": str(var),
        "UNIT_DIR": str(units),
        "SYSTEMCTL": str(systemctl),
        # The doctor checks this user's groups; the test machine has no `yiwang` user.
        "YIWANG_EDGE_USER": os.environ.get("USER") or "root",
    }
    args = ["--no-user", "--system-site-packages", "--gateway-file", str(gateway_file)]
    args += ["--password-file", str(password_file), str(source)]

    first = run(args, env, tmp_path)

    assert first.returncode == 0, first.stdout + first.stderr
    assert f"created venv {prefix / 'venv'}" in first.stdout
    # A real (not editable) install of this source, with the package data migrations need.
    site = Path(
        subprocess.run(
            [str(prefix / "venv" / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            capture_output=True, text=True, check=True, env={"PATH": os.environ["PATH"]},
        ).stdout.strip()
    )  # fmt: skip
    assert (site / "yiwang" / "migrations" / "script.py.mako").is_file()
    assert (site / "edge" / "doctor.py").is_file()
    assert (prefix / "venv" / "bin" / "yiwang").is_file()
    # Config and data: modes, the password private, the provisioned config_dir pointed at /etc.
    assert stat.S_IMODE(etc.stat().st_mode) == 0o750
    assert stat.S_IMODE((etc / "mqtt.password").stat().st_mode) == 0o600
    assert (etc / "mqtt.password").read_bytes() == password_file.read_bytes()
    assert yaml.safe_load((etc / "gateway.yaml").read_text())["config_dir"] == str(etc)
    assert (etc / "sensor-types").is_dir() and any((etc / "sensor-types").iterdir())
    assert (var / "edge").is_dir() and stat.S_IMODE(var.stat().st_mode) == 0o750
    # The unit, with every path moved, enabled and (a gateway file being there) restarted.
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str  # type: ignore[assignment,method-assign]  # systemd keys are case-sensitive
    unit.read(units / "yiwang-edge.service")
    service = unit["Service"]
    assert service["ExecStart"] == f"{prefix}/venv/bin/yiwang edge run --config {etc}/gateway.yaml"
    assert service["WorkingDirectory"] == str(var) and service["ReadWritePaths"] == str(var)
    assert calls.read_text().splitlines() == [
        "daemon-reload",
        "enable yiwang-edge.service",
        "restart yiwang-edge.service",
    ]
    # The doctor ran against the installed package, the installed files and the real broker.
    assert f"OK    broker             127.0.0.1:{mosquitto.port} reachable" in first.stdout
    assert "OK    spool" in first.stdout and "doctor: all checks passed" in first.stdout

    # Again, with the operator's edits in /etc: nothing recreated, their file kept, the new one beside.
    (etc / "gateway.yaml").write_text((etc / "gateway.yaml").read_text() + "# edited on the gateway\n")
    again = run(args, env, tmp_path)

    assert again.returncode == 0, again.stdout + again.stderr
    assert "created venv" not in again.stdout
    assert f"kept {etc / 'gateway.yaml'}" in again.stdout
    assert (etc / "gateway.yaml").read_text().endswith("# edited on the gateway\n")
    assert (etc / "gateway.yaml.new").is_file()
    assert f"installed {etc / 'mqtt.password'}" in again.stdout  # unchanged: installed over itself


@pytest.mark.integration
def test_a_doctor_failure_is_reported_without_failing_the_install(tmp_path: Path) -> None:
    """No broker at the configured address: the install completes and says what to fix."""
    etc = tmp_path / "etc"
    etc.mkdir(mode=0o750)
    (etc / "gateway.yaml").write_text(
        yaml.safe_dump(
            {
                "community": "c",
                "gateway": "g",
                "mqtt": {"host": "127.0.0.1", "port": 9},
                "spool": {"dir": str(tmp_path)},
            }
        )
    )
    venv = tmp_path / "opt" / "venv" / "bin"
    venv.mkdir(parents=True)
    # The venv exists already (an upgrade run): this test's own, where `yiwang[edge]` is satisfied.
    for name in ("python", "yiwang"):
        (venv / name).write_text(f'#!/bin/sh\nexec {Path(sys.executable).parent / name} "$@"\n')
        (venv / name).chmod(0o755)
    env = os.environ | {
        "PREFIX": str(tmp_path / "opt"),
        "CONFIG_DIR": str(etc),
        "DATA_DIR": str(tmp_path / "var"),
        "PIP_OPTS": "--no-deps --no-build-isolation --no-index",
        "YIWANG_EDGE_USER": os.environ.get("USER") or "root",
    }
    result = run(["--no-user", "--no-systemd"], env, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "FAIL  broker" in result.stdout and "doctor found problems" in result.stdout
