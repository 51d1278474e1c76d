"""Run scenarios, each on a fresh stack, and report what was sent, stored, lost and counted."""

from __future__ import annotations

import logging
import signal
import time
from collections.abc import Sequence
from pathlib import Path
from types import FrameType
from typing import Any

from contract.catalog import Catalog, load_catalog
from yiwang.chaos.accounting import Tally, settled, tally
from yiwang.chaos.harness import COMMUNITY, running_harness
from yiwang.chaos.processes import wait_until
from yiwang.chaos.scenarios import SCENARIOS, WARMUP_S, Scenario

log = logging.getLogger(__name__)
TAIL_S = 6.0
SETTLE_S = 150.0  # long enough for a 60 s `for` timer restarted late


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
    ) as h:
        time.sleep(WARMUP_S)
        scenario.inject(h, scale)
        time.sleep(TAIL_S)
        for run in h.gateways.values():
            run.plan.stop_file.touch()
        wait_until(lambda: all(r.drained() for r in h.gateways.values()), 600, "gateways to drain", 0.5)
        try:
            wait_until(lambda: settled(h, expected), SETTLE_S, "the stack to settle", 2.0)
        except TimeoutError:
            log.warning("%s: not settled after %.0fs; counting what is there", scenario.name, SETTLE_S)
        time.sleep(3)  # late duplicates, if any, get their chance to be counted
        return tally(h, expected)


def _terminate(signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def run(
    config_dir: Path, *, names: Sequence[str] = (), repeats: int = 2, scale: float = 1.0
) -> dict[str, Any]:
    unknown = [n for n in names if n not in SCENARIOS]
    if unknown:
        raise ValueError(f"unknown scenario(s) {', '.join(unknown)}; one of {', '.join(SCENARIOS)}")
    if repeats < 1 or scale <= 0:
        raise ValueError("repeats must be >= 1 and scale > 0")
    # SIGTERM (a CI timeout, `kill`) unwinds like Ctrl-C, so every stack is torn down, none orphaned.
    signal.signal(signal.SIGTERM, _terminate)
    out = []
    for name in names or list(SCENARIOS):
        tallies = [run_once(SCENARIOS[name], config_dir, scale) for _ in range(repeats)]
        out.append(
            {
                "name": name,
                "repeats": repeats,
                **{
                    k: sum(getattr(t, k) for t in tallies)
                    for k in (
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
                    )
                },
                "missing_cases": sorted({c for t in tallies for c in t.missing_cases}),
                "unexpected_cases": sorted({c for t in tallies for c in t.unexpected_cases}),
                "ok": all(t.ok() for t in tallies),
            }
        )
    return {"scale": scale, "scenarios": out}
