"""The catalog as the registry holds it now, for services that run while the registry changes.

Mechanism: every service polls the one-row ``registry_version`` (an indexed primary-key read, cheap
even every second on PostgreSQL) and reloads the catalog when the number moved. Polling was chosen over
a retained MQTT message because every service that needs the catalog already holds a database
connection, a missed message cannot leave a service stale, and a change is visible in the same
transaction that made it.

While the registry is empty (version 0: nobody ran `yiwang registry import` or `yiwang up`), the
community files are the catalog, as before the registry existed. A reload that fails (database down, a
row that does not make a valid catalog) keeps the last good catalog and says why in :meth:`status`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from common.db import Base, create_tables
from contract.catalog import Catalog, load_catalog, load_sensor_types
from contract.errors import ContractError
from contract.profiles import SensorTypeProfile
from registry import version
from registry.models import TABLES
from registry.snapshot import load_communities

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Loaded:
    catalog: Catalog
    version: int  # 0: the community files, not the registry
    loaded_at: float


class LiveCatalog:
    """``.catalog`` is always a complete, valid catalog; :meth:`refresh` swaps in a newer one."""

    def __init__(
        self,
        db: Engine,
        profiles: Callable[[], list[SensorTypeProfile]],
        files: Callable[[], Catalog],
        poll_s: float = 1.0,
    ) -> None:
        self._db = db
        self._profiles = profiles
        self._files = files
        self.poll_s = poll_s
        self._loaded: Loaded | None = None
        self._error: str | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._listeners: list[Callable[[Catalog], None]] = []
        self.refresh()
        if self._loaded is None:  # neither the registry nor the files made a catalog: nothing to run on
            raise ContractError(f"no catalog could be loaded: {self._error}")

    @property
    def catalog(self) -> Catalog:
        assert self._loaded is not None
        return self._loaded.catalog

    @property
    def version(self) -> int:
        assert self._loaded is not None
        return self._loaded.version

    def on_change(self, listener: Callable[[Catalog], None]) -> None:
        """Called with the new catalog after each reload (on the polling thread)."""
        self._listeners.append(listener)

    def refresh(self) -> bool:
        """Reload if the registry's version moved; True when a new catalog was swapped in."""
        with self._lock:
            try:
                stored = version.current(self._db)
                if self._loaded is not None and stored == self._loaded.version:
                    return False
                catalog = self._load(stored)
            except (SQLAlchemyError, ContractError, ValueError) as err:
                reason = f"{type(err).__name__}: {str(err).splitlines()[0][:300]}"
                if reason != self._error:
                    log.warning("registry: keeping the last good catalog: %s", reason)
                self._error = reason
                return False
            self._loaded = Loaded(catalog, stored, time.time())
            self._error = None
        log.info("registry: catalog at version %d (%d devices)", stored, sum(1 for _ in catalog.devices()))
        for listener in self._listeners:
            listener(catalog)
        return True

    def _load(self, stored: int) -> Catalog:
        if stored == 0:
            return self._files()
        with Session(self._db) as session:
            communities = load_communities(session)
        return Catalog(communities, self._profiles())

    def status(self) -> dict[str, Any]:
        """For /healthz: the version running, when it was loaded, and why a newer one was refused."""
        loaded = self._loaded
        return {
            "version": loaded.version if loaded else None,
            "source": "files" if loaded and loaded.version == 0 else "registry",
            "loaded_at": loaded.loaded_at if loaded else None,
            "error": self._error,
        }

    def start(self) -> None:
        """Poll in a daemon thread until :meth:`stop`."""
        self._thread = threading.Thread(target=self._poll, name="registry-poll", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)

    def _poll(self) -> None:
        while not self._stop.wait(self.poll_s):
            try:
                self.refresh()
            except Exception:  # a listener's bug must not end the polling
                log.exception("registry: a catalog listener failed")


def open_live_catalog(db: Engine, config_dir: Path, poll_s: float = 1.0) -> LiveCatalog:
    """A service's live catalog: sensor types from ``config_dir``, the community files as the fallback.

    The registry's tables are created when missing, as every service does for the tables it reads.
    """
    create_tables(db, Base.metadata, tables=list(TABLES))
    return LiveCatalog(
        db, partial(load_sensor_types, config_dir), partial(load_catalog, config_dir), poll_s=poll_s
    )
