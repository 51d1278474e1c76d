"""`yiwang registry import DIR`: the community files made the registry's truth for their communities.

Idempotent: importing the same files twice changes nothing the second time. Everything is checked
before anything is written (files, towns, sensor types), and the whole import is one transaction.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from contract.catalog import Community, load_model
from contract.errors import ContractError
from registry import version
from registry.changes import Change, apply, plan
from registry.rows import Town, from_communities, from_database

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ImportResult:
    changes: list[Change]
    version: int | None  # the registry version written; None for a dry run or nothing to do


def read_communities(directory: Path) -> list[Community]:
    """Every ``*.yaml`` of the directory as a community; ContractError naming the file and field."""
    paths = sorted(directory.glob("*.yaml"))
    if not paths:
        raise ContractError(f"{directory}: no community files (*.yaml) here")
    communities = [load_model(Community, p) for p in paths]
    seen: dict[str, Path] = {}
    for path, community in zip(paths, communities, strict=True):
        if community.id in seen:
            raise ContractError(f"{path}: community {community.id} is also in {seen[community.id]}")
        seen[community.id] = path
    return communities


def check_types(communities: Sequence[Community], known_types: Collection[str]) -> None:
    for community in communities:
        for gateway in community.gateways:
            for device in gateway.devices:
                if device.type not in known_types:
                    raise ContractError(
                        f"community {community.id} gateway {gateway.id} device {device.id}: "
                        f"unknown sensor type {device.type!r}"
                    )


def import_communities(
    db: Engine,
    communities: Sequence[Community],
    towns: Sequence[Town],
    known_types: Collection[str],
    *,
    dry_run: bool = False,
) -> ImportResult:
    check_types(communities, known_types)
    try:
        desired = from_communities(communities, towns)
    except LookupError as err:
        raise ContractError(str(err.args[0])) from err
    with Session(db) as session, session.begin():
        current = from_database(
            session, [c.id for c in communities], towns=[key[0] for key in desired["town"]]
        )
        changes = plan(current, desired)
        if dry_run:
            session.rollback()
            return ImportResult(changes, None)
        return ImportResult(changes, apply(session, changes))


def seed_if_empty(
    db: Engine, directory: Path, towns: Sequence[Town], known_types: Collection[str]
) -> ImportResult | None:
    """The community files imported into a registry that has never been seeded; None when it had been.

    Two processes starting together may both try: the second's insert fails on the first's rows, and
    the registry the first made stands.
    """
    if version.current(db) != 0 or not any(directory.glob("*.yaml")):
        return None
    try:
        return import_communities(db, read_communities(directory), towns, known_types)
    except IntegrityError:
        log.info("registry: seeded by another process at the same time")
        return None
