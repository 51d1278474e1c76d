"""The catalog as the registry holds it now, for services that run while the registry changes.

Mechanism: every service polls the one-row ``registry_version`` (an indexed primary-key read, cheap
even every second on PostgreSQL) and reloads the catalog when the number moved. Polling was chosen over
a retained MQTT message because every service that needs the catalog already holds a database
connection, a missed message cannot leave a service stale, and a change is visible in the same
transaction that made it.

A reload costs what changed, not the district: each change also sets the revision of the communities
it touched (``registry.version.bump``), so a reload reads the 100-odd revisions, then the rows of only
the communities whose revision moved, and makes the new catalog by replacing those communities in the
old one (the others' structures are shared). The first load, and one after the sensor types changed,
read everything.

While the registry is empty (version 0: nobody ran `yiwang registry import` or `yiwang up`), the
community files are the catalog, as before the registry existed. A reload that fails (database down, a
row that does not make a valid catalog) keeps the last good catalog and says why in :meth:`status`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from common.db import Base, create_tables
from common.poller import Poller
from contract.catalog import Catalog, load_catalog, load_sensor_types
from contract.errors import ContractError
from contract.profiles import SensorTypeProfile
from registry import version
from registry.definitions import ProfileSource
from registry.models import TABLES
from registry.snapshot import load_communities

log = logging.getLogger(__name__)
LOOK_AGAIN_S = 0.2


@dataclass(frozen=True, slots=True)
class Loaded:
    catalog: Catalog
    version: int  # 0: the community files, not the registry
    loaded_at: float
    revisions: dict[str, int] = field(default_factory=dict)  # each community's, as read; {} for files
    profiles: tuple[SensorTypeProfile, ...] = ()  # as loaded, to tell whether the types changed


@dataclass(frozen=True, slots=True)
class Reload:
    """What one reload found: the new state, and which communities it read (None: all of them)."""

    loaded: Loaded
    read: frozenset[str] | None


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
        self._loaded: Loaded | None = None
        self._error: str | None = None
        self._lock = threading.Lock()
        self._poller = Poller(self.refresh, poll_s, name="registry-poll")
        self._listeners: list[Callable[[Catalog], None]] = []
        self.last_read: frozenset[str] | None = None  # communities the last reload read; None: all
        self._look_lock = threading.Lock()
        self._looked = -LOOK_AGAIN_S
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

    def look_again(self) -> bool:
        """A service met a device this catalog does not know — perhaps one registered a moment ago:
        :meth:`refresh` now rather than at the next poll, unless a look was taken within
        ``LOOK_AGAIN_S`` (a gateway sending made-up ids costs one version read per 0.2 s at most).
        True when a newer catalog was swapped in (the listeners have it)."""
        now = time.monotonic()
        with self._look_lock:
            if now - self._looked < LOOK_AGAIN_S:
                return False
            self._looked = now
        return self.refresh()

    def refresh(self) -> bool:
        """Reload if the registry's version moved; True when a new catalog was swapped in."""
        with self._lock:
            previous = self._loaded
            try:
                stored = version.current(self._db)
                if previous is not None and stored == previous.version:
                    return False
                found = self._load(stored, previous)
            except (SQLAlchemyError, ContractError, ValueError) as err:
                reason = f"{type(err).__name__}: {str(err).splitlines()[0][:300]}"
                if reason != self._error:
                    log.warning("registry: keeping the last good catalog: %s", reason)
                self._error = reason
                return False
            self._loaded, self._error = found.loaded, None
            if found.read is not None and not found.read and previous is not None:
                # A change no community's catalog shows (a town with no community yet).
                log.info("registry: version %d changes no community's catalog", found.loaded.version)
                return False
            self.last_read = found.read
        catalog = found.loaded.catalog
        log.info(
            "registry: catalog at version %d (%s read)",
            found.loaded.version,
            "all communities" if found.read is None else f"{len(found.read)} communities",
        )
        for listener in self._listeners:
            listener(catalog)
        return True

    def _load(self, stored: int, previous: Loaded | None) -> Reload:
        if stored == 0:
            return Reload(Loaded(self._files(), 0, time.time()), None)
        profiles = tuple(self._profiles())
        with Session(self._db) as session:
            at, revisions = version.revisions(session)
            if previous is None or previous.version == 0 or previous.profiles != profiles:
                catalog = Catalog(load_communities(session), list(profiles))
                return Reload(Loaded(catalog, at, time.time(), revisions, profiles), None)
            moved = frozenset(c for c, r in revisions.items() if previous.revisions.get(c) != r)
            gone = previous.revisions.keys() - revisions.keys()
            catalog = previous.catalog
            if moved or gone:
                catalog = catalog.replacing(load_communities(session, moved), removed=gone)
        # Same profiles by value: the catalog keeps the old objects, so untouched communities are shared.
        return Reload(Loaded(catalog, at, time.time(), revisions, previous.profiles), moved | gone)

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
        self._poller.start()

    def stop(self) -> None:
        self._poller.stop()


class SensorTypesOnDisk:
    """The sensor types of ``config_dir``, parsed again only when one of their files changed: parsing
    them takes ~0.1 s, which a reload of one community should not pay."""

    def __init__(self, config_dir: Path) -> None:
        self._dir = config_dir
        self._stamp: tuple[tuple[str, int, int], ...] | None = None
        self._types: list[SensorTypeProfile] = []

    def __call__(self) -> list[SensorTypeProfile]:
        stamp = tuple(
            (path.name, stat.st_mtime_ns, stat.st_size)
            for path in sorted((self._dir / "sensor-types").glob("*.yaml"))
            for stat in (path.stat(),)
        )
        if stamp != self._stamp:
            self._types, self._stamp = load_sensor_types(self._dir), stamp
        return list(self._types)


def open_live_catalog(db: Engine, config_dir: Path, poll_s: float = 1.0) -> LiveCatalog:
    """A service's live catalog: the stored sensor types (``config_dir``'s while none is stored), the
    community files as the fallback.

    The registry's tables are created when missing, as every service does for the tables it reads.
    """
    create_tables(db, Base.metadata, tables=list(TABLES))
    types = ProfileSource(db, SensorTypesOnDisk(config_dir))
    return LiveCatalog(db, types, partial(load_catalog, config_dir), poll_s=poll_s)
