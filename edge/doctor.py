"""`yiwang edge doctor`: check a gateway before it runs, and say what to fix.

Each check answers ok, warn or fail with one line of advice. It reads the gateway file, then looks at
what the agent will need: its devices' sensor types, serial ports and the rights to open them, the
service user's groups (dialout, video), the modem answering ``AT``, TCP devices and the broker
reachable, the broker accepting the gateway's login and its publish to its own topic, TLS files
present, each camera's source, the spool's disk, the clock.
"""

from __future__ import annotations

import contextlib
import grp
import os
import pwd
import shutil
import socket
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import paho.mqtt.client as mqtt
import serial
from paho.mqtt.reasoncodes import ReasonCode

from common.mqtt import SESSION_EXPIRY_S, build_client, shut_down, v5_connect_properties
from common.settings import TlsFiles
from contract.errors import ContractError
from contract.messages import DeviceEntry, DevicesMessage
from contract.topics import Topic, TopicKind
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
    elif not any(c.outcome == "fail" for c in checks):
        checks.append(Check("broker", "ok", f"{mqtt.host}:{mqtt.port} reachable"))
        checks += check_broker_login(config)
    else:
        checks.append(Check("broker", "ok", f"{mqtt.host}:{mqtt.port} reachable"))
    return checks


PROBE_TIMEOUT_S = 5.0
# CONNACK reason codes a refused login answers with (MQTT 5; MQTT 3.1.1 return codes 4 and 5 map to them).
BAD_LOGIN = {"Bad user name or password", "Not authorized"}


class _Probe:
    """One short MQTT 5 session as the gateway: the broker's answer to its login and to one publish."""

    def __init__(self) -> None:
        self.connected = threading.Event()
        self.published = threading.Event()
        self.connack: ReasonCode | None = None
        self.puback: ReasonCode | None = None

    def on_connect(self, _c: mqtt.Client, _u: Any, _f: Any, reason: ReasonCode, _p: Any) -> None:
        self.connack = reason
        self.connected.set()

    def on_connect_fail(self, _c: mqtt.Client, _u: Any) -> None:
        self.connected.set()

    def on_publish(self, _c: mqtt.Client, _u: Any, _mid: int, reason: ReasonCode, _p: Any) -> None:
        self.puback = reason
        self.published.set()


def _probe_payload(config: GatewayConfig) -> bytes:
    entries = [DeviceEntry(device=d.id, type=d.type) for bus in config.buses for d in bus.devices]
    return DevicesMessage(ts=int(time.time() * 1000), devices=entries).model_dump_json().encode()


def check_broker_login(config: GatewayConfig, timeout_s: float = PROBE_TIMEOUT_S) -> list[Check]:
    """Log in as the gateway and publish its device list (not retained) to its own ``devices`` topic.

    MQTT 5 because only there does the broker answer a publish its ACL denies (PUBACK "Not
    authorized"); at 3.1.1 Mosquitto drops it silently. Nothing on the server consumes the
    ``devices`` topic and the retained list stays as the agent left it. The session is the gateway's
    own (the broker keys sessions by account): it is resumed, not cleaned, and nothing delivered to
    it is acknowledged, so a running agent loses nothing; it reconnects once, within seconds.
    """
    mqtt_config = config.mqtt
    try:
        password = mqtt_config.password()
    except OSError as err:
        return [Check("broker login", "fail", f"cannot read the password: {err.strerror or err}")]
    probe = _Probe()
    client = build_client(
        mqtt_config.username or f"doctor-{config.gateway}",
        username=mqtt_config.username,
        password=password.get_secret_value() if password else None,
        tls=TlsFiles(
            *(str(f) if f else None for f in (mqtt_config.tls_ca, mqtt_config.tls_cert, mqtt_config.tls_key))
        ),
        max_inflight=1,
        max_queued=1,
        reconnect_s=(timeout_s, timeout_s),
        mqtt5=True,
        manual_ack=True,
    )
    client.on_connect, client.on_connect_fail, client.on_publish = (
        probe.on_connect,
        probe.on_connect_fail,
        probe.on_publish,
    )
    where = f"{mqtt_config.host}:{mqtt_config.port}"
    try:
        client.connect(
            mqtt_config.host,
            mqtt_config.port,
            keepalive=max(5, int(timeout_s * 2)),
            clean_start=False,
            properties=v5_connect_properties(SESSION_EXPIRY_S),
        )
    except (OSError, ValueError) as err:
        return [Check("broker login", "fail", f"could not connect to {where}: {err}")]
    client.loop_start()
    try:
        return _judge_probe(client, probe, config, timeout_s)
    finally:
        shut_down(client)


def _judge_probe(client: mqtt.Client, probe: _Probe, config: GatewayConfig, timeout_s: float) -> list[Check]:
    who = config.mqtt.username or "anonymous"
    if not probe.connected.wait(timeout_s) or probe.connack is None:
        return [Check("broker login", "fail", f"no answer to the login of {who} within {timeout_s:.0f}s")]
    if probe.connack.is_failure:
        reason = str(probe.connack)
        advice = (
            "wrong password, or the account is not in the broker's password file yet "
            "(`yiwang gateway add` on the server)"
            if reason in BAD_LOGIN
            else "see the broker's log"
        )
        return [Check("broker login", "fail", f"the broker refused {who}: {reason}: {advice}")]
    checks = [Check("broker login", "ok", f"{who} logged in")]
    topic = Topic(config.community, config.gateway, TopicKind.DEVICES).path
    info = client.publish(topic, _probe_payload(config), qos=1, retain=False)
    if info.rc != mqtt.MQTT_ERR_SUCCESS or not probe.published.wait(timeout_s) or probe.puback is None:
        checks.append(Check("broker ACL", "fail", f"no acknowledgement of a publish to {topic}"))
    elif probe.puback.is_failure:
        checks.append(
            Check(
                "broker ACL",
                "fail",
                f"the broker refused {who} publishing to {topic} ({probe.puback}): the account belongs "
                "to another gateway than this file's community/gateway",
            )
        )
    else:
        checks.append(Check("broker ACL", "ok", f"{who} may publish to {topic}"))
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
