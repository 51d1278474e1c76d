"""The engine follows a registry change while running: state kept, moved devices followed, devices in
maintenance judged without a case, retired ones ignored."""

from __future__ import annotations

from contract.catalog import Catalog, Community, DeviceState
from tests.alerts.scenario import Scenario, catalog, kinds, rule

FLOOD = rule(
    threshold={"field": "level_cm", "op": ">=", "value": 50, "clear": 40}, scope={"type": "water.level@1"}
)
PENDING = rule(
    threshold={"field": "level_cm", "op": ">=", "value": 50},
    scope={"type": "water.level@1"},
    for_s=30,
)


def _changed(device: str, **change: object) -> Catalog:
    """The demo catalog with one device changed (as the registry would hand it over)."""
    original = catalog()
    communities = []
    for community in original.communities.values():
        gateways = [
            g.model_copy(
                update={"devices": [d.model_copy(update=change) if d.id == device else d for d in g.devices]}
            )
            for g in community.gateways
        ]
        communities.append(Community.model_construct(**{**dict(community), "gateways": gateways}))
    return Catalog(communities, list(original.profiles.values()))


def test_a_pending_timer_and_the_evidence_window_survive_a_reload() -> None:
    scenario = Scenario([PENDING])
    assert kinds(scenario.reading(0, "wl-01", level_cm=70)) == ["pending"]
    scenario.reading(10, "wl-01", level_cm=71)
    scenario.engine.use_catalog(_changed("wl-02", location="新位置"))
    [fired] = scenario.tick(31)
    assert fired.kind == "firing"
    assert [v for _, v in fired.readings] == [70, 71]  # the window read before the reload


def test_an_alert_follows_its_device_to_its_new_grid() -> None:
    scenario = Scenario([FLOOD])
    [fired] = scenario.reading(0, "wl-01", level_cm=70)
    assert fired.subject.grid == "g-north"
    scenario.engine.use_catalog(_changed("wl-01", grid="g-south", building=None))
    [resolved] = scenario.reading(5, "wl-01", level_cm=10)
    assert (resolved.kind, resolved.subject.grid) == ("resolved", "g-south")


def test_a_device_in_maintenance_is_judged_but_inhibited() -> None:
    scenario = Scenario([FLOOD])
    scenario.engine.use_catalog(_changed("wl-01", state=DeviceState.MAINTENANCE))
    [fired] = scenario.reading(0, "wl-01", level_cm=70)
    assert fired.kind == "firing" and fired.inhibited


def test_a_retired_device_is_no_longer_judged() -> None:
    scenario = Scenario([FLOOD])
    scenario.engine.use_catalog(_changed("wl-01", state=DeviceState.RETIRED))
    assert scenario.reading(0, "wl-01", level_cm=70) == []
