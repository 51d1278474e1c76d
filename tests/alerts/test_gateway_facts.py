"""A flaky link or a restart never silences a flood: a gateway is offline only in fact.

The engine with the shipped rules (config/rules) on a manual clock, and the case book on SQLite and
PostgreSQL: what each gateway state, reading and restart means for alerts and cases.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from alerts.engine import Transition
from alerts.intake import CaseBook
from alerts.models import Alert
from alerts.rules import load_rules
from alerts.service import reconcile
from cases.models import Case, CaseEvent, Evidence
from cases.policy import CasePolicy
from contract import Reading
from tests.alerts.scenario import CONFIG, T0, Scenario

GW01 = "gateway-offline|zhuganxiang|gw-01"
FLOOD = "flooding-water-level|zhuganxiang|wl-01"
NOW = datetime.fromtimestamp(T0 / 1000, UTC)


def shipped() -> Scenario:
    return Scenario(load_rules(CONFIG, CasePolicy.load(CONFIG).categories))


def book(db: Engine) -> CaseBook:
    return CaseBook(db, CasePolicy.load(CONFIG), join_window=timedelta(hours=1))


def at(seconds: float) -> datetime:
    return NOW + timedelta(seconds=seconds)


def about(transitions: list[Transition], *keys: str) -> list[tuple[str, str, str, bool]]:
    """(rule, subject, kind, opens a case) of the transitions about the given subjects."""
    return [(t.rule.id, t.subject.key, t.kind, t.opens_case) for t in transitions if t.subject.key in keys]


def flap(scenario: Scenario, gateway: str, times: int, start: float = 0) -> list[Transition]:
    """Last will, then back online, ``times`` over, 10 s apart: a flaky 5G link."""
    out: list[Transition] = []
    for i in range(times):
        out += scenario.state(start + 20 * i, gateway, online=False)
        out += scenario.state(start + 20 * i + 10, gateway, online=True)
    return out


def firing_about(scenario: Scenario, gateway: str) -> set[str]:
    return {fp for fp in scenario.engine.firing if fp.endswith(f"|{gateway}")}


# -- 1. inhibition follows the facts ---------------------------------------------------------------


def test_a_flapping_gateway_resolves_whenever_it_is_online() -> None:
    scenario = shipped()
    out = flap(scenario, "gw-01", 4)
    gateway = [t.kind for t in out if t.fingerprint == GW01]
    # Damped, not held: marked flapping once, yet resolved each time the gateway is back.
    assert gateway == ["firing", "resolved"] * 2 + ["firing", "flapping", "resolved"] + ["firing", "resolved"]
    assert scenario.engine.status(GW01) == "inactive"
    assert firing_about(scenario, "gw-01") == set()
    assert not scenario.engine.gateway_down("zhuganxiang", "gw-01")


def test_a_reading_ends_the_inhibition_at_once_and_resolves_the_gateway_alert() -> None:
    scenario = shipped()
    assert about(scenario.state(0, "gw-01", online=False), "gw-01") == [
        ("gateway-offline", "gw-01", "firing", True)
    ]
    # No online state arrives (lost, or still on its way): the reading itself proves the gateway online.
    out = scenario.reading(5, "wl-01", level_cm=72)
    assert about(out, "gw-01", "wl-01") == [
        ("gateway-offline", "gw-01", "resolved", False),
        ("flooding-water-level", "wl-01", "firing", True),
    ]
    assert scenario.engine.status(GW01) == "inactive"


def test_an_event_from_the_gateway_proves_it_online_too() -> None:
    scenario = shipped()
    scenario.state(0, "gw-01", online=False)
    scenario.event(5, "instant", device="wl-01", kind="device.unavailable", reason="timeout")
    assert scenario.engine.status(GW01) == "inactive"
    assert not scenario.engine.gateway_down("zhuganxiang", "gw-01")


def test_a_flapping_gateway_never_keeps_a_flood_from_its_case() -> None:
    scenario = shipped()
    flap(scenario, "gw-01", 4)
    scenario.state(80, "gw-01", online=False)  # the link drops once more, and readings arrive
    out = scenario.reading(85, "wl-01", level_cm=72)
    assert ("flooding-water-level", "wl-01", "firing", True) in about(out, "wl-01")
    assert firing_about(scenario, "gw-01") == set()


def test_a_reading_measured_before_a_planned_stop_proves_nothing() -> None:
    scenario = shipped()
    scenario.reading(0, "wl-01", level_cm=10)
    scenario.state(10, "gw-01", online=False, reason="stopped")
    # A message measured before the stop and delivered late (a restarted service's queue) is history.
    scenario.at(20)
    late = Reading(device="wl-01", ts=T0 + 5_000, values={"level_cm": 10.0})
    assert scenario.engine.on_reading("zhuganxiang", "gw-01", late) == []
    assert scenario.engine.gateway_down("zhuganxiang", "gw-01")
    # A reading measured after it is proof.
    scenario.reading(30, "wl-01", level_cm=10)
    assert not scenario.engine.gateway_down("zhuganxiang", "gw-01")


def test_a_flapping_gateway_stays_in_one_case_quietly(db: Engine) -> None:
    scenario, cases = shipped(), book(db)
    for i in range(6):
        cases.apply(scenario.state(20 * i, "gw-01", online=False), now=at(20 * i))
        cases.apply(scenario.state(20 * i + 10, "gw-01", online=True), now=at(20 * i + 10))
    with Session(db) as session:
        [case] = session.scalars(select(Case)).all()
        assert case.category == "device_offline"
        # Three firings join the case until the third resolution marks the alert flapping (more than
        # 4 changes in 600 s); the three re-fires after it go on in the case without a notice.
        assert len(session.scalars(select(Evidence)).all()) == 3
        events = [e.action for e in session.scalars(select(CaseEvent).order_by(CaseEvent.id))]
        assert events.count("alert_flapping") == 1
        assert events[events.index("alert_flapping") :].count("alert_joined") == 0
        alert = session.get(Alert, GW01)
        assert alert is not None and (alert.status, alert.flapping) == ("resolved", True)


# -- 2. data alerts come back from unknown ---------------------------------------------------------


def test_a_flood_that_went_unknown_with_its_gateway_comes_back_with_evidence(db: Engine) -> None:
    scenario, cases = shipped(), book(db)
    cases.apply(scenario.reading(0, "wl-01", level_cm=72), now=at(0))  # the flood opens a case
    down = scenario.state(10, "gw-01", online=False)
    assert ("flooding-water-level", "wl-01", "unknown", False) in about(down, "wl-01")
    cases.apply(down, now=at(10))
    back = scenario.reading(100, "wl-01", level_cm=80)  # no online state: the reading is the proof
    assert ("flooding-water-level", "wl-01", "firing", True) in about(back, "wl-01")
    cases.apply(back, now=at(100))
    with Session(db) as session:
        flood_cases = session.scalars(select(Case).where(Case.category == "flooding")).all()
        assert len(flood_cases) == 1
        evidence = session.scalars(
            select(Evidence).where(Evidence.device == "wl-01").order_by(Evidence.id)
        ).all()
        assert len(evidence) == 2
        assert evidence[-1].observed == {"level_cm": 80}
        assert (evidence[-1].readings or [])[-1] == [T0 + 100_000, 80]  # the reading that came back
        assert session.get(Alert, FLOOD).status == "firing"  # type: ignore[union-attr]
    cleared = scenario.reading(110, "wl-01", level_cm=10)
    assert ("flooding-water-level", "wl-01", "resolved", False) in about(cleared, "wl-01")
    cases.apply(cleared, now=at(110))
    with Session(db) as session:
        assert session.get(Alert, FLOOD).status == "resolved"  # type: ignore[union-attr]


def test_a_flood_first_seen_while_its_gateway_seemed_offline_opens_a_case(db: Engine) -> None:
    scenario, cases = shipped(), book(db)
    cases.apply(scenario.reading(0, "wl-01", level_cm=10), now=at(0))
    cases.apply(scenario.state(10, "gw-01", online=False), now=at(10))
    cases.apply(scenario.reading(40, "wl-01", level_cm=72), now=at(40))
    with Session(db) as session:
        [flood] = session.scalars(select(Case).where(Case.category == "flooding")).all()
        [evidence] = session.scalars(select(Evidence).where(Evidence.case_id == flood.id)).all()
        assert evidence.readings == [[T0, 10], [T0 + 40_000, 72]]
        assert session.get(Alert, GW01).status == "resolved"  # type: ignore[union-attr]


# -- 3. planned stops are maintenance, a last will is an outage ------------------------------------


def test_a_planned_stop_opens_no_case_and_inhibits_its_devices(db: Engine) -> None:
    scenario, cases = shipped(), book(db)
    cases.apply(scenario.reading(0, "wl-01", level_cm=72), now=at(0))
    stopped = scenario.state(10, "gw-01", online=False, reason="stopped")
    assert [t for t in stopped if t.opens_case] == []
    assert ("flooding-water-level", "wl-01", "unknown", False) in about(stopped, "wl-01")
    assert all(t.inhibited for t in stopped if t.subject.device is not None)
    assert scenario.engine.stopped_gateways() == {("zhuganxiang", "gw-01")}
    cases.apply(stopped, now=at(10))
    # Hours of silence: its devices raise no device_offline alert of their own either.
    later = scenario.tick(3 * 3600)
    assert [t for t in later if t.subject.gateway == "gw-01" and t.opens_case] == []
    cases.apply([t for t in later if t.subject.gateway == "gw-01"], now=at(3 * 3600))  # gw-02 is silent too
    with Session(db) as session:
        assert session.scalars(select(Case.category)).all() == ["flooding"]  # no device_offline case
    # Started again: the online state ends the maintenance.
    scenario.state(3 * 3600 + 5, "gw-01", online=True)
    assert scenario.engine.stopped_gateways() == frozenset()


def test_three_restarts_in_a_row_open_no_device_offline_case(db: Engine) -> None:
    scenario, cases = shipped(), book(db)
    for run in range(3):
        start = run * 120
        for gateway in ("gw-01", "gw-02"):
            cases.apply(scenario.state(start, gateway, online=True), now=at(start))
        cases.apply(scenario.reading(start + 1, "wl-01", level_cm=10), now=at(start + 1))
        cases.apply(scenario.tick(start + 60), now=at(start + 60))
        for gateway in ("gw-01", "gw-02"):
            cases.apply(
                scenario.state(start + 100, gateway, online=False, reason="stopped"), now=at(start + 100)
            )
    with Session(db) as session:
        assert session.scalars(select(Case)).all() == []


def test_a_last_will_still_opens_a_device_offline_case(db: Engine) -> None:
    scenario, cases = shipped(), book(db)
    down = scenario.state(0, "gw-02", online=False)
    assert about(down, "gw-02") == [("gateway-offline", "gw-02", "firing", True)]
    cases.apply(down, now=at(0))
    with Session(db) as session:
        [case] = session.scalars(select(Case)).all()
        assert (case.category, case.grid) == ("device_offline", "g-middle")


# -- 4. state reconciled at start ------------------------------------------------------------------


def test_a_restart_keeps_a_planned_stop_and_forgets_no_outage() -> None:
    first = shipped()
    first.state(0, "gw-01", online=False, reason="stopped")
    first.state(0, "gw-02", online=False)
    restarted = shipped()
    restarted.engine.restore(first.engine.snapshot())
    assert restarted.engine.stopped_gateways() == {("zhuganxiang", "gw-01")}
    assert restarted.engine.gateway_down("zhuganxiang", "gw-02")
    assert restarted.engine.status("gateway-offline|zhuganxiang|gw-02") == "firing"


def test_a_restarted_engine_resolves_the_gateway_alert_on_the_first_sign_of_life(db: Engine) -> None:
    scenario, cases = shipped(), book(db)
    for i in range(3):  # flapping when the service is killed, before any checkpoint
        cases.apply(scenario.state(20 * i, "gw-01", online=False), now=at(20 * i))
        cases.apply(scenario.state(20 * i + 10, "gw-01", online=True), now=at(20 * i + 10))
    cases.apply(scenario.state(60, "gw-01", online=False), now=at(60))
    restarted = shipped()
    with Session(db) as session:
        restarted.engine.restore(reconcile(None, session.scalars(select(Alert)).all()))
    assert restarted.engine.status(GW01) == "firing"
    # The retained state was lost (a broker without persistence); the gateway's readings arrive.
    out = restarted.reading(90, "wl-01", level_cm=72)
    assert about(out, "gw-01", "wl-01") == [
        ("gateway-offline", "gw-01", "resolved", False),
        ("flooding-water-level", "wl-01", "firing", True),
    ]
    assert firing_about(restarted, "gw-01") == set()
