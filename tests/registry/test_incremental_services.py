"""The alert engine and ingest's fast decoder take a registry change community by community: the
changed community re-indexed, every other one's running state left as it was (SQLite and PostgreSQL)."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from alerts.engine import AlertEngine
from alerts.rules import load_rules
from cases.policy import CasePolicy
from contract import ContractError, Reading
from contract.catalog import Catalog
from ingest.fastpath import FastDecoder
from ingest.validate import decode_telemetry
from registry import editing
from registry.importer import import_communities
from registry.live import LiveCatalog
from tests.registry.conftest import CONFIG
from tests.registry.test_incremental_reload import TOWN, TYPES, live_on, two_communities

RULES = load_rules(CONFIG, CasePolicy.load(CONFIG).categories)
T0 = 1_780_000_000_000


@pytest.fixture
def live(registry_db: Engine) -> LiveCatalog:
    import_communities(registry_db, two_communities(), [TOWN], TYPES)
    return live_on(registry_db)


def change(live: LiveCatalog, community: str, device: str, fields: dict[str, object]) -> Catalog:
    with Session(live._db) as session, session.begin():
        editing.change_device(session, community, device, fields, TYPES)
    assert live.refresh() is True
    return live.catalog


def level(cm: float, ts: int = T0) -> Reading:
    return Reading.model_validate({"device": "wl-01", "ts": ts, "values": {"level_cm": cm}})


def index_of(engine: AlertEngine) -> tuple[object, ...]:
    """What the engine's index says, comparable between two engines."""
    return (
        [(d.community.id, d.device.id, d.device.grid, d.device.state) for d in engine._devices],
        engine._rules_by_device,
        sorted(engine._recent),
        sorted((s.matchers.community, s.matchers.device, s.comment) for s in engine._registry_silences),
        engine._communities,
    )


def test_the_engine_reindexes_only_the_changed_community(live: LiveCatalog) -> None:
    clock = [T0]
    engine = AlertEngine(RULES, live.catalog, clock=lambda: clock[0])
    [fired] = engine.on_reading("beta", "bgw-01", level(70))
    [firing] = engine.on_reading("zhuganxiang", "gw-01", level(80))
    assert (fired.kind, firing.kind) == ("firing", "firing")
    beta_ring = engine._recent[("beta", "wl-01", "level_cm")]
    beta_rules = engine._rules_by_device[("beta", "wl-01")]
    mine_ring = engine._recent[("zhuganxiang", "wl-01", "level_cm")]
    beta_series = engine._series[fired.fingerprint]
    beta_subject = beta_series.subject

    change(live, "zhuganxiang", "th-0101", {"state": "retired"})
    change(live, "zhuganxiang", "th-0102", {"state": "maintenance"})
    catalog = change(live, "zhuganxiang", "wl-01", {"grid": "g-middle"})
    clock[0] = T0 + 5_000
    engine.use_catalog(catalog)

    # beta untouched: the same ring, rule list and alert subject objects.
    assert engine._recent[("beta", "wl-01", "level_cm")] is beta_ring
    assert engine._rules_by_device[("beta", "wl-01")] is beta_rules
    assert beta_series.subject is beta_subject
    # zhuganxiang re-indexed, its running state kept: the window and the last-seen time.
    assert engine._recent[("zhuganxiang", "wl-01", "level_cm")] is mine_ring
    assert engine._last_seen[("zhuganxiang", "wl-01")] == T0
    assert ("zhuganxiang", "th-0101") not in engine._rules_by_device  # retired: gone for the rules
    # The same index a fresh engine makes of that catalog.
    assert index_of(engine) == index_of(AlertEngine(RULES, catalog, clock=lambda: clock[0]))
    # The zhuganxiang alert followed its device to g-middle; beta's stayed in g-north.
    [resolved] = engine.on_reading("zhuganxiang", "gw-01", level(10, T0 + 6_000))
    assert (resolved.kind, resolved.subject.grid) == ("resolved", "g-middle")
    assert beta_series.alert.status == "firing" and beta_series.subject.grid == "g-north"
    assert (
        engine.on_reading(
            "zhuganxiang",
            "gw-01",
            Reading.model_validate(
                {"device": "th-0101", "ts": T0, "values": {"temperature": 99.0, "humidity": 50.0}}
            ),
        )
        == []
    )
    # th-0102 in maintenance: its alerts are inhibited, saying why; beta's th-0102 is not.
    assert [
        s.matchers.device for s in engine._registry_silences if s.matchers.community == "zhuganxiang"
    ] == ["th-0102"]
    assert not any(s.matchers.community == "beta" for s in engine._registry_silences)


def test_a_catalog_skipped_between_ticks_is_still_applied_whole(live: LiveCatalog) -> None:
    """Alerts applies only the newest catalog at its tick: the diff is against what it indexed."""
    engine = AlertEngine(RULES, live.catalog)
    change(live, "zhuganxiang", "th-0101", {"state": "retired"})
    newest = change(live, "beta", "th-0101", {"state": "maintenance"})
    engine.use_catalog(newest)
    assert index_of(engine) == index_of(AlertEngine(RULES, newest))


def telemetry(device: str, **values: float) -> bytes:
    return json.dumps({"seq": 1, "readings": [{"device": device, "ts": T0, "values": values}]}).encode()


def test_ingest_keeps_the_device_cache_of_unchanged_communities(live: LiveCatalog) -> None:
    fast = FastDecoder(live.catalog, lines=True)
    for topic in ("yiwang/v1/zhuganxiang/gw-01/telemetry", "yiwang/v1/beta/bgw-01/telemetry"):
        assert fast.decode(topic, telemetry("th-0101", temperature=21.5, humidity=40.0)) is not None
    beta_cache = fast._devices[("beta", "bgw-01")]
    catalog = change(live, "zhuganxiang", "th-0101", {"state": "retired"})
    fresh = fast.with_catalog(catalog)
    assert (
        fresh._devices == {("beta", "bgw-01"): beta_cache}
        and fresh._devices[("beta", "bgw-01")] is beta_cache
    )
    assert fresh._profiles == fast._profiles  # same profile objects: their checks are kept
    # The retired device goes to the slow path, which names the refusal; beta's namesake still passes.
    retired = telemetry("th-0101", temperature=21.5, humidity=40.0)
    assert fresh.decode("yiwang/v1/zhuganxiang/gw-01/telemetry", retired) is None
    with pytest.raises(ContractError, match="retired device 'th-0101'"):
        decode_telemetry("yiwang/v1/zhuganxiang/gw-01/telemetry", retired, catalog)
    assert fresh.decode("yiwang/v1/beta/bgw-01/telemetry", retired) is not None
