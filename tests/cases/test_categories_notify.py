"""Group chats name a case's category by its own names, also for a category created while the case
service runs (#28): the outbox reads the policy's categories as they stand now, not a copy from its start.
A real HTTP receiver on loopback; SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Engine

from cases.actions import CaseFlow, Report
from cases.categories import Category
from cases.notify import Channel, Outbox
from cases.policy import CasePolicy
from tests.alerts.scenario import CONFIG
from tests.cases.webhook import Receiver

CO2 = Category(code="air_co2_high", name_zh="二氧化碳超标", name_en="CO₂ too high", sla_hours=12)


def test_a_chat_message_names_a_category_created_after_the_outbox_started(
    db: Engine, receiver: Receiver
) -> None:
    policy = CasePolicy.load(CONFIG, db)  # the case service's, built at its start
    url = f"http://127.0.0.1:{receiver.server_port}/hook"
    outbox = Outbox(
        db,
        [Channel(id="duty", kind="wecom", url=url, actions=["reported"])],
        categories=lambda: policy.categories,
    )
    assert policy.category_store is not None
    departments = {d.id: list(d.categories) for d in policy.organisation.departments}
    policy.category_store.create(CO2, department="housing", departments=departments, author="op")
    now = datetime.now(UTC)
    CaseFlow(db, policy).report(
        Report("zhuganxiang", "g-north", "air_co2_high", "5000 ppm", "3号楼"), actor="r", now=now
    )
    assert outbox.sweep(now) == 1
    assert outbox.deliver(now) == 1
    outbox.close()
    [(_, body)] = receiver.received
    text = body["markdown"]["content"]
    assert "二氧化碳超标 CO₂ too high" in text and "air_co2_high" not in text
