"""Notifications per role: each event reaches the people it concerns whose role subscribes to it,
@-mentioned by phone, through the same outbox (one row per channel and event, retried), on SQLite and
PostgreSQL, against a real HTTP receiver on loopback."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine

from cases.actions import CaseFlow, Report
from cases.notify import Channel, Outbox
from cases.organisation import Person
from cases.policy import CasePolicy
from cases.sla import SlaMonitor
from contract.errors import ContractError
from tests.alerts.scenario import CONFIG
from tests.cases.webhook import Receiver

NOW = datetime(2026, 10, 12, 9, 0, tzinfo=ZoneInfo("Asia/Shanghai"))  # a Monday, office hours
PHONES = {"li.na": "13900000001", "chen.jie": "13900000002", "liu.yang": "13900000003"}


def with_phones(policy: CasePolicy) -> None:
    """Phones are added the way an operator would: through the organisation's store."""
    assert policy.store is not None
    for username, phone in PHONES.items():
        person = policy.organisation.person(username)
        assert person is not None
        policy.store.put_person(person.model_copy(update={"phone": phone}), author="admin")


def test_each_event_reaches_the_concerned_roles_that_subscribe_to_it(db: Engine, receiver: Receiver) -> None:
    policy = CasePolicy.load(CONFIG, db)
    with_phones(policy)
    url = f"http://127.0.0.1:{receiver.server_port}/hook"
    channels = [
        Channel(id="town", kind="wecom", url=url, roles=["grid_worker", "town_operator"]),
        Channel(id="district", kind="dingtalk", url=url, roles=["department_handler"]),
        Channel(id="feed", kind="webhook", url=url, actions=["reported"]),  # everything reported, as before
        Channel(
            id="people", kind="webhook", url=url, roles=["grid_worker", "town_operator", "department_handler"]
        ),
    ]
    subscriptions: dict[Any, list[str]] = {
        "grid_worker": ["assign", "supervise"],
        "town_operator": ["reported"],
        "department_handler": ["call_up"],
    }
    outbox = Outbox(db, channels, subscriptions=subscriptions, organisation=lambda: policy.organisation)
    flow = CaseFlow(db, policy)
    case_id, _ = flow.report(
        Report("zhuganxiang", "g-north", "fire_lane_blocked", "占用", "3号楼"), actor="r", now=NOW
    )
    for minute, (action, params) in enumerate(
        [("accept", {}), ("verify", {}), ("assign", {"assignee": "li.na"})], start=1
    ):
        flow.act(case_id, action, actor="wang.wei", params=params, now=NOW + timedelta(minutes=minute))
    assert SlaMonitor(db, policy).scan(NOW + timedelta(days=1)) == 1  # not signed for: 督办 to li.na
    flow.act(case_id, "sign", actor="li.na", now=NOW + timedelta(days=1, minutes=1))
    call_up = {"department": "water", "approved_by": "chen.jie"}
    flow.act(case_id, "call_up", actor="wang.wei", params=call_up, now=NOW + timedelta(days=1, minutes=2))

    # reported: town ×2 people + feed + people; assign and supervise: li.na on town and people;
    # call_up: liu.yang on district and people. accept, verify and sign concern no subscriber.
    assert outbox.sweep(NOW) == 9
    receiver.fail_next = 1
    assert outbox.deliver(NOW) == 8
    assert outbox.deliver(NOW + timedelta(seconds=11)) == 1  # the failed one, retried as it was
    outbox.close()
    received = dict(receiver.received)
    assert len(received) == len(receiver.received) == 9  # one per channel and event

    def sent(channel: str, action: str) -> dict[str, Any]:
        [body] = [
            b
            for key, b in receiver.received
            if key.startswith(f"{channel}:") and (b.get("action") == action or f"】{action} ·" in str(b))
        ]
        return body

    reported = sent("town", "reported")
    assert reported["msgtype"] == "text"
    assert reported["text"]["mentioned_mobile_list"] == [PHONES["chen.jie"]]  # wang.wei has no phone
    assert "王伟" in reported["text"]["content"] and "陈杰" in reported["text"]["content"]
    assert "李娜" not in reported["text"]["content"]  # grid workers do not subscribe to reported
    assert sent("feed", "reported")["action"] == "reported" and "recipients" not in sent("feed", "reported")
    assert sent("town", "assign")["text"]["mentioned_mobile_list"] == [PHONES["li.na"]]
    assert "赵磊" not in sent("town", "assign")["text"]["content"]  # the grid's other worker: not assigned
    assert sent("town", "supervise")["text"]["mentioned_mobile_list"] == [PHONES["li.na"]]
    called = sent("district", "call_up")
    assert called["at"] == {"atMobiles": [PHONES["liu.yang"]], "isAtAll": False}
    assert f"@{PHONES['liu.yang']}" in called["markdown"]["text"]
    people = sent("people", "call_up")
    assert people["recipients"] == [{"username": "liu.yang", "name": "刘洋", "role": "department_handler"}]
    assert not any(
        phone in str(body)
        for phone in PHONES.values()
        for key, body in receiver.received
        if key.startswith(("people:", "feed:"))
    )


def test_a_person_added_through_the_api_store_is_told_at_once(db: Engine, receiver: Receiver) -> None:
    policy = CasePolicy.load(CONFIG, db)
    assert policy.store is not None
    policy.store.put_person(
        Person(username="xu.fang", name="徐芳", role="town_operator", unit="yuehe", phone="13900000009"), "a"
    )
    url = f"http://127.0.0.1:{receiver.server_port}/hook"
    channel = Channel(id="town", kind="dingtalk", url=url, roles=["town_operator"])
    outbox = Outbox(
        db, [channel], subscriptions={"town_operator": ["reported"]}, organisation=lambda: policy.organisation
    )
    CaseFlow(db, policy).report(Report("zhuganxiang", "g-south", "flooding", "积水", "x"), actor="r", now=NOW)
    assert outbox.sweep(NOW) == 1 and outbox.deliver(NOW) == 1
    outbox.close()
    [(_, body)] = receiver.received
    assert body["at"]["atMobiles"] == ["13900000009"] and "徐芳" in body["markdown"]["text"]


def test_a_channel_for_a_role_without_subscription_is_a_config_error(db: Engine, tmp_path: Path) -> None:
    policy = CasePolicy.load(CONFIG)
    (tmp_path / "notifications.yaml").write_text(
        "channels:\n  - {id: c, kind: webhook, url: 'http://x', roles: [grid_worker]}\n"
        "roles: {town_operator: [reported]}\n"
    )
    with pytest.raises(ContractError, match=r"channel c: roles \['grid_worker'\] have no subscription"):
        Outbox.from_config(db, tmp_path, policy)
    (tmp_path / "notifications.yaml").write_text("roles: {mayor: [reported]}\n")
    with pytest.raises(ContractError, match="mayor"):
        Outbox.from_config(db, tmp_path, policy)
    (tmp_path / "notifications.yaml").write_text("channels: []\nroles: {grid_worker: [assign]}\n")
    assert Outbox.from_config(db, tmp_path, policy) is None
