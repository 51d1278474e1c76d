"""The agent follows its desired version: the retained ``version`` topic says which release to run, the
agent starts an upgrade when it differs from the one running, and reports every attempt in ``state``.

The agent cannot upgrade itself in its own process — the upgrade restarts it — so it hands the work
to a process that outlives it (:mod:`edge.upgrade.launch`): under systemd the
``yiwang-edge-upgrade@<version>`` unit, otherwise a detached ``python -m edge.upgrade.run_desired``
of the running version (its own session, so the supervisor's stop of the agent does not stop it).

Loops are impossible by construction: a version whose last attempt was rolled back is never tried
again by itself (a person sets another desired version); one that failed before switching (network,
missing or refused release) is retried after :data:`RETRY_FAILED_S`; nothing starts while an attempt
is still running.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from contract.errors import ContractError
from contract.messages import DesiredVersionMessage, UpgradeReport, decode_message
from contract.topics import TopicKind
from edge.upgrade.state import Attempt, Phase, UpgradeState, read_state

log = logging.getLogger(__name__)

PREFIX_ENV = "YIWANG_UPGRADE_PREFIX"
RETRY_FAILED_S = 600.0
"""An attempt that never switched (download cut, release not there yet) is tried again after this."""
REASON_CHARS = 256


@dataclass(frozen=True, slots=True)
class Decision:
    start: bool
    why: str


def decide(desired: str, running: str, state: UpgradeState, now_s: float) -> Decision:
    """Whether to start an upgrade to ``desired`` now, and why (logged once per decision)."""
    if desired == running:
        return Decision(False, f"{desired} is running")
    attempt = state.last_attempt
    if attempt is None or attempt.version != desired:
        return Decision(True, f"desired {desired}, running {running}")
    if not attempt.finished:
        if attempt.owner_alive():
            return Decision(False, f"the upgrade to {desired} is {attempt.phase.value}")
        return Decision(True, f"the upgrade to {desired} was interrupted while {attempt.phase.value}")
    if attempt.phase is Phase.ROLLED_BACK:
        return Decision(False, f"{desired} was rolled back ({attempt.reason}); not tried again by itself")
    if attempt.phase is Phase.FAILED and now_s - attempt.updated_at.timestamp() < RETRY_FAILED_S:
        return Decision(False, f"the upgrade to {desired} failed; retried {RETRY_FAILED_S:g} s after")
    return Decision(True, f"desired {desired}, running {running}; trying again")


def report(attempt: Attempt | None) -> UpgradeReport | None:
    """The ``upgrade`` part of the gateway's state message."""
    if attempt is None:
        return None
    reason = attempt.reason[:REASON_CHARS] if attempt.reason else None
    return UpgradeReport(
        attempt=attempt.version,
        outcome=attempt.phase.value,  # the same words as the contract's
        reason=reason,
        ts=int(attempt.updated_at.timestamp() * 1000),
    )


class DesiredVersionFollower:
    """Fed the retained ``version`` payloads (any thread); :meth:`tick` (the publishing thread) acts.

    ``launch(version)`` starts the upgrade process; ``publish(report)`` puts the last attempt into the
    retained state. Only the newest desired version is kept: one slot, never a queue.
    """

    def __init__(
        self,
        prefix: Path,
        running: str,
        launch: Callable[[str], None],
        publish: Callable[[UpgradeReport | None], None],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.state_path = prefix / "upgrade" / "state.json"
        self.running = running
        self._launch = launch
        self._publish = publish
        self._clock = clock
        self._lock = threading.Lock()
        self._desired: str | None = None
        self._pending = False
        self._seen_mtime: float | None = None
        self._last_why: str | None = None
        self._hold_until = 0.0  # after a launch that could not even start
        self.launched: list[str] = []

    def offer(self, payload: bytes) -> None:
        """A ``version`` message as delivered (paho's thread): validated, kept, acted on at the next tick."""
        if not payload:
            return  # the retained message was cleared: no desired version
        try:
            message = decode_message(TopicKind.VERSION, payload)
        except ContractError as err:
            log.warning("upgrade: desired version refused: %s", err)
            return
        assert isinstance(message, DesiredVersionMessage)
        with self._lock:
            self._desired, self._pending = message.version, True

    def tick(self) -> None:
        self._report_if_changed()
        with self._lock:
            desired, pending = self._desired, self._pending
            self._pending = False
        if desired is None:
            return
        state = read_state(self.state_path)
        decision = decide(desired, self.running, state, self._clock())
        if decision.why != self._last_why or pending:
            log.info("upgrade: %s", decision.why)
            self._last_why = decision.why
        if not decision.start or self._clock() < self._hold_until:
            return
        try:
            self._launch(desired)
        except OSError as err:
            log.error(
                "upgrade: could not start the upgrade to %s (again in %g s): %s", desired, RETRY_FAILED_S, err
            )
            self._hold_until = self._clock() + RETRY_FAILED_S
            return
        self.launched.append(desired)
        # Until the upgrade process records its attempt, do not start a second one.
        with self._lock:
            self._desired = None

    def _report_if_changed(self) -> None:
        try:
            mtime = os.stat(self.state_path).st_mtime
        except OSError:
            mtime = None
        if mtime == self._seen_mtime:
            return
        self._seen_mtime = mtime
        self._publish(report(read_state(self.state_path).last_attempt))
