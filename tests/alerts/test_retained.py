"""A retained reading or event is never judged: the broker replays it to every subscriber that joins,
so the same flood would be raised again at each restart of the alert service."""

from __future__ import annotations

import json
import threading
import time
from datetime import timedelta

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from alerts.intake import CaseBook
from alerts.rules import load_rules
from alerts.service import AlertProcessor
from alerts.silences import SilenceStore
from cases.models import Case
from cases.policy import CasePolicy
from common.consumer import Inbound
from tests.alerts.scenario import CONFIG, Scenario

FLOOD = json.dumps(
    {"seq": 1, "readings": [{"device": "wl-01", "ts": int(time.time() * 1000), "values": {"level_cm": 80}}]}
).encode()
TOPIC = "yiwang/v1/zhuganxiang/gw-01/telemetry"


def processor(db: Engine) -> AlertProcessor:
    policy = CasePolicy.load(CONFIG)
    engine = Scenario(load_rules(CONFIG, policy.categories)).engine
    book = CaseBook(db, policy, timedelta(minutes=1))
    return AlertProcessor(engine, book, SilenceStore(db), threading.Event(), partition="zhuganxiang")


def cases(db: Engine) -> int:
    with Session(db) as session:
        return session.scalar(select(func.count()).select_from(Case)) or 0


def test_a_retained_flood_opens_no_case_and_a_live_one_does(db: Engine) -> None:
    alerts = processor(db)
    assert alerts.process([Inbound(1, 1, TOPIC, FLOOD, retained=True)])
    assert alerts.counters.ignored == 1 and cases(db) == 0
    assert alerts.process([Inbound(2, 1, TOPIC, FLOOD)])
    assert cases(db) == 1
