"""edge/install/install-edge.sh: a real venv per version, a real pip install of a wheel of this source,
the links of edge/upgrade/slots.py, the units, the doctor, and the move from the single-venv layout.

The installs run into temporary directories (every path is a variable). They are fast because pip
installs only the locally built yiwang wheel (--no-deps --no-index); the agent's dependencies come from
the test's own venv through PYTHONPATH. Everything else — the venv per version, the entry point,
package data, the links, modes, the units' paths, the doctor's run against a real broker — is the
script's real work.
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

from broker.provision import BrokerAddress, gateway_config
from edge.upgrade.slots import INSTALLED_MARK, Slots
from yiwang.servers import MosquittoServer

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "edge" / "install" / "install-edge.sh"
UNITS = ("yiwang-edge.service", "yiwang-edge-upgrade@.service")
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
    "registry",
    "alerts",
    "api",
)
V1, V2 = "0.1.0", "0.1.1"


def run(
    args: list[str], env: dict[str, str], cwd: Path, script: Path = SCRIPT
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["sh", str(script), *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def read_unit(path: Path) -> configparser.ConfigParser:
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str  # type: ignore[assignment,method-assign]  # systemd keys are case-sensitive
    unit.read(path)
    return unit


def build_wheel(out: Path, work: Path, version: str) -> Path:
    """A real wheel of this source tree with ``version``."""
    src = work / f"src-{version}"
    src.mkdir()
    for name in SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(ROOT / name, src / name)
    pyproject = (ROOT / "pyproject.toml").read_text()
    (src / "pyproject.toml").write_text(pyproject.replace('version = "0.1.0"', f'version = "{version}"', 1))
    out.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(src), "--no-deps", "--no-build-isolation", "-q", "-w", str(out)],
        check=True, capture_output=True, cwd=work,
    )  # fmt: skip
    (wheel,) = out.glob(f"yiwang-{version}-*.whl")
    return wheel


@pytest.fixture(scope="module")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    if not SYSTEM_PYTHON.exists():
        pytest.fail(f"{SYSTEM_PYTHON} is needed (Debian's python3, with python3-venv)")
    work = tmp_path_factory.mktemp("wheels")
    return {version: build_wheel(work / f"dist-{version}", work, version) for version in (V1, V2)}


def install_env(tmp_path: Path, **more: str) -> dict[str, str]:
    return os.environ | {
        "PYTHON": str(SYSTEM_PYTHON),
        "PYTHONPATH": sysconfig.get_paths()["purelib"],
        "PIP_OPTS": "--no-deps --no-index",
        "PREFIX": str(tmp_path / "opt"),
        "CONFIG_DIR": str(tmp_path / "etc"),
        "DATA_DIR": str(tmp_path / "var"),
        "UNIT_DIR": str(tmp_path / "units"),
        "POLKIT_DIR": str(tmp_path / "polkit"),
        # The doctor checks this user's groups; the test machine has no `yiwang` user.
        "YIWANG_EDGE_USER": os.environ.get("USER") or "root",
        **more,
    }


def fake_systemctl(tmp_path: Path) -> tuple[Path, Path]:
    """Records what the script asks of systemd on this test machine."""
    calls = tmp_path / "systemctl.calls"
    systemctl = tmp_path / "systemctl"
    systemctl.write_text(f'#!/bin/sh\necho "$*" >> {calls}\n')
    systemctl.chmod(0o755)
    return systemctl, calls


def tree(path: Path) -> dict[str, tuple[int, int]]:
    """Every file and link under ``path`` with its inode and mtime: what a no-op must leave alone."""
    out = {}
    for item in sorted(path.rglob("*")):
        st = item.lstat()
        out[str(item.relative_to(path))] = (st.st_ino, st.st_mtime_ns)
    return out


def assert_runs_its_own_version(prefix: Path, version: str, link: str = "current") -> None:
    yiwang = prefix / link / "bin" / "yiwang"
    deps = {"PATH": os.environ["PATH"], "PYTHONPATH": sysconfig.get_paths()["purelib"]}
    helped = subprocess.run(
        [str(yiwang), "--help"], capture_output=True, text=True, env=deps, cwd=prefix, check=False
    )
    assert helped.returncode == 0 and "edge" in helped.stdout, helped.stderr
    where = subprocess.run(
        [str(prefix / link / "bin" / "python"), "-c", "import importlib.metadata as m, yiwang; "
         "print(m.version('yiwang'), yiwang.__file__)"],
        capture_output=True, text=True, check=True, env={"PATH": os.environ["PATH"]}, cwd=prefix,
    ).stdout.split()  # fmt: skip  # cwd: `python -c` imports from it first
    assert where[0] == version
    assert Path(where[1]).resolve().is_relative_to((prefix / "versions" / version).resolve())


def assert_units_verify(units: Path, prefix: Path) -> None:
    """systemd's own parser finds nothing to say (an unknown key is only a warning there, so stderr)."""
    analyze = shutil.which("systemd-analyze")
    assert analyze is not None, "systemd's own parser is a test requirement (Debian's systemd, .ci/run)"
    (units / "yiwang-edge-upgrade@0.2.0.service").write_text((units / UNITS[1]).read_text())
    for name in ("yiwang-edge.service", "yiwang-edge-upgrade@0.2.0.service"):
        done = subprocess.run(
            [analyze, "verify", str(units / name)], capture_output=True, text=True, check=False
        )
        assert done.returncode == 0 and done.stderr == "", done.stderr
    (units / "yiwang-edge-upgrade@0.2.0.service").unlink()


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
        (["/nonexistent/yiwang-0.1.0-py3-none-any.whl"], "wheel /nonexistent/yiwang-0.1.0-py3-none-any.whl"),
        (["--release-server", "http://yiwang.example/api/v1/releases"], "must be an https:// URL"),
        (["--release-server", "https://yiwang.example/api/v1/releases"], "needs --release-token-file"),
        (["--release-key", "/nonexistent/key.pub"], "release key /nonexistent/key.pub not found"),
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
    assert "--release-server" in result.stdout and "versions/<version>" in result.stdout


@pytest.mark.integration
def test_install_configure_enable_and_doctor_then_again(
    mosquitto: MosquittoServer, wheels: dict[str, Path], tmp_path: Path
) -> None:
    prefix, etc, var, units = (tmp_path / d for d in ("opt", "etc", "var", "units"))

    # The gateway file as provisioning writes it on the server, for this test's broker.
    password_file = tmp_path / "zhuganxiang.gw-09.password"
    password_file.write_text("a-gateway-password\n")
    password_file.chmod(0o600)
    made = gateway_config(
        "zhuganxiang", "gw-09", "gw-09", BrokerAddress("127.0.0.1", mosquitto.port), etc / "mqtt.password"
    )
    provisioned = yaml.safe_load(made)
    provisioned["spool"]["dir"] = str(var / "edge")
    provisioned["metrics"] = {"port": 9311}
    gateway_file = tmp_path / "gw-09.yaml"
    gateway_file.write_text(yaml.safe_dump(provisioned), encoding="utf-8")
    token, key = tmp_path / "release.token", tmp_path / "release-key.pub"
    token.write_text("a-token\n")
    key.write_text("-----BEGIN PUBLIC KEY-----\n")

    systemctl, calls = fake_systemctl(tmp_path)
    env = install_env(tmp_path, SYSTEMCTL=str(systemctl))
    args = ["--no-user", "--gateway-file", str(gateway_file), "--password-file", str(password_file)]
    args += ["--sensor-types", str(ROOT / "config" / "sensor-types")]
    args += ["--release-server", "https://yiwang.example/api/v1/releases"]
    args += ["--release-token-file", str(token), "--release-key", str(key), str(wheels[V1])]

    first = run(args, env, tmp_path)

    assert first.returncode == 0, first.stdout + first.stderr
    # The layout `yiwang edge upgrade` continues: a venv per version, `current` a relative link to it.
    assert f"created venv {prefix / 'versions' / V1}" in first.stdout
    assert os.readlink(prefix / "current") == f"versions/{V1}"
    assert not (prefix / "previous").exists() and not (prefix / "venv").exists()
    assert (prefix / "versions" / V1 / INSTALLED_MARK).read_text() == f"{V1}\n"
    slots = Slots(prefix)
    assert slots.installed() == [V1] and slots.recover() == V1
    assert_runs_its_own_version(prefix, V1)
    # A real (not editable) install of the wheel, with the package data migrations need.
    site = next((prefix / "versions" / V1 / "lib").glob("python3*/site-packages"))
    assert (site / "yiwang" / "migrations" / "script.py.mako").is_file()
    assert (site / "edge" / "doctor.py").is_file()
    # Config and data: modes, the password private, the provisioned config_dir pointed at /etc.
    assert stat.S_IMODE(etc.stat().st_mode) == 0o750
    assert stat.S_IMODE((etc / "mqtt.password").stat().st_mode) == 0o600
    assert (etc / "mqtt.password").read_bytes() == password_file.read_bytes()
    assert yaml.safe_load((etc / "gateway.yaml").read_text())["config_dir"] == str(etc)
    assert (etc / "sensor-types").is_dir() and any((etc / "sensor-types").iterdir())
    assert (var / "edge").is_dir() and stat.S_IMODE(var.stat().st_mode) == 0o750
    # The release settings the upgrade unit reads; the token root's alone.
    assert stat.S_IMODE((etc / "release.token").stat().st_mode) == 0o600
    assert (etc / "release-key.pub").read_bytes() == key.read_bytes()
    assert (etc / "upgrade.env").read_text().splitlines()[1:] == [
        "YIWANG_RELEASE_SERVER=https://yiwang.example/api/v1/releases",
        "YIWANG_RELEASE_CA=/etc/ssl/certs/ca-certificates.crt",
        "YIWANG_METRICS_URL=http://127.0.0.1:9311/metrics",
    ]
    # The units, with every path moved, enabled and (a gateway file being there) restarted.
    service = read_unit(units / "yiwang-edge.service")["Service"]
    assert service["ExecStart"] == f"{prefix}/current/bin/yiwang edge run --config {etc}/gateway.yaml"
    assert f"{prefix}/current/bin/yiwang edge recover --prefix {prefix} ||" in service["ExecStartPre"]
    assert service["WorkingDirectory"] == str(var) and service["ReadWritePaths"] == str(var)
    # Told a desired version, the agent starts its upgrade unit: it knows the prefix and the server...
    assert f"YIWANG_UPGRADE_PREFIX={prefix}" in service["Environment"].split()
    assert service["EnvironmentFile"] == f"-{etc}/upgrade.env"
    # ... and polkit lets its user start exactly that unit.
    rule = (tmp_path / "polkit" / "50-yiwang-edge-upgrade.rules").read_text()
    assert f'subject.user === "{env.get("YIWANG_USER", "yiwang")}"' in rule
    assert 'action.lookup("verb") === "start"' in rule and "yiwang-edge-upgrade@" in rule
    upgrade = read_unit(units / "yiwang-edge-upgrade@.service")["Service"]
    assert upgrade["ReadWritePaths"] == str(prefix) and upgrade["EnvironmentFile"] == f"{etc}/upgrade.env"
    assert upgrade["ExecStart"].startswith(f"{prefix}/current/bin/yiwang edge upgrade %I --prefix {prefix} ")
    assert f"--token-file {etc}/release.token" in upgrade["ExecStart"]
    assert_units_verify(units, prefix)
    assert calls.read_text().splitlines() == [
        "daemon-reload",
        "enable yiwang-edge.service",
        "restart yiwang-edge.service",
    ]
    # The doctor ran against the installed package, the installed files and the real broker.
    assert f"OK    broker             127.0.0.1:{mosquitto.port} reachable" in first.stdout
    assert "OK    spool" in first.stdout and "doctor: all checks passed" in first.stdout

    # Again, with the operator's edits in /etc: the versions untouched, their file kept, the new beside.
    (etc / "gateway.yaml").write_text((etc / "gateway.yaml").read_text() + "# edited on the gateway\n")
    before = tree(prefix)
    again = run(args, env, tmp_path)

    assert again.returncode == 0, again.stdout + again.stderr
    assert "created venv" not in again.stdout and "current ->" not in again.stdout
    assert tree(prefix) == before
    assert f"kept {etc / 'gateway.yaml'}" in again.stdout
    assert (etc / "gateway.yaml").read_text().endswith("# edited on the gateway\n")
    assert (etc / "gateway.yaml.new").is_file()
    assert f"installed {etc / 'mqtt.password'}" in again.stdout  # unchanged: installed over itself


@pytest.mark.integration
def test_another_version_becomes_current_and_the_one_before_previous(
    wheels: dict[str, Path], tmp_path: Path
) -> None:
    env = install_env(tmp_path)
    prefix = tmp_path / "opt"
    assert run(["--no-user", "--no-systemd", str(wheels[V1])], env, tmp_path).returncode == 0
    # An install cut before .installed was written: that venv is never made current, and redone.
    (prefix / "versions" / V2 / "bin").mkdir(parents=True)
    (prefix / "versions" / V2 / "half-installed").write_text("")

    second = run(["--no-user", "--no-systemd", str(wheels[V2])], env, tmp_path)

    assert second.returncode == 0, second.stdout + second.stderr
    assert f"current -> versions/{V2} (previous: {V1})" in second.stdout
    assert os.readlink(prefix / "current") == f"versions/{V2}"
    assert os.readlink(prefix / "previous") == f"versions/{V1}"
    assert not (prefix / "versions" / V2 / "half-installed").exists()
    assert Slots(prefix).installed() == [V1, V2]
    assert_runs_its_own_version(prefix, V2)
    assert_runs_its_own_version(prefix, V1, link="previous")
    # Without a package, the current version is kept: nothing fetched, nothing switched.
    before = tree(prefix)
    kept = run(["--no-user", "--no-systemd"], env | {"PIP_OPTS": "--no-index"}, tmp_path)
    assert kept.returncode == 0, kept.stdout + kept.stderr
    assert f"current is yiwang {V2}" in kept.stdout and tree(prefix) == before


@pytest.mark.integration
def test_offline_from_a_wheelhouse_by_requirement(wheels: dict[str, Path], tmp_path: Path) -> None:
    """No PACKAGE and no index: pip picks the version from the wheelhouse, which names the venv."""
    wheelhouse = tmp_path / "wheelhouse"
    wheelhouse.mkdir()
    shutil.copy2(wheels[V2], wheelhouse)
    env = install_env(tmp_path, PIP_OPTS=f"--no-deps --no-index --find-links {wheelhouse}")

    result = run(["--no-user", "--no-systemd", "--no-doctor"], env, tmp_path)

    assert result.returncode == 0, result.stdout + result.stderr
    assert os.readlink(tmp_path / "opt" / "current") == f"versions/{V2}"
    assert_runs_its_own_version(tmp_path / "opt", V2)


@pytest.mark.integration
def test_a_single_venv_install_is_migrated_keeping_config_and_spool(
    wheels: dict[str, Path], tmp_path: Path
) -> None:
    """The layout the script made before versions/: /opt/yiwang/venv, the unit starting it."""
    old_script, old_unit = tmp_path / "old-install-edge.sh", tmp_path / "old-yiwang-edge.service"
    for path, name in (
        (old_script, "edge/install/install-edge.sh"),
        (old_unit, "edge/systemd/yiwang-edge.service"),
    ):
        shown = subprocess.run(["git", "show", f"ae5f0a6:{name}"], cwd=ROOT, capture_output=True, check=True)
        path.write_bytes(shown.stdout)
    prefix, etc, var, units = (tmp_path / d for d in ("opt", "etc", "var", "units"))
    gateway = {"community": "c", "gateway": "g", "mqtt": {"host": "127.0.0.1", "port": 9}}
    gateway_file = tmp_path / "gw.yaml"
    gateway_file.write_text(yaml.safe_dump(gateway | {"spool": {"dir": str(var / "edge")}}))
    systemctl, calls = fake_systemctl(tmp_path)
    env = install_env(tmp_path, SYSTEMCTL=str(systemctl))
    old = run(
        ["--no-user", "--no-doctor", "--gateway-file", str(gateway_file), str(wheels[V1])],
        env | {"UNIT_SOURCE": str(old_unit)}, tmp_path, script=old_script,
    )  # fmt: skip
    assert old.returncode == 0, old.stdout + old.stderr
    assert (prefix / "venv" / "bin" / "yiwang").is_file()
    assert read_unit(units / "yiwang-edge.service")["Service"]["ExecStart"].startswith(f"{prefix}/venv/bin/")
    # Readings waiting in the spool and an operator's edit: neither may be lost.
    spool = var / "edge" / "spool.db"
    spool.write_bytes(b"readings not yet acknowledged")
    (etc / "gateway.yaml").write_text((etc / "gateway.yaml").read_text() + "# edited on the gateway\n")
    config_before = {p.name: p.read_bytes() for p in etc.iterdir()}
    calls.unlink()

    migrated = run(["--no-user", "--no-doctor", str(wheels[V1])], env, tmp_path)

    assert migrated.returncode == 0, migrated.stdout + migrated.stderr
    assert os.readlink(prefix / "current") == f"versions/{V1}"
    assert Slots(prefix).recover() == V1
    assert_runs_its_own_version(prefix, V1)
    # The old venv is gone; its path follows `current`, so anything still naming it runs on.
    assert os.readlink(prefix / "venv") == "current"
    assert_runs_its_own_version(prefix, V1, link="venv")
    assert not (prefix / ".venv.retired").exists()
    assert spool.read_bytes() == b"readings not yet acknowledged"
    assert {p.name: p.read_bytes() for p in etc.iterdir()} == config_before
    service = read_unit(units / "yiwang-edge.service")["Service"]
    assert service["ExecStart"] == f"{prefix}/current/bin/yiwang edge run --config {etc}/gateway.yaml"
    assert (units / "yiwang-edge-upgrade@.service").is_file()
    assert calls.read_text().splitlines() == [
        "daemon-reload",
        "enable yiwang-edge.service",
        "restart yiwang-edge.service",
    ]
    # Once more: nothing left to migrate, nothing changed.
    before = tree(prefix)
    assert run(["--no-user", "--no-doctor", "--no-systemd", str(wheels[V1])], env, tmp_path).returncode == 0
    assert tree(prefix) == before


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
    # A version is installed already (a re-run): this test's own venv stands in for it.
    slot = tmp_path / "opt" / "versions" / V1
    (slot / "bin").mkdir(parents=True)
    for name in ("python", "yiwang"):
        (slot / "bin" / name).write_text(f'#!/bin/sh\nexec {Path(sys.executable).parent / name} "$@"\n')
        (slot / "bin" / name).chmod(0o755)
    (slot / INSTALLED_MARK).write_text(f"{V1}\n")
    (tmp_path / "opt" / "current").symlink_to(f"versions/{V1}")
    env = os.environ | {
        "PREFIX": str(tmp_path / "opt"),
        "CONFIG_DIR": str(etc),
        "DATA_DIR": str(tmp_path / "var"),
        "PIP_OPTS": "--no-index",
        "YIWANG_EDGE_USER": os.environ.get("USER") or "root",
    }
    result = run(["--no-user", "--no-systemd"], env, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "FAIL  broker" in result.stdout and "doctor found problems" in result.stdout
