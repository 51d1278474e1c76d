"""The definitions store: sensor-type profiles and rule files as versioned data in the registry (#28).

Profiles are checked here (the wire contract's own model); rule documents are checked by the caller
(``alerts.rules``: the registry sits below the alert engine and does not know a rule's shape). Every
change is one transaction that also counts one ``definition_revision``; a change to the profiles also
moves the registry's version (when it has one), so every service's live catalog reloads with them.

Seeded from ``config/`` on first start, profiles and rule files each on their own: whichever service
starts first seeds what it knows, and two starting together cannot both seed (the second's insert
fails on the first's rows).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

import yaml
from pydantic import ValidationError
from sqlalchemy import Engine, Table, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from common.db import Base, create_tables
from contract.errors import ContractError
from contract.profiles import SensorTypeProfile
from registry import version as registry_version
from registry.definition_models import TABLES, DefinitionProfile, DefinitionRevision, DefinitionRuleFile
from registry.models import RegistryVersion

log = logging.getLogger(__name__)
MAX_DOCUMENT_BYTES = 256 * 1024  # a profile or rule file is a few kB; checked before any parsing
MAX_NAME = 96


class DefinitionConflict(Exception):
    """The change contradicts what is stored (e.g. other content under an existing profile id)."""


@dataclass(frozen=True, slots=True)
class StoredProfile:
    profile: SensorTypeProfile
    source: str
    author: str
    created_at: datetime

    @property
    def name(self) -> str:
        return self.profile.measurement

    @property
    def version(self) -> int:
        return int(self.profile.id.rsplit("@", 1)[1])


@dataclass(frozen=True, slots=True)
class StoredRuleFile:
    name: str
    version: int
    document: dict[str, Any]
    source: str
    author: str
    created_at: datetime


def create_schema(db: Engine) -> None:
    """The definitions' tables, and the registry's version they move (read before any registry exists)."""
    create_tables(db, Base.metadata, tables=[*TABLES, cast(Table, RegistryVersion.__table__)])


def digest(document: Any) -> str:
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


# -- reading documents -------------------------------------------------------------------------------


def read_document(data: bytes, source: str) -> Any:
    """YAML or JSON text (JSON is read as YAML) of at most MAX_DOCUMENT_BYTES; ContractError naming
    the source otherwise. The size is checked before parsing."""
    if len(data) > MAX_DOCUMENT_BYTES:
        raise ContractError(f"{source}: {len(data):,} bytes, more than the {MAX_DOCUMENT_BYTES:,} allowed")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise ContractError(f"{source}: not UTF-8 text ({err.reason} at byte {err.start})") from err
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise ContractError(f"{source}: not a YAML document (nor JSON, which is YAML too): {err}") from err
    except RecursionError as err:
        raise ContractError(f"{source}: nested too deeply") from err


def explain(err: ValidationError, source: str, prefix: str = "") -> str:
    """Pydantic's errors as "source: field: what is wrong (expected shape)", at most five."""
    parts = []
    for e in err.errors()[:5]:
        where = prefix + ".".join(str(p) for p in e["loc"]) or "document"
        message = e["msg"].removeprefix("Value error, ")
        if e["type"] == "missing":
            message = "required, missing"
        elif e["type"] == "extra_forbidden":
            message = "not a known key here (check its spelling and nesting)"
        elif e["type"] == "model_type":
            message = f"expected a mapping of keys, got {type(e['input']).__name__}"
        parts.append(f"{where}: {message}")
    return f"{source}: " + "; ".join(parts)


def parse_profile(data: bytes, source: str) -> SensorTypeProfile:
    """A profile from YAML or JSON; ContractError naming the source, the field and what to fix."""
    document = read_document(data, source)
    if not isinstance(document, dict):
        raise ContractError(
            f"{source}: a profile is a mapping with id (e.g. air.co2@1), name and fields, "
            f"got {type(document).__name__}"
        )
    try:
        return SensorTypeProfile.model_validate(document)
    except ValidationError as err:
        raise ContractError(explain(err, source)) from err


# -- the revision --------------------------------------------------------------------------------------


def revision(db: Engine) -> int:
    """The definitions' revision now; 0 before anything was stored."""
    with Session(db) as session:
        return _revision(session)


def _revision(session: Session) -> int:
    return session.scalar(select(DefinitionRevision.revision).where(DefinitionRevision.id == 1)) or 0


def _bump(session: Session, *, profiles_changed: bool) -> int:
    now = datetime.now(UTC)
    row = session.get(DefinitionRevision, 1, with_for_update=True)
    if row is None:
        row = DefinitionRevision(id=1, revision=0, changed_at=now)
        session.add(row)
    row.revision += 1
    row.changed_at = now
    if profiles_changed and (session.scalar(select(RegistryVersion.version)) or 0) > 0:
        # A registry of version 0 is the community files: moving it would swap in an empty registry.
        registry_version.bump(session, now)
    session.flush()
    return row.revision


# -- profiles ----------------------------------------------------------------------------------------


def _profile_row(profile: SensorTypeProfile, source: str, author: str, now: datetime) -> DefinitionProfile:
    document = profile.model_dump(mode="json")
    name, number = profile.id.rsplit("@", 1)
    return DefinitionProfile(
        name=name,
        version=int(number),
        document=document,
        digest=digest(document),
        source=source[:200],
        author=author[:128],
        created_at=now,
    )


def add_profile(db: Engine, profile: SensorTypeProfile, *, source: str, author: str) -> bool:
    """Store a profile version; False when that exact version is already stored with this content.

    DefinitionConflict when the id is taken by other content: a stored version never changes, since
    devices run it; the message names the next free version.
    """
    row = _profile_row(profile, source, author, datetime.now(UTC))
    try:
        with Session(db) as session, session.begin():
            stored = session.get(DefinitionProfile, (row.name, row.version))
            if stored is not None:
                if stored.digest == row.digest:
                    return False
                newest = session.scalar(
                    select(func.max(DefinitionProfile.version)).where(DefinitionProfile.name == row.name)
                )
                raise DefinitionConflict(
                    f"{source}: id: {profile.id} is already stored with other content, and a stored "
                    f"version never changes (devices run it); give the changed profile id "
                    f"{row.name}@{(newest or row.version) + 1}"
                )
            session.add(row)
            session.flush()
            _bump(session, profiles_changed=True)
    except IntegrityError:  # stored by someone else at the same moment: judge against theirs
        return add_profile(db, profile, source=source, author=author)
    log.info("definitions: sensor type %s stored (from %s, by %s)", profile.id, source, author)
    return True


def stored_profiles(db: Engine) -> list[StoredProfile]:
    """Every stored version of every profile, by id."""
    with Session(db) as session:
        rows = session.scalars(
            select(DefinitionProfile).order_by(DefinitionProfile.name, DefinitionProfile.version)
        )
        return [
            StoredProfile(SensorTypeProfile.model_validate(r.document), r.source, r.author, r.created_at)
            for r in rows
        ]


class ProfileSource:
    """The sensor types a live catalog runs on: the stored ones once any is stored, else the files.

    Made to stand in for the files' loader where a service opens its live catalog; the tables are
    created once, here, so the first call does not fail on a fresh database. A call reads one row
    (the revision) and parses the profiles again only when it moved.
    """

    def __init__(self, db: Engine, files: Callable[[], list[SensorTypeProfile]]) -> None:
        """``files``: the sensor types on disk, read while the store holds none."""
        self._db, self._files = db, files
        self._seen: tuple[int, list[SensorTypeProfile]] | None = None
        create_schema(db)

    def __call__(self) -> list[SensorTypeProfile]:
        now = revision(self._db)
        if self._seen is None or self._seen[0] != now:
            self._seen = (now, [s.profile for s in stored_profiles(self._db)])
        return list(self._seen[1]) or self._files()


# -- rule files --------------------------------------------------------------------------------------


def put_rule_file(db: Engine, name: str, document: dict[str, Any], *, source: str, author: str) -> int | None:
    """A checked rule file stored as the newest version of ``name``; that version, or None when the
    newest version already has this content."""
    if not 1 <= len(name) <= MAX_NAME:
        raise ContractError(f"rule file name {name!r}: 1 to {MAX_NAME} characters")
    now, content = datetime.now(UTC), digest(document)
    try:
        with Session(db) as session, session.begin():
            newest = session.scalars(
                select(DefinitionRuleFile)
                .where(DefinitionRuleFile.name == name)
                .order_by(DefinitionRuleFile.version.desc())
                .limit(1)
            ).first()
            if newest is not None and newest.digest == content:
                return None
            number = (newest.version if newest else 0) + 1
            session.add(
                DefinitionRuleFile(
                    name=name,
                    version=number,
                    document=document,
                    digest=content,
                    source=source[:200],
                    author=author[:128],
                    created_at=now,
                )
            )
            session.flush()
            _bump(session, profiles_changed=False)
    except IntegrityError:  # another writer took this version number at the same moment: retry on theirs
        return put_rule_file(db, name, document, source=source, author=author)
    log.info("definitions: rule file %s version %d stored (from %s, by %s)", name, number, source, author)
    return number


def rule_files(db: Engine, *, history: bool = False) -> list[StoredRuleFile]:
    """The newest version of every rule file (every version with ``history``), by name."""
    with Session(db) as session:
        query = select(DefinitionRuleFile).order_by(DefinitionRuleFile.name, DefinitionRuleFile.version)
        if not history:
            newest = (
                select(DefinitionRuleFile.name, func.max(DefinitionRuleFile.version).label("v"))
                .group_by(DefinitionRuleFile.name)
                .subquery()
            )
            query = query.join(
                newest,
                (DefinitionRuleFile.name == newest.c.name) & (DefinitionRuleFile.version == newest.c.v),
            )
        return [
            StoredRuleFile(r.name, r.version, r.document, r.source, r.author, r.created_at)
            for r in session.scalars(query)
        ]


# -- seeding and reloading config/ -----------------------------------------------------------------


def seed_if_empty(
    db: Engine,
    profiles: Sequence[tuple[str, SensorTypeProfile]],
    files: Sequence[tuple[str, str, dict[str, Any]]] | None,
) -> bool:
    """Profiles (source, profile) and rule files (name, source, document) stored when none of their
    kind is; ``files`` None leaves the rule files alone. True when anything was stored."""
    create_schema(db)
    seeded = False
    try:
        with Session(db) as session, session.begin():
            if profiles and session.scalar(select(func.count()).select_from(DefinitionProfile)) == 0:
                now = datetime.now(UTC)
                session.add_all(_profile_row(p, source, "seed", now) for source, p in profiles)
                session.flush()
                _bump(session, profiles_changed=True)
                seeded = True
    except IntegrityError:
        log.info("definitions: profiles seeded by another process at the same time")
    if files:
        try:
            with Session(db) as session, session.begin():
                if session.scalar(select(func.count()).select_from(DefinitionRuleFile)) == 0:
                    now = datetime.now(UTC)
                    session.add_all(
                        DefinitionRuleFile(
                            name=name,
                            version=1,
                            document=document,
                            digest=digest(document),
                            source=source[:200],
                            author="seed",
                            created_at=now,
                        )
                        for name, source, document in files
                    )
                    session.flush()
                    _bump(session, profiles_changed=False)
                    seeded = True
        except IntegrityError:
            log.info("definitions: rule files seeded by another process at the same time")
    return seeded


@dataclass(frozen=True, slots=True)
class ReloadResult:
    profiles_added: list[str]
    rule_files_changed: list[str]


def check_profiles_fit(db: Engine, profiles: Sequence[tuple[str, SensorTypeProfile]]) -> None:
    """Every profile new, or stored with the same content; DefinitionConflict naming the first that is not."""
    stored = {s.profile.id: s.profile for s in stored_profiles(db)}
    for source, profile in profiles:
        known = stored.get(profile.id)
        if known is not None and digest(known.model_dump(mode="json")) != digest(
            profile.model_dump(mode="json")
        ):
            name = profile.measurement
            newest = max(int(i.rsplit("@", 1)[1]) for i in stored if i.rsplit("@", 1)[0] == name)
            raise DefinitionConflict(
                f"{source}: id: {profile.id} is stored with other content, and a stored version never "
                f"changes (devices run it); give the changed profile id {name}@{newest + 1}"
            )


def reload_from(
    db: Engine,
    profiles: Sequence[tuple[str, SensorTypeProfile]],
    files: Sequence[tuple[str, str, dict[str, Any]]],
    *,
    author: str,
) -> ReloadResult:
    """``config/`` read again into the store: new profile versions added, changed rule files stored as
    their next version. All checked first (the caller checked the rules), so a refusal changes nothing."""
    create_schema(db)
    check_profiles_fit(db, profiles)
    added = [p.id for source, p in profiles if add_profile(db, p, source=source, author=author)]
    changed = [
        name
        for name, source, document in files
        if put_rule_file(db, name, document, source=source, author=author)
    ]
    return ReloadResult(added, changed)
