"""Sensor types and rule files as the store holds them now, for services that run while they change.

The same mechanism as the live catalog (``registry.live``): poll the one-row ``definition_revision``
every second and reload when the number moved. A reload that fails keeps the last good definitions
and says why in :meth:`LiveDefinitions.status`; so does a listener that refuses what it was given (the
alert service, for a rule set it cannot run): it keeps its last good set, and the poller reports it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from common.poller import Poller
from contract.errors import ContractError
from contract.profiles import SensorTypeProfile
from registry import definitions
from registry.definitions import StoredRuleFile

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Definitions:
    revision: int
    profiles: dict[str, SensorTypeProfile]  # every stored version, by id (env.th@1)
    rule_files: dict[str, StoredRuleFile]  # the newest version of each rule file, by name
    loaded_at: float


def load(db: Engine) -> Definitions:
    """The definitions now (one consistent read per table; the revision read first, so a change made
    in between shows as a newer revision at the next poll)."""
    revision = definitions.revision(db)
    profiles = {s.profile.id: s.profile for s in definitions.stored_profiles(db)}
    files = {f.name: f for f in definitions.rule_files(db)}
    return Definitions(revision, profiles, files, time.time())


Listener = Callable[[Definitions], None]


class LiveDefinitions:
    """``.current`` is the newest definitions loaded; :meth:`refresh` loads newer ones."""

    def __init__(self, db: Engine, poll_s: float = 1.0) -> None:
        self._db = db
        definitions.create_schema(db)
        self.current: Definitions | None = None
        self._error: str | None = None
        self._lock = threading.Lock()
        self._poller = Poller(self.refresh, poll_s, name="definitions-poll")
        self._listeners: list[Listener] = []

    def on_change(self, listener: Listener) -> None:
        """Called with the new definitions after each reload (on the polling thread). A listener that
        raises ContractError refuses them: it keeps what it had, and the reason shows in status()."""
        self._listeners.append(listener)

    def refresh(self) -> bool:
        """Reload if the revision moved; True when newer definitions were loaded."""
        with self._lock:
            try:
                stored = definitions.revision(self._db)
                if self.current is not None and stored == self.current.revision:
                    return False
                loaded = load(self._db)
            except (SQLAlchemyError, ValidationError, ValueError) as err:
                self._refused(f"{type(err).__name__}: {str(err).splitlines()[0][:300]}")
                return False
            self.current, self._error = loaded, None
            log.info(
                "definitions: revision %d (%d sensor types, %d rule files)",
                loaded.revision,
                len(loaded.profiles),
                len(loaded.rule_files),
            )
            for listener in self._listeners:
                try:
                    listener(loaded)
                except ContractError as err:
                    self._refused(f"revision {loaded.revision} refused: {err}")
        return True

    def _refused(self, reason: str) -> None:
        if reason != self._error:
            log.warning("definitions: keeping the last good set: %s", reason)
        self._error = reason

    def status(self) -> dict[str, Any]:
        """For /healthz: the revision running, when it was loaded, and why a newer one was refused."""
        current = self.current
        return {
            "revision": current.revision if current else None,
            "loaded_at": current.loaded_at if current else None,
            "error": self._error,
        }

    def start(self) -> None:
        """Poll in a daemon thread until :meth:`stop`."""
        self._poller.start()

    def stop(self) -> None:
        self._poller.stop()
