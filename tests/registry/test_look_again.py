"""A device registered a moment ago is judged and stored from its first reading: alerts and ingest look
at the registry again when they meet a device they do not know, at most every 0.2 s, instead of waiting
for their next poll (SQLite and PostgreSQL; the live catalog's poller is never started here)."""

from __future__ import annotations

import json
import threading
import time
from datetime import timedelta

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from alerts.engine import AlertEngine
from alerts.intake import CaseBook
from alerts.rules import load_rules
from alerts.service import AlertProcessor
from alerts.silences import SilenceStore
from cases.policy import CasePolicy
from common.consumer import Inbound
from registry import editing
from registry.importer import import_communities
from registry.live import LOOK_AGAIN_S, LiveCatalog
from tests.registry.conftest import CONFIG
from tests.registry.test_incremental_reload import TOWN, TYPES, live_on, two_communities

POLICY = CasePolicy.load(CONFIG)
RULES = load_rules(CONFIG, POLICY.categories)
TOPIC = "yiwang/v1/zhuganxiang/gw-02/telemetry"


@pytest.fixture
def live(registry_db: Engine) -> LiveCatalog:
    import_communities(registry_db, two_communities(), [TOWN], TYPES)
    return live_on(registry_db, poll_s=3600)


def register(live: LiveCatalog, device: str) -> None:
    with Session(live._db) as session, session.begin():
        editing.add_device(
            session, "zhuganxiang", "gw-02", {"id": device, "type": "water.level@1", "grid": "g-south"}, TYPES
        )


def flood(device: str) -> Inbound:
    reading = {"device": device, "ts": int(time.time() * 1000), "values": {"level_cm": 90}}
    return Inbound(1, 1, TOPIC, json.dumps({"seq": 1, "readings": [reading]}).encode())


def test_alerts_judge_the_first_reading_of_a_device_registered_a_moment_ago(
    live: LiveCatalog, registry_db: Engine
) -> None:
    engine = AlertEngine(RULES, live.catalog)
    book = CaseBook(registry_db, POLICY, timedelta(minutes=1))
    alerts = AlertProcessor(
        engine, book, SilenceStore(registry_db), threading.Event(), partition="zhuganxiang", live=live
    )
    time.sleep(LOOK_AGAIN_S)
    register(live, "wl-90")

    [fired] = alerts.transitions_of(flood("wl-90"))

    assert (fired.kind, fired.subject.grid, fired.subject.device.id) == ("firing", "g-south", "wl-90")
    assert not engine.is_unknown("zhuganxiang", "gw-02", "wl-90")


def test_a_look_again_is_taken_at_most_every_0_2_s(live: LiveCatalog) -> None:
    time.sleep(LOOK_AGAIN_S)
    assert live.look_again() is False  # nothing changed
    register(live, "wl-91")
    assert live.look_again() is False  # too soon after the last look: the next poll or look finds it
    assert live.catalog.device("zhuganxiang", "gw-02", "wl-91") is None
    time.sleep(LOOK_AGAIN_S)
    assert live.look_again() is True
    assert live.catalog.device("zhuganxiang", "gw-02", "wl-91") is not None
