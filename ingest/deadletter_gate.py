"""A per-gateway rate cap on dead letters: a gateway sending nothing but garbage fills the dead-letter
store (and the log) at most at ``per_s`` letters a second, whatever rate it publishes at.

Letters over the cap are acknowledged and discarded — counted in /metrics
(``yiwang_ingest_dead_letters_discarded_total{cause="rate_limited"}``) and summed up in the log, never
silent. The gateway is read from the topic, so this costs a dictionary lookup per refused message.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from ingest.deadletters import DeadLetter
from ingest.fairness import GatewayBudget, gateway_of

PER_S = 10.0
"""Default letters a second per gateway: a faulty device's every message, not a flood's."""
BURST = 100.0


class DeadLetterGate:
    def __init__(
        self, per_s: float = PER_S, burst: float = BURST, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._budget = GatewayBudget(per_s, burst, clock)

    def admit(self, letters: Sequence[DeadLetter]) -> tuple[list[DeadLetter], int]:
        """The letters within their gateways' caps, and how many were over."""
        allow = self._budget.allow
        kept = [letter for letter in letters if allow(gateway_of(letter.topic), 1)]
        return kept, len(letters) - len(kept)
