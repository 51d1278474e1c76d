"""The bus tasks' hand-off to the publishing thread: order, push-back when full, a drain at stop."""

from __future__ import annotations

import asyncio
import threading
from functools import partial
from pathlib import Path

import pytest

from contract.messages import Reading
from edge.handoff import Handoff, HandoffStopped
from edge.metrics import EdgeMetrics
from edge.spool import Spool


def test_jobs_run_in_order_on_the_worker_thread() -> None:
    ran: list[tuple[int, str]] = []

    def record(i: int) -> None:
        ran.append((i, threading.current_thread().name))

    async def scenario() -> None:
        handoff = Handoff("t", 4)
        handoff.start()
        for i in range(50):
            await handoff.put(partial(record, i))
        assert handoff.stop(5)

    asyncio.run(scenario())
    assert [i for i, _ in ran] == list(range(50))
    assert {name for _, name in ran} == {"t"}


def test_a_full_handoff_makes_the_producer_wait_and_counts_it() -> None:
    gate = threading.Event()
    ran: list[int] = []

    async def scenario() -> Handoff:
        handoff = Handoff("t", 2)
        handoff.start()
        await handoff.put(gate.wait)  # the worker is now busy until the gate opens
        await handoff.put(lambda: ran.append(1))
        assert handoff.waits == 0
        third = asyncio.create_task(handoff.put(lambda: ran.append(2)))
        await asyncio.sleep(0.2)
        assert not third.done(), "a full hand-off must push back, not accept or drop"
        assert handoff.waits == 1
        gate.set()
        await asyncio.wait_for(third, 5)
        assert handoff.stop(5)
        return handoff

    handoff = asyncio.run(scenario())
    assert ran == [1, 2]  # nothing dropped
    assert handoff.wait_s >= 0.15
    assert handoff.handed == handoff.done == 3 and handoff.depth == 0


def test_stop_drains_every_batch_handed_over_into_the_spool(tmp_path: Path) -> None:
    gate = threading.Event()
    readings = [
        Reading(device=f"d-{i % 7}", ts=1_764_000_000_000 + i, values={"x": float(i)}) for i in range(300)
    ]

    with Spool(tmp_path / "s.sqlite3") as spool:

        async def scenario() -> None:
            handoff = Handoff("t", 1000)
            handoff.start()
            await handoff.put(gate.wait)
            for r in readings:
                await handoff.put(partial(spool.append_readings, [r]))
            assert handoff.depth == 301
            gate.set()
            assert handoff.stop(30)  # what the agent does at SIGTERM, once its bus tasks are stopped

        asyncio.run(scenario())
        assert spool.depth() == len(readings)


def test_a_producer_cancelled_while_waiting_still_hands_its_job_over() -> None:
    gate = threading.Event()
    ran: list[str] = []

    async def scenario() -> Handoff:
        handoff = Handoff("t", 1)
        handoff.start()
        await handoff.put(gate.wait)
        waiting = asyncio.create_task(handoff.put(lambda: ran.append("read before the stop")))
        await asyncio.sleep(0.1)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        gate.set()
        assert handoff.stop(5)
        return handoff

    handoff = asyncio.run(scenario())
    assert ran == ["read before the stop"]
    assert handoff.waits == 1


def test_a_failing_job_is_counted_and_the_rest_still_run() -> None:
    ran: list[int] = []

    def boom() -> None:
        raise ValueError("spool on fire")

    async def scenario() -> Handoff:
        handoff = Handoff("t", 8)
        handoff.start()
        await handoff.put(boom)
        await handoff.put(lambda: ran.append(1))
        assert handoff.stop(5)
        return handoff

    handoff = asyncio.run(scenario())
    assert ran == [1] and handoff.failed == 1


def test_the_tick_runs_on_the_worker_while_no_job_comes() -> None:
    ticks: list[str] = []

    async def scenario() -> Handoff:
        handoff = Handoff("t", 8, tick=lambda: ticks.append(threading.current_thread().name), tick_s=0.05)
        handoff.start()
        await asyncio.sleep(0.5)
        assert handoff.alive(1.0)
        assert handoff.stop(5)
        return handoff

    handoff = asyncio.run(scenario())
    assert len(ticks) >= 5 and set(ticks) == {"t"}
    assert not handoff.alive(1.0)


def test_put_after_stop_is_refused_not_lost() -> None:
    async def scenario() -> None:
        handoff = Handoff("t", 8)
        handoff.start()
        assert handoff.stop(5)
        with pytest.raises(HandoffStopped):
            await handoff.put(lambda: None)

    asyncio.run(scenario())


def test_a_stuck_worker_stops_looking_alive() -> None:
    gate = threading.Event()

    async def scenario() -> None:
        handoff = Handoff("t", 8, tick=lambda: None, tick_s=0.01)
        handoff.start()
        await handoff.put(gate.wait)
        await asyncio.sleep(0.3)
        assert not handoff.alive(0.2)  # the agent stops petting the watchdog
        gate.set()
        assert handoff.stop(5)

    asyncio.run(scenario())


def test_push_back_shows_on_the_gateway_metrics() -> None:
    gate = threading.Event()

    async def scenario() -> Handoff:
        handoff = Handoff("publish-gw", 1)
        handoff.start()
        await handoff.put(gate.wait)
        waiting = asyncio.create_task(handoff.put(lambda: None))
        await asyncio.sleep(0.05)
        gate.set()
        await waiting
        assert handoff.stop(5)
        return handoff

    handoff = asyncio.run(scenario())
    metrics = EdgeMetrics()
    metrics.add_handoff(handoff)
    labels = {"handoff": "publish-gw"}
    assert metrics.registry.get_sample_value("yiwang_edge_handoff_waits_total", labels) == 1
    assert metrics.registry.get_sample_value("yiwang_edge_handoff_depth", labels) == 0
    assert (metrics.registry.get_sample_value("yiwang_edge_handoff_wait_seconds_total", labels) or 0) > 0
