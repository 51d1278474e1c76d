"""A bounded hand-off from the event loop to one worker thread that runs jobs in order.

The bus tasks must only talk to their buses: a Modbus master that spools and encodes between two
requests makes every request late by that much. So they hand each batch over as a job and go back
to the wire; the worker thread runs the jobs (spool append, encode, publish) one after another, in
the order they were handed over. SQLite and zlib release the GIL, so most of that work overlaps the
bus's wire time instead of delaying it.

Bounded: at most ``capacity`` jobs wait. When the worker falls behind, :meth:`Handoff.put` awaits a
free slot — the bus slows down, nothing is dropped — and every such wait is counted (``waits``,
``wait_s``) for ``/metrics``. :meth:`Handoff.stop` runs every job handed over before it, then ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable

log = logging.getLogger(__name__)

Job = Callable[[], object]

_STOP = object()


class HandoffStopped(RuntimeError):
    """A job was handed over after :meth:`Handoff.stop`: it would never run."""


class Handoff:
    """FIFO jobs from one asyncio loop to one worker thread, with push-back when ``capacity`` wait."""

    def __init__(
        self,
        name: str,
        capacity: int = 256,
        *,
        tick: Job | None = None,
        tick_s: float = 0.25,
    ) -> None:
        if capacity < 1:
            raise ValueError(f"hand-off {name}: capacity must be at least 1, not {capacity}")
        self.name = name
        self.capacity = capacity
        self._tick = tick
        self._tick_s = tick_s
        # The bound lives on the loop side (a semaphore the worker releases), so a full hand-off makes
        # the producer await instead of blocking the loop; the queue itself never holds more than it.
        self._jobs: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._slots: asyncio.Semaphore | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stopped = False
        self.handed = 0  # jobs accepted
        self.done = 0  # jobs run (including those that raised)
        self.failed = 0  # jobs that raised
        self.waits = 0  # puts that found the hand-off full and waited for a slot
        self.wait_s = 0.0  # total time producers spent waiting for a slot
        self.beat = time.monotonic()  # last time the worker was seen alive (a job or a tick)

    @property
    def depth(self) -> int:
        """Jobs handed over and not yet run."""
        return self.handed - self.done

    def start(self) -> None:
        """Start the worker; call from the loop whose tasks will :meth:`put`."""
        if self._thread is not None:
            raise RuntimeError(f"hand-off {self.name}: already started")
        self._loop = asyncio.get_running_loop()
        self._slots = asyncio.Semaphore(self.capacity)
        self.beat = time.monotonic()
        self._thread = threading.Thread(target=self._work, name=self.name, daemon=True)
        self._thread.start()

    async def put(self, job: Job) -> None:
        """Hand a job over; waits (counted) while ``capacity`` jobs are already waiting."""
        if self._stopped or self._slots is None:
            raise HandoffStopped(f"hand-off {self.name}: not running")
        if self._slots.locked():
            self.waits += 1
            began = time.monotonic()
            try:
                await self._slots.acquire()
            except asyncio.CancelledError:
                # Cancelled while waiting (the agent stopping its sources): the job still goes in, one
                # over the bound per producer, so data already read from a device is not lost to a stop.
                self._enqueue(job, holds_slot=False)
                raise
            finally:
                self.wait_s += time.monotonic() - began
        else:
            await self._slots.acquire()
        if self._stopped:  # stopped while this producer waited: its job would never run
            self._slots.release()
            raise HandoffStopped(f"hand-off {self.name}: stopped")
        self._enqueue(job, holds_slot=True)

    def _enqueue(self, job: Job, *, holds_slot: bool) -> None:
        self.handed += 1
        self._jobs.put((job, holds_slot))

    def alive(self, within_s: float) -> bool:
        """True while the worker ran a job or a tick within ``within_s`` (for the watchdog)."""
        running = self._thread is not None and self._thread.is_alive()
        return running and time.monotonic() - self.beat < within_s

    def stop(self, timeout_s: float = 30.0) -> bool:
        """Run every job handed over so far, then end the worker; False if it did not end in time."""
        self._stopped = True
        if self._thread is None:
            return True
        self._jobs.put(_STOP)
        self._thread.join(timeout_s)
        if self._thread.is_alive():
            log.error("hand-off %s: %d job(s) still waiting after %.0fs", self.name, self.depth, timeout_s)
            return False
        return True

    def _work(self) -> None:
        next_tick = time.monotonic() + self._tick_s
        while True:
            wait = max(0.0, next_tick - time.monotonic()) if self._tick else None
            try:
                job = self._jobs.get(timeout=wait)
            except queue.Empty:
                job = None
            self.beat = time.monotonic()
            if job is _STOP:
                return
            if isinstance(job, tuple):
                work, holds_slot = job
                self._run(work)
                self.done += 1
                if holds_slot:
                    self._free_slot()
            if self._tick is not None and time.monotonic() >= next_tick:
                next_tick = time.monotonic() + self._tick_s
                self._run(self._tick)

    def _run(self, job: Job) -> None:
        try:
            job()
        except Exception:
            # One failing job must not stop the ones behind it (they are other devices' data).
            self.failed += 1
            log.exception("hand-off %s: a job failed", self.name)

    def _free_slot(self) -> None:
        assert self._loop is not None
        assert self._slots is not None
        # RuntimeError: the loop has ended (a stop after the agent's loop closed); no producer is left.
        with contextlib.suppress(RuntimeError):
            self._loop.call_soon_threadsafe(self._slots.release)
