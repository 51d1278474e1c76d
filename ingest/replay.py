"""Replaying dead letters an operator marked (through the API) once their cause was fixed.

Marked letters are claimed in bounded batches and run through a :class:`BatchWriter` — the same
decoding, catalog check and store write as live traffic. A letter is deleted only after the store
accepted its readings; one refused again keeps its row, with the new reason.

The replay writer is a writer of its own, so a replayed letter touches none of the live figures: its
``seq`` is not fed to the live ledger (an old seq arriving after a restart would otherwise read as a
duplicate, a counter reset or a huge gap) and its readings and refusals are not counted again as
messages or dead letters. What replay did is counted apart, in ``yiwang_ingest_replayed_total``. The
gap the letter's refusal left in ``yiwang_ingest_seq_gaps`` stays: that message did not arrive as
readings at the time, and the replayed count says how many were recovered since.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from common.consumer import Inbound
from contract.catalog import Catalog
from ingest.deadletter_gate import DeadLetterGate
from ingest.deadletters import Added, DeadLetter, DeadLetterStore, StoredLetter, refusal_reason
from ingest.metrics import IngestMetrics
from ingest.writer import BatchWriter
from series.store import TimeSeriesStore

log = logging.getLogger(__name__)

BATCH = 100
"""Letters claimed at once: one store write, and a short hold on them if ingest stops meanwhile."""
POLL_S = 1.0


class _Refusals(DeadLetterStore):
    """The replay writer's dead-letter store: refusals are kept for the replayer to record on the
    letters themselves, not added as new letters."""

    def __init__(self, db: Engine) -> None:
        super().__init__(db)
        self.letters: list[DeadLetter] = []

    def add_many(self, letters: Sequence[DeadLetter]) -> Added:
        self.letters.extend(letters)
        return Added()


class _AdmitAll(DeadLetterGate):
    """No rate cap on a replay's refusals: a refusal discarded would read as a letter stored."""

    def admit(self, letters: Sequence[DeadLetter]) -> tuple[list[DeadLetter], int]:
        return list(letters), 0


class Replayer:
    def __init__(
        self,
        *,
        db: Engine,
        store: TimeSeriesStore,
        catalog: Catalog,
        refresh: Callable[[], object],
        metrics: IngestMetrics,
        stop: threading.Event,
        batch: int = BATCH,
        poll_s: float = POLL_S,
    ) -> None:
        self._refusals = _Refusals(db)
        self._stop, self._metrics, self._batch, self._poll_s = stop, metrics, batch, poll_s
        self._refresh = refresh
        # No spool and no deferral: a replay waits for the store, and no rate cap discards a refusal.
        self._writer = BatchWriter(
            catalog=catalog,
            store=store,
            dead=self._refusals,
            stop=stop,
            metrics=IngestMetrics(),  # its own: replayed letters stay out of the live figures
            gate=_AdmitAll(),
        )

    def use_catalog(self, catalog: Catalog) -> None:
        self._writer.use_catalog(catalog)

    def run(self) -> None:
        """Replay marked letters until ``stop``; run it in its own thread."""
        failing = ""
        while not self._stop.wait(self._poll_s):
            try:
                while self.replay_once() and not self._stop.is_set():
                    pass
                failing = ""
            except SQLAlchemyError as err:
                reason = str(err).splitlines()[0]
                if reason != failing:  # once per cause, not once a second (e.g. a schema not upgraded)
                    log.warning("dead-letter replay: the database failed, retrying: %s", reason)
                failing = reason

    def replay_once(self) -> int:
        """Replay one batch of marked letters; how many were claimed (0: none waiting)."""
        letters = self._refusals.claim_for_replay(self._batch)
        if not letters:
            return 0
        self._refresh()  # a device registered a moment ago is known before its letters are retried
        self._refusals.letters.clear()
        batch = [Inbound(mid=0, qos=1, topic=letter.topic, payload=letter.payload) for letter in letters]
        if not self._writer.process(batch):
            self._refusals.release([letter.id for letter in letters])
            return 0
        self._settle(letters)
        return len(letters)

    def _settle(self, letters: list[StoredLetter]) -> None:
        # A refusal carries the message's own topic and payload; equal messages meet equal fates.
        refusals = {(r.topic, r.payload): r.reason for r in self._refusals.letters}
        stored = [x.id for x in letters if (x.topic, x.payload) not in refusals]
        refused = {
            x.id: refusal_reason(x.reason, refusals[(x.topic, x.payload)])
            for x in letters
            if (x.topic, x.payload) in refusals
        }
        self._refusals.settle_replay(stored, refused)
        self._metrics.replayed.labels(outcome="stored").inc(len(stored))
        self._metrics.replayed.labels(outcome="refused").inc(len(refused))
        log.info("dead-letter replay: %d stored and removed, %d refused again", len(stored), len(refused))
