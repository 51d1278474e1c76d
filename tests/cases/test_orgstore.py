"""The organisation as it stands now (config + changes stored in the database), on SQLite and PostgreSQL:
what escalation and call-ups use, and how soon another process sees a change."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from cases.actions import CaseFlow, Report
from cases.models import PersonOverride, SupervisionOrder
from cases.organisation import Department, Person, load_organisation
from cases.orgstore import OrganisationConflict, OrganisationError, OrganisationStore, UnknownPerson
from cases.policy import CasePolicy
from cases.sla import SlaMonitor
from tests.alerts.scenario import CONFIG

CST = ZoneInfo("Asia/Shanghai")
MONDAY = datetime(2026, 10, 12, 9, 0, tzinfo=CST)
GRIDS = {"g-north", "g-middle", "g-south"}


def test_a_new_town_leader_receives_the_escalated_supervision_order(db: Engine) -> None:
    policy = CasePolicy.load(CONFIG, db)
    assert policy.store is not None
    store = policy.store
    store.put_person(Person(username="xu.fang", name="徐芳", role="town_operator", unit="yuehe"), "admin")
    store.put_person(Person(username="chen.jie", name="陈杰", role="town_operator", unit="yuehe"), "admin")
    store.put_person(
        Person(username="xu.fang", name="徐芳", role="town_operator", unit="yuehe", leader=True), "admin"
    )
    assert policy.organisation.leader_of("yuehe") == "xu.fang"
    assert policy.configured.leader_of("yuehe") == "chen.jie"  # the config itself is untouched

    flow, monitor = CaseFlow(db, policy), SlaMonitor(db, policy)
    case_id, _ = flow.report(
        Report("zhuganxiang", "g-north", "fire_lane_blocked", "占用", "3号楼"), actor="r", now=MONDAY
    )
    monitor.scan(MONDAY + timedelta(minutes=31))  # accept overdue: level 1 to the town
    flow.act(case_id, "accept", actor="op", now=MONDAY + timedelta(minutes=40))
    flow.act(case_id, "verify", actor="op", now=MONDAY + timedelta(minutes=41))
    flow.act(case_id, "assign", actor="op", params={"assignee": "li.na"}, now=MONDAY + timedelta(minutes=42))
    monitor.scan(MONDAY + timedelta(days=2))  # sign overdue: level 2 to the town's leader, as it stands now
    with Session(db) as session:
        orders = [(o.level, o.addressed_to) for o in session.scalars(select(SupervisionOrder))]
    assert orders == [(1, "yuehe"), (2, "xu.fang")]


def test_a_department_head_leads_it_and_changes_are_validated_as_a_whole(db: Engine) -> None:
    policy = CasePolicy.load(CONFIG, db)
    assert policy.store is not None
    store = policy.store
    traffic = Department(id="traffic", name="区交通运输局", categories=["fire_lane_blocked"])
    with pytest.raises(OrganisationError, match="unknown categories potholes"):
        store.put_department(traffic.model_copy(update={"categories": ["potholes"]}), "a", policy.categories)
    store.put_department(traffic, "admin", policy.categories)
    handler = Person(username="ma.chao", name="马超", role="department_handler", unit="traffic")
    with pytest.raises(OrganisationError, match="unknown grid 'g-east'"):
        store.put_person(handler.model_copy(update={"role": "grid_worker", "unit": "g-east"}), "a", GRIDS)
    assert store.put_person(handler, "admin", GRIDS) is True
    assert store.put_person(handler, "admin", GRIDS) is False  # replaced, not created
    store.put_department(traffic.model_copy(update={"head": "ma.chao"}), "admin", policy.categories)
    assert policy.organisation.leader_of("traffic") == "ma.chao"

    with pytest.raises(OrganisationConflict, match=r"head 'ma\.chao' is not among its people"):
        store.deactivate_person("ma.chao", "admin")
    with pytest.raises(OrganisationConflict, match="roster of g-north"):
        store.deactivate_person("li.na", "admin")
    with pytest.raises(UnknownPerson):
        store.deactivate_person("nobody", "admin")
    # zhou.qiang is g-middle's backup: held by the roster too.
    with pytest.raises(OrganisationConflict):
        store.deactivate_person("zhou.qiang", "admin")
    store.deactivate_person("wang.wei", "admin")
    assert policy.organisation.person("wang.wei") is None
    with Session(db) as session:
        row = session.get(PersonOverride, "wang.wei")
        assert row is not None and (row.active, row.updated_by) == (False, "admin")


def test_another_process_sees_a_change_within_the_ttl(db: Engine) -> None:
    configured = load_organisation(CONFIG)
    now = [0.0]
    writer = OrganisationStore(db, configured)
    reader = OrganisationStore(db, configured, ttl=timedelta(seconds=5), clock=lambda: now[0])
    assert reader.current().person("xu.fang") is None
    writer.put_person(Person(username="xu.fang", name="徐芳", role="town_operator", unit="yuehe"), "admin")
    assert writer.current().person("xu.fang") is not None  # the writer: at once
    now[0] = 4.0
    assert reader.current().person("xu.fang") is None  # still cached
    now[0] = 5.5
    assert reader.current().person("xu.fang") is not None


def test_stored_changes_that_no_longer_fit_the_config_fall_back_to_it(
    db: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    configured = load_organisation(CONFIG)
    store = OrganisationStore(db, configured)
    store.put_person(Person(username="xu.fang", name="徐芳", role="town_operator", unit="yuehe"), "admin")
    # As if the town had been renamed in config/organisation.yaml after the change was stored.
    with Session(db) as session, session.begin():
        row = session.get(PersonOverride, "xu.fang")
        assert row is not None
        row.unit = "old-town"
    store.invalidate()
    assert store.current() == configured
    assert "no longer fit config/organisation.yaml" in caplog.text
