"""`yiwang edge doctor`: check a gateway before it runs, and say what to fix.

Each check answers ok, warn or fail with one line of advice. It reads the gateway file, then looks at
what the agent will need: its devices' sensor types, serial ports and the rights to open them, the
service user's groups (dialout, video), the modem answering ``AT``, TCP devices and the broker
reachable, TLS files present, each camera's source, the spool's disk, the clock.
"""

from __future__ import annotations

import contextlib
import grp
import os
import pwd
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

import serial

from contract.errors import ContractError
from edge.camera.config import CameraConfigError, load_config
from edge.gateway_config import GatewayConfig
from edge.sources.base import ConfigError
from edge.sources.build import build_sources, load_profiles
from edge.sources.registry import load_sources

Outcome = Literal["ok", "warn", "fail"]
MIN_FREE_BYTES = 1 << 30  # a day offline at 100 sensors needs ~0.1 GB; keep ten times that free
# A Pi has no real-time clock: before NTP answers it boots at its last saved time, or in 1970.
CLOCK_FLOOR = 1735689600  # 2025-01-01 UTC, before this release existed
SERVICE_USER = "yiwang"  # User= of edge/systemd/yiwang-edge.service
STREAM_PORTS = {"rtsp": 554, "rtsps": 322, "http": 80, "https": 443}


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    outcome: Outcome
    detail: str


def _tcp(host: str, port: int, timeout: float = 2.0) -> str | None:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return None
    except OSError as err:
        return err.strerror or str(err)


def check_serial_port(name: str, port: str) -> Check:
    path = Path(port)
    if not path.exists():
        return Check(
            name, "fail", f"{port} does not exist: is the adapter plugged in? (ls /dev/serial/by-id)"
        )
    if not os.access(port, os.R_OK | os.W_OK):
        in_dialout = os.geteuid() == 0 or "dialout" in {grp.getgrgid(g).gr_name for g in os.getgroups()}
        advice = "" if in_dialout else " — add the service user to dialout: sudo usermod -aG dialout yiwang"
        return Check(name, "fail", f"{port} is not readable and writable{advice}")
    return Check(name, "ok", f"{port} can be opened")


def check_modem(port: str, baudrate: int, timeout: float) -> Check:
    basic = check_serial_port("modem port", port)
    if basic.outcome != "ok":
        return basic
    try:
        with serial.Serial(port, baudrate=baudrate, timeout=0.1) as line:
            line.reset_input_buffer()
            line.write(b"AT+CSQ\r")  # every modem knows it, and it proves the radio side answers
            deadline, answer = time.monotonic() + timeout, b""
            while time.monotonic() < deadline and b"OK" not in answer:
                answer += line.read(64)
    except (OSError, serial.SerialException) as err:
        return Check("modem", "fail", f"{port}: {err}")
    if b"OK" not in answer:
        return Check(
            "modem",
            "fail",
            f"{port} did not answer AT+CSQ within {timeout:.0f}s: wrong port, or the modem hangs",
        )
    return Check("modem", "ok", f"{port} answers AT+CSQ")


def check_broker(config: GatewayConfig) -> list[Check]:
    mqtt = config.mqtt
    checks = []
    for label, file in (
        ("TLS CA", mqtt.tls_ca),
        ("client certificate", mqtt.tls_cert),
        ("client key", mqtt.tls_key),
        ("password file", mqtt.password_file),
    ):
        if file is not None and not file.is_file():
            checks.append(Check(label, "fail", f"{file} is missing"))
    if mqtt.password_env and not os.environ.get(mqtt.password_env):
        checks.append(Check("password", "fail", f"environment variable {mqtt.password_env} is not set"))
    error = _tcp(mqtt.host, mqtt.port)
    if error:
        checks.append(
            Check("broker", "fail", f"{mqtt.host}:{mqtt.port} unreachable ({error}): DNS, 5G link, firewall?")
        )
    else:
        checks.append(Check("broker", "ok", f"{mqtt.host}:{mqtt.port} reachable"))
    return checks


def check_clock() -> Check:
    now = time.time()
    if now < CLOCK_FLOOR:
        return Check(
            "clock",
            "fail",
            f"the clock says {time.strftime('%Y-%m-%d', time.gmtime(now))}: not set yet; readings would "
            "carry that date (timedatectl set-ntp true; a Pi has no RTC and needs NTP or an RTC hat)",
        )
    timedatectl = shutil.which("timedatectl")
    if timedatectl is None:
        return Check("clock", "warn", "timedatectl not found: cannot tell whether the clock is synchronised")
    result = subprocess.run(
        [timedatectl, "show", "-p", "NTPSynchronized", "--value"],
        capture_output=True,
        text=True,
        timeout=5,
        check=False,
    )
    if result.stdout.strip() == "yes":
        return Check("clock", "ok", "synchronised (NTP)")
    return Check(
        "clock", "warn", "not NTP-synchronised: readings carry the gateway's time (timedatectl set-ntp true)"
    )


def check_spool(config: GatewayConfig) -> Check:
    directory = config.spool.dir
    probe = directory if directory.exists() else next((p for p in directory.parents if p.exists()), Path("/"))
    if not os.access(probe, os.W_OK):
        return Check(
            "spool", "fail", f"{probe} is not writable: the spool cannot keep readings while offline"
        )
    free = shutil.disk_usage(probe).free
    if free < MIN_FREE_BYTES:
        return Check("spool", "warn", f"only {free >> 20} MiB free under {probe}")
    return Check("spool", "ok", f"{directory}: {free >> 30} GiB free")


def _video_device(source: str | int) -> str | None:
    if isinstance(source, int) or source.isdigit():
        return f"/dev/video{int(source)}"
    return source if source.startswith("/dev/") else None


def check_camera_source(name: str, source: str | int) -> Check:
    """A V4L2 device must open for reading; a stream's host must answer; a file must exist."""
    device = _video_device(source)
    if device is not None:
        if not Path(device).exists():
            return Check(
                name, "fail", f"{device} does not exist: camera plugged in? (v4l2-ctl --list-devices)"
            )
        if not os.access(device, os.R_OK | os.W_OK):
            return Check(
                name,
                "fail",
                f"{device} cannot be opened — add the service user to video: sudo usermod -aG video yiwang",
            )
        return Check(name, "ok", f"{device} can be opened")
    url = urlsplit(str(source))
    if url.scheme in STREAM_PORTS:
        if not url.hostname:
            return Check(name, "fail", f"{source}: no host in the URL")
        port = url.port or STREAM_PORTS[url.scheme]
        error = _tcp(url.hostname, port)
        if error:
            return Check(
                name, "fail", f"{url.hostname}:{port} unreachable ({error}): camera powered, on the LAN?"
            )
        return Check(name, "ok", f"{url.hostname}:{port} reachable")
    if Path(str(source)).is_file():
        return Check(name, "ok", f"{source} found")
    return Check(name, "fail", f"{source} is neither a stream URL, a video device nor an existing file")


def check_cameras(path: Path) -> tuple[list[Check], list[str]]:
    """Checks of every camera in the camera file, and the video devices it uses."""
    if not path.is_file():
        return [Check("cameras", "fail", f"{path} missing")], []
    try:
        cameras = load_config(path).cameras
    except CameraConfigError as err:
        return [Check("cameras", "fail", f"{err}".splitlines()[0])], []
    checks = [Check("cameras", "ok", f"{path} found: {len(cameras)} camera(s)")]
    checks += [check_camera_source(f"camera {c.id}", c.source) for c in cameras]
    return checks, [d for c in cameras if (d := _video_device(c.source)) is not None]


def service_user() -> str | None:
    """Whose rights matter: ``YIWANG_EDGE_USER``, or the unit's user when root runs the doctor (root
    opens every port, so its own rights say nothing). Otherwise the checks above use the caller's."""
    named = os.environ.get("YIWANG_EDGE_USER")
    if named:
        return named
    return SERVICE_USER if os.geteuid() == 0 else None


def check_service_user(user: str, groups: set[str]) -> Check:
    """The service user exists and is in the groups that open serial ports (dialout), cameras (video)."""
    try:
        account = pwd.getpwnam(user)
    except KeyError:
        wanted = ",".join(sorted(groups)) or "dialout"
        return Check(
            "service user",
            "fail",
            f"no user {user}: run edge/install/install-edge.sh, or sudo useradd --system "
            f"--home-dir /var/lib/yiwang --groups {wanted} {user}",
        )
    member = {g.gr_name for g in grp.getgrall() if user in g.gr_mem}
    with contextlib.suppress(KeyError):  # a primary group without a name grants nothing we look for
        member.add(grp.getgrgid(account.pw_gid).gr_name)
    missing = sorted(groups - member)
    if missing:
        return Check(
            "service user",
            "fail",
            f"{user} is not in {', '.join(missing)}: sudo usermod -aG {','.join(missing)} {user}, "
            "then sudo systemctl restart yiwang-edge",
        )
    return Check("service user", "ok", f"{user} is in {', '.join(sorted(groups)) or 'the groups needed'}")


def check_devices(config: GatewayConfig) -> Check:
    """The check the agent makes first: every device's sensor type known, every bus kind installed."""
    try:
        profiles = load_profiles(config.config_dir)
        if not profiles:
            where = (config.config_dir / "sensor-types").resolve()
            return Check(
                "devices",
                "fail",
                f"no sensor types in {where}: copy config/sensor-types there (install-edge.sh "
                "--sensor-types)",
            )
        build_sources(config.device_set(), profiles, load_sources())
    except (ContractError, ConfigError) as err:
        return Check("devices", "fail", str(err).splitlines()[0])
    count = sum(len(bus.devices) for bus in config.buses)
    return Check(
        "devices", "ok", f"{count} device(s) on {len(config.buses)} bus(es), {len(profiles)} sensor types"
    )


def diagnose(config: GatewayConfig) -> list[Check]:
    checks: list[Check] = [check_devices(config)]
    for bus in config.buses:
        if bus.port is not None:
            checks.append(check_serial_port(f"bus {bus.id}", bus.port))
        if bus.host is not None and bus.tcp_port is not None:
            error = _tcp(bus.host, bus.tcp_port)
            where = f"{bus.host}:{bus.tcp_port}"
            checks.append(
                Check(f"bus {bus.id}", "fail" if error else "ok", f"{where} {error or 'reachable'}")
            )
    if config.modem is not None:
        checks.append(check_modem(config.modem.port, config.modem.baudrate, config.modem.timeout_s))
    camera_devices: list[str] = []
    if config.cameras is not None:
        camera_checks, camera_devices = check_cameras(config.cameras)
        checks += camera_checks
    user = service_user()
    if user is not None:
        needed = set()
        if config.modem is not None or any(bus.port is not None for bus in config.buses):
            needed.add("dialout")
        if camera_devices:
            needed.add("video")
        checks.append(check_service_user(user, needed))
    checks += check_broker(config)
    checks.append(check_spool(config))
    checks.append(check_clock())
    return checks


def render(checks: list[Check]) -> str:
    marks = {"ok": "OK  ", "warn": "WARN", "fail": "FAIL"}
    return "\n".join(f"{marks[c.outcome]}  {c.name:<18} {c.detail}" for c in checks)
