"""Secrets stay secret: out of log lines and stored error text, in files that are 0600 from birth, and
the `.env.example` placeholder refused before InfluxDB accepts it as its admin password."""

from __future__ import annotations

import logging
import os
import re
import stat
import subprocess
import threading
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml
from pydantic import ValidationError
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

import broker.accounts
from cases.actions import CaseFlow, Report
from cases.notify import Channel, NotificationConfig, Outbox, OutboxRow
from cases.policy import CasePolicy
from common.logs import setup_logging
from common.private_files import write_private
from common.redact import redact
from series.factory import open_store
from series.influx import InfluxStore
from series.store import Point, StoreUnavailable, TimeSeriesStore
from tests.cases.webhook import Receiver
from tests.platform import REPO
from yiwang.servers import free_port

PASSWORD = "pw-7c1e9a"
TOKEN = "tok-52d0b8"
ROBOT_KEY = "key-0f93ad"
NOW = datetime(2026, 10, 12, 9, 0, tzinfo=ZoneInfo("Asia/Shanghai"))


def assert_clean(text: str, *secrets: str) -> None:
    for secret in secrets:
        assert secret not in text, f"{secret!r} leaked into: {text}"


# --- redaction ----------------------------------------------------------------------------------------


@pytest.fixture
def service_logs(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """Everything logged under the logging every service sets up (httpx's per-request lines are off)."""
    httpx_logger = logging.getLogger("httpx")
    previous = httpx_logger.level
    setup_logging("test", "DEBUG")
    caplog.set_level(logging.DEBUG)
    yield caplog
    httpx_logger.setLevel(previous)


def test_redact_masks_userinfo_and_secret_parameters_only() -> None:
    assert redact(f"influxdb://alice:{PASSWORD}@db:8086/yiwang?rp=week&token={TOKEN}&gzip=on") == (
        "influxdb://***@db:8086/yiwang?rp=week&token=***&gzip=on"
    )
    assert redact(f"Server error for url 'https://q.example/send?KEY={ROBOT_KEY}'") == (
        "Server error for url 'https://q.example/send?KEY=***'"
    )
    dingtalk = f"https://oapi.dingtalk.com/robot/send?access_token={TOKEN}&timestamp=1&sign={ROBOT_KEY}"
    assert redact(dingtalk) == "https://oapi.dingtalk.com/robot/send?access_token=***&timestamp=1&sign=***"
    assert redact("http://host/a?page=2 mailto a@b.example key=value") == (
        "http://host/a?page=2 mailto a@b.example key=value"  # no URL credentials in it: left alone
    )


def test_a_failing_influx_write_names_no_credentials(service_logs: pytest.LogCaptureFixture) -> None:
    closed = free_port()
    stores: list[TimeSeriesStore] = [
        open_store(f"influxdb://alice:{PASSWORD}@127.0.0.1:{closed}/yiwang?token={TOKEN}"),
        InfluxStore(f"http://alice:{PASSWORD}@127.0.0.1:{closed}", "yiwang", token=TOKEN, timeout=2.0),
    ]
    point = Point("env_th", {"device": "th-1"}, {"temperature": 21.5}, 1_764_183_600_123)
    for store in stores:
        with pytest.raises(StoreUnavailable) as write_error:
            store.write([point])
        with pytest.raises(StoreUnavailable) as ping_error:  # what /healthz shows
            store.ping()
        assert "127.0.0.1" in str(write_error.value)  # still says where
        assert_clean(f"{write_error.value} {ping_error.value!r} {store!r}", PASSWORD, TOKEN)
        store.close()
    assert_clean(service_logs.text, PASSWORD, TOKEN)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_a_failing_webhook_keeps_its_key_out_of_the_outbox_and_the_log(
    db: Engine, receiver: Receiver, service_logs: pytest.LogCaptureFixture
) -> None:
    base = f"http://127.0.0.1:{receiver.server_port}"
    channels = [
        Channel(id="wecom", kind="wecom", url=f"{base}/send?key={ROBOT_KEY}", actions=["reported"]),
        Channel(
            id="dingtalk",
            kind="dingtalk",
            url=f"{base}/robot/send?access_token={TOKEN}&timestamp=1&sign={PASSWORD}",
            actions=["reported"],
        ),
    ]
    outbox = Outbox(db, channels)
    CaseFlow(db, CasePolicy.load(REPO / "config")).report(
        Report("zhuganxiang", "g-north", "fire_lane_blocked", "占用", "3号楼"), actor="r", now=NOW
    )
    assert outbox.sweep(NOW) == 2
    receiver.fail_next = 2
    assert outbox.deliver(NOW) == 0
    outbox.close()
    with Session(db) as session:
        errors = {row.channel: row.last_error for row in session.scalars(select(OutboxRow))}
    assert "send?key=***" in errors["wecom"]  # the error still says which URL failed
    assert "access_token=***" in errors["dingtalk"] and "sign=***" in errors["dingtalk"]
    assert_clean(" ".join(errors.values()), ROBOT_KEY, TOKEN, PASSWORD)
    assert "notification wecom:1 to wecom failed" in service_logs.text
    assert_clean(service_logs.text, ROBOT_KEY, TOKEN, PASSWORD)


def test_a_bad_notification_config_does_not_echo_a_robot_url() -> None:
    channel = {"id": "duty", "kind": "wecom", "url": f"https://q.example/send?key={ROBOT_KEY}"}
    with pytest.raises(ValidationError) as duplicate:
        NotificationConfig.model_validate({"channels": [channel, channel]})
    with pytest.raises(ValidationError) as unknown:
        Channel.model_validate({**channel, "kind": "telegram", "colour": "red"})
    assert_clean(f"{duplicate.value} {unknown.value}", ROBOT_KEY)
    assert_clean(repr(Channel.model_validate(channel)), ROBOT_KEY)


# --- secret files -------------------------------------------------------------------------------------


@pytest.fixture
def open_umask() -> Iterator[None]:
    """The widest umask: a file is only as private as the mode it is created with."""
    previous = os.umask(0)
    yield
    os.umask(previous)


def test_a_secret_file_is_0600_from_its_creation(
    tmp_path: Path, open_umask: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "passwords"
    seen: list[tuple[str, int]] = []
    real_replace = os.replace

    def replace(src: Any, dst: Any) -> None:  # the moment before the secret becomes visible by name
        seen.append((Path(src).read_text(encoding="utf-8"), stat.S_IMODE(os.stat(src).st_mode)))
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    monkeypatch.setattr(Path, "replace", lambda self, dst: replace(self, dst))
    write_private(path, "gw.a.b:$7$secret\n")
    assert seen == [("gw.a.b:$7$secret\n", 0o600)]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text(encoding="utf-8") == "gw.a.b:$7$secret\n"
    assert [p.name for p in tmp_path.iterdir()] == ["passwords"]  # no temporary file left behind


def test_a_planted_file_or_symlink_cannot_widen_or_redirect_a_secret(
    tmp_path: Path, open_umask: None
) -> None:
    path = tmp_path / "passwords"
    planted = tmp_path / "passwords.tmp"  # the name a fixed temporary file would have
    planted.write_text("")
    planted.chmod(0o666)
    write_private(path, "first\n")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    elsewhere = tmp_path / "attacker-readable"
    elsewhere.write_text("")
    planted.unlink(missing_ok=True)
    planted.symlink_to(elsewhere)
    write_private(path, "second\n")
    assert not path.is_symlink() and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text() == "second\n" and elsewhere.read_text() == ""


PACKAGES = ("alerts", "api", "broker", "cases", "common", "contract", "edge", "ingest", "series", "yiwang")
# A secret written first and chmod-ed after is readable by others in between; so is a file whose mode
# is fixed after creation. Secret files are created 0600 (common.private_files.write_private).
CHMOD_AFTER_THE_FACT = re.compile(r"\.chmod\(\s*0o?600\s*\)|\bchmod\([^)]*,\s*0o?600\s*\)")


def test_no_secret_file_gets_its_mode_after_the_fact() -> None:
    offenders = {
        str(path.relative_to(REPO))
        for package in PACKAGES
        for path in (REPO / package).rglob("*.py")
        if CHMOD_AFTER_THE_FACT.search(path.read_text(encoding="utf-8"))
    }
    assert offenders == set()
    assert CHMOD_AFTER_THE_FACT.search(Path(broker.accounts.__file__).read_text(encoding="utf-8")) is None


# --- the InfluxDB admin password ----------------------------------------------------------------------


def influxdb_guard() -> list[str]:
    """The influxdb service's entrypoint + command as the container runs them (compose's `$$` is `$`)."""
    service = yaml.safe_load((REPO / "docker-compose.yml").read_text(encoding="utf-8"))["services"][
        "influxdb"
    ]
    argv = [*service["entrypoint"], *service["command"]]
    assert not re.search(r"(?<!\$)\$(?!\$)", "".join(argv[2:])), "a compose interpolation in the guard"
    return [arg.replace("$$", "$") for arg in argv]


def run_guard(password: str, token: str) -> subprocess.CompletedProcess[str]:
    argv = influxdb_guard()
    assert argv[:2] == ["/bin/sh", "-c"] and argv[-2:] == ["/entrypoint.sh", "influxd"]  # then the image's
    env = {"PATH": os.environ["PATH"], "DOCKER_INFLUXDB_INIT_PASSWORD": password}
    env["DOCKER_INFLUXDB_INIT_ADMIN_TOKEN"] = token
    # Instead of the image's entrypoint, something that proves the guard let it run.
    return subprocess.run(
        [*argv[:-2], "echo", "influxd starts"],
        env=env,
        capture_output=True,
        text=True,
        timeout=10,
        check=False,
    )


@pytest.mark.parametrize(
    ("password", "token", "named"),
    [
        ("changethis", "9f2c4e71b0", "INFLUXDB_ADMIN_PASSWORD"),
        (" ChangeThis ", "9f2c4e71b0", "INFLUXDB_ADMIN_PASSWORD"),
        ("3b8e1d6a0c", "changethis", "INFLUXDB_TOKEN"),
    ],
)
def test_influxdb_refuses_the_placeholder_before_it_sets_up_the_admin(
    password: str, token: str, named: str
) -> None:
    done = run_guard(password, token)
    assert done.returncode == 1 and done.stdout == ""
    assert f"refusing to start: {named} is still the placeholder 'changethis'" in done.stderr


def test_influxdb_starts_with_real_secrets() -> None:
    done = run_guard("3b8e1d6a0c", "changethis-not")
    assert (done.returncode, done.stdout, done.stderr) == (0, "influxd starts\n", "")
