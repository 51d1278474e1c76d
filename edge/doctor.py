"""`yiwang edge doctor`: check a gateway before it runs, and say what to fix.

Each check answers ok, warn or fail with one line of advice. It reads the gateway file, then looks at
what the agent will need: serial ports and the rights to open them, the modem answering ``AT``, TCP
devices and the broker reachable, TLS files present, cameras, the spool's disk, the clock.
"""

from __future__ import annotations

import grp
import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import serial

from edge.gateway_config import GatewayConfig

Outcome = Literal["ok", "warn", "fail"]
MIN_FREE_BYTES = 1 << 30  # a day offline at 100 sensors needs ~0.1 GB; keep ten times that free


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


def diagnose(config: GatewayConfig) -> list[Check]:
    checks: list[Check] = []
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
    if config.cameras is not None:
        ok = config.cameras.is_file()
        checks.append(
            Check("cameras", "ok" if ok else "fail", f"{config.cameras} {'found' if ok else 'missing'}")
        )
    checks += check_broker(config)
    checks.append(check_spool(config))
    checks.append(check_clock())
    return checks


def render(checks: list[Check]) -> str:
    marks = {"ok": "OK  ", "warn": "WARN", "fail": "FAIL"}
    return "\n".join(f"{marks[c.outcome]}  {c.name:<18} {c.detail}" for c in checks)
