"""Run scenarios, each on a fresh stack, and report what was sent, stored, lost and counted."""

from __future__ import annotations

import signal
import time
from collections.abc import Sequence
from pathlib import Path
from types import FrameType
from typing import Any

from contract.catalog import Catalog, load_catalog
from yiwang.chaos.accounting import Tally, wind_down
from yiwang.chaos.alarm_scenarios import ALARM_SCENARIOS, AlarmRun, seed_for_run
from yiwang.chaos.alarm_timing import percentiles
from yiwang.chaos.harness import COMMUNITY, running_harness
from yiwang.chaos.scenarios import SCENARIOS, WARMUP_S, Scenario
from yiwang.chaos.upgrade_scenarios import upgrade_report

COUNTS = (
    "sent",
    "stored",
    "lost",
    "duplicates_counted",
    "cases_expected",
    "cases_opened",
    "dead_lettered",
    "poison_sent",
    "poison_dead_lettered",
    "duplicate_cases",
    "mismatched",
    "lost_unsynced",
    "unsynced_ticks",
    "unsynced_bound_ticks",
)


def flood_devices(catalog: Catalog) -> dict[str, tuple[str, str]]:
    """Per gateway, the water-level sensor that floods: (device, grid). The last one of each gateway,
    so the two floods land in different grids (g-north, g-south) and open two cases."""
    out: dict[str, tuple[str, str]] = {}
    for gw in catalog.communities[COMMUNITY].gateways:
        wl = [d for d in gw.devices if catalog.profiles[d.type].measurement == "water.level"]
        if wl:
            out[gw.id] = (wl[-1].id, wl[-1].grid)
    return out


def run_once(scenario: Scenario, config_dir: Path, scale: float) -> Tally:
    catalog = load_catalog(config_dir)
    floods = flood_devices(catalog)
    expected = {(grid, "flooding") for _, grid in floods.values()} | set(scenario.extra_cases)
    with running_harness(
        config_dir,
        skew_ms=scenario.skew_ms,
        events=list(scenario.events),
        floods={gw: dev for gw, (dev, _) in floods.items()},
        flood_at_s=WARMUP_S - 2,
        own_links=scenario.own_links,
    ) as h:
        time.sleep(WARMUP_S)
        scenario.inject(h, scale)
        return wind_down(h, expected, scenario.name)


def _terminate(signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def run(
    config_dir: Path, *, names: Sequence[str] = (), repeats: int = 2, scale: float = 1.0
) -> dict[str, Any]:
    known = [*SCENARIOS, *ALARM_SCENARIOS]
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ValueError(f"unknown scenario(s) {', '.join(unknown)}; one of {', '.join(known)}")
    if repeats < 1 or scale <= 0:
        raise ValueError("repeats must be >= 1 and scale > 0")
    # SIGTERM (a CI timeout, `kill`) unwinds like Ctrl-C, so every stack is torn down, none orphaned.
    signal.signal(signal.SIGTERM, _terminate)
    out = []
    for name in names or known:
        if name in ALARM_SCENARIOS:
            runs = [ALARM_SCENARIOS[name](config_dir, scale, seed_for_run()) for _ in range(repeats)]
            out.append(_report(name, repeats, [r.tally for r in runs], _alarms(runs)))
        else:
            tallies = [run_once(SCENARIOS[name], config_dir, scale) for _ in range(repeats)]
            out.append(_report(name, repeats, tallies, upgrade_report(name, tallies)))
    return {"scale": scale, "scenarios": out}


def _report(name: str, repeats: int, tallies: list[Tally], extra: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": name,
        "repeats": repeats,
        **{k: sum(getattr(t, k) for t in tallies) for k in COUNTS},
        "missing_cases": sorted({c for t in tallies for c in t.missing_cases}),
        "unexpected_cases": sorted({c for t in tallies for c in t.unexpected_cases}),
        "fault_landed": all(t.fault_landed for t in tallies),
        "faults": [t.fault for t in tallies],
        **extra,
        "ok": all(t.ok() for t in tallies) and extra.get("checks_ok", True),
    }


def _alarms(runs: list[AlarmRun]) -> dict[str, Any]:
    """The alarm scenarios' own figures, over all repeats; a check holds when it held in every run."""
    extra: dict[str, Any] = {
        "seeds": [r.seed for r in runs],
        "flood_latency_ms": percentiles([v for r in runs for v in r.flood_latency_ms]),
        "checks": {k: all(r.checks[k] for r in runs) for k in runs[0].checks},
        "runs": [{"seed": r.seed, **r.details, "flood_latency_ms": r.flood_latency_ms} for r in runs],
        "checks_ok": all(r.ok() for r in runs),
    }
    if any(r.inhibition_end_ms for r in runs):
        extra["inhibition_end_ms"] = percentiles([v for r in runs for v in r.inhibition_end_ms])
        for entry, r in zip(extra["runs"], runs, strict=True):
            entry["inhibition_end_ms"] = r.inhibition_end_ms
    return extra
