"""The notification outbox against a real HTTP receiver on loopback that fails, then recovers."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine

from alerts.schema import create_schema
from cases.actions import CaseFlow, Report
from cases.notify import Channel, Outbox
from cases.policy import CasePolicy
from common.db import make_engine
from tests.alerts.scenario import CONFIG
from tests.cases.webhook import Receiver

POLICY = CasePolicy.load(CONFIG)
NOW = datetime(2026, 10, 12, 9, 0, tzinfo=ZoneInfo("Asia/Shanghai"))


@pytest.fixture
def db(tmp_path: Any) -> Iterator[Engine]:
    db = make_engine(f"sqlite:///{tmp_path}/n.db")
    create_schema(db)
    yield db
    db.dispose()


def test_case_events_reach_each_channel_once_in_its_format(db: Engine, receiver: Receiver) -> None:
    url = f"http://127.0.0.1:{receiver.server_port}/hook"
    channels = [
        Channel(id="duty", kind="wecom", url=url, actions=["reported", "accept"]),
        Channel(id="floods", kind="dingtalk", url=url, actions=["reported"], categories=["flooding"]),
        Channel(id="audit", kind="webhook", url=url, actions=["accept"]),
    ]
    outbox = Outbox(db, channels, categories=POLICY.categories)
    flow = CaseFlow(db, POLICY)
    case_id, _ = flow.report(
        Report("zhuganxiang", "g-north", "fire_lane_blocked", "占用", "3号楼"), actor="r", now=NOW
    )
    flow.act(case_id, "accept", actor="op", now=NOW + timedelta(minutes=1))
    assert outbox.sweep(NOW) == 3  # duty ×2 (reported, accept) + audit (accept); floods is for flooding only
    assert outbox.sweep(NOW) == 0  # swept once

    receiver.fail_next = 1
    assert outbox.deliver(NOW) == 2  # the first delivery met a 503 and waits for its retry
    assert outbox.deliver(NOW) == 0  # not due yet
    assert outbox.deliver(NOW + timedelta(seconds=11)) == 1
    outbox.close()
    keys = sorted(key for key, _ in receiver.received)
    assert len(keys) == len(set(keys)) == 3
    formats = {key.split(":")[0]: body for key, body in receiver.received}
    assert (
        formats["duty"]["msgtype"] == "markdown" and "消防通道占用" in formats["duty"]["markdown"]["content"]
    )
    assert formats["audit"]["case_id"] == case_id and formats["audit"]["action"] == "accept"
