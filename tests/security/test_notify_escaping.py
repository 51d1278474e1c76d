"""A group chat is read by everyone in it: what a resident typed cannot format, link or @-mention there,
and neither their words nor their phone number reach it. The message still says which case, where, by
when — and still pings exactly the people it should."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from cases.actions import CaseFlow, Report
from cases.notify import Channel, Outbox, OutboxRow
from cases.organisation import Person
from cases.policy import CasePolicy
from tests.platform import REPO

NOW = datetime(2026, 10, 12, 9, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
RESIDENT_PHONE = "13912345678"
HOSTILE_LOCATION = "**3号楼** [点我](http://evil.example) <@all>"
HOSTILE_DESCRIPTION = f"@all 请速来 call me {RESIDENT_PHONE} <font color=red>急</font> `code` # 标题"
# What must not survive into a chat message: formatting, links, mentions, the resident's words and phone.
FORBIDDEN = ("**", "[", "](", "<@", "<font", "@all", "http://evil", "`", "请速来", "call me", RESIDENT_PHONE)
OPERATOR_PHONE = "13900000009"


def chat_messages(db: Engine) -> dict[str, dict[str, Any]]:
    policy = CasePolicy.load(REPO / "config", db)
    assert policy.store is not None
    # Names come from the organisation store, which operators edit: escaped too.
    policy.store.put_person(
        Person(
            username="xu.fang",
            name="徐芳 **[@all](http://x)**",
            role="town_operator",
            unit="yuehe",
            phone=OPERATOR_PHONE,
        ),
        author="admin",
    )
    channels = [
        Channel(id="wecom-md", kind="wecom", url="http://127.0.0.1:9/x", actions=["reported"]),
        Channel(id="wecom-at", kind="wecom", url="http://127.0.0.1:9/x", roles=["town_operator"]),
        Channel(
            id="dingtalk",
            kind="dingtalk",
            url="http://127.0.0.1:9/x",
            roles=["town_operator"],
            console_url="https://yiwang.example.org/",
        ),
    ]
    outbox = Outbox(
        db,
        channels,
        subscriptions={"town_operator": ["reported"]},
        organisation=lambda: policy.organisation,
        categories=policy.categories,
    )
    report = Report(
        "zhuganxiang", "g-north", "fire_lane_blocked", HOSTILE_DESCRIPTION, HOSTILE_LOCATION, RESIDENT_PHONE
    )
    case_id, _ = CaseFlow(db, policy).report(report, actor="resident", now=NOW)
    assert case_id == 1
    assert outbox.sweep(NOW) == 3
    outbox.close()
    with Session(db) as session:
        return {row.channel: row.payload for row in session.scalars(select(OutboxRow))}


def test_a_hostile_report_cannot_format_link_or_ping_in_a_group_chat(db: Engine) -> None:
    messages = chat_messages(db)
    texts = {
        "wecom-md": messages["wecom-md"]["markdown"]["content"],
        "wecom-at": messages["wecom-at"]["text"]["content"],
        "dingtalk": messages["dingtalk"]["markdown"]["title"]
        + "\n"
        + messages["dingtalk"]["markdown"]["text"],
    }
    for channel, text in texts.items():
        for forbidden in FORBIDDEN:
            assert forbidden not in text, f"{channel}: {forbidden!r} in {text!r}"
        # What the group needs: the case, its category, its grid and its deadline.
        assert "#1" in text and "消防通道占用" in text and "g-north" in text and "期限 Deadline" in text
    assert "https://yiwang.example.org/console/cases/1" in texts["dingtalk"]
    # The recipient's name is shown inert; only the configured phone is @-mentioned, by the robot's API.
    assert "徐芳 ＊＊［＠all］（http：//x）＊＊" in texts["wecom-at"]
    assert messages["wecom-at"]["text"]["mentioned_mobile_list"] == [OPERATOR_PHONE]
    assert messages["dingtalk"]["at"] == {"atMobiles": [OPERATOR_PHONE], "isAtAll": False}
    assert "@all" not in str(messages["wecom-at"]) and "isAtAll': True" not in str(messages["dingtalk"])
