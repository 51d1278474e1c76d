"""What an import would change, said in words, and applying it in one transaction.

A device that disappears from the files is retired, never deleted: its readings and cases keep their
device. Grids, buildings and gateways that disappear are removed; towns and communities are never
removed by an import (a community leaves the district by an explicit act, not a missing file).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from contract.catalog import DeviceState
from registry import version
from registry.models import RegistryBus, RegistryCommunity
from registry.rows import KEY_COLUMNS, MODELS, ORDER, Key, Row, Rows

Action = Literal["add", "change", "remove"]
NEVER_REMOVED = frozenset({"town", "community"})
TIMESTAMPED = {"gateway": "created_at", "device": "updated_at"}


@dataclass(frozen=True, slots=True)
class Change:
    table: str
    key: Key
    action: Action
    before: Row | None
    after: Row | None

    def describe(self) -> str:
        """One line a person reads before saying yes: ``~ device zhuganxiang/th-0101: location A → B``."""
        name = f"{self.table} {'/'.join(self.key)}"
        if self.action == "add":
            assert self.after is not None
            shown = ", ".join(f"{k} {_show(v)}" for k, v in self.after.items() if v not in (None, ""))
            return f"+ {name} ({shown})"
        if self.action == "remove":
            return f"- {name}"
        assert self.before is not None
        assert self.after is not None
        diffs = [
            f"{k} {_show(self.before.get(k))} → {_show(v)}"
            for k, v in self.after.items()
            if self.before.get(k) != v
        ]
        return f"~ {name}: {'; '.join(diffs)}"


def _show(value: Any) -> str:
    if value is None or value == "":
        return "(none)"
    if isinstance(value, list):
        return "(polygon)"
    return str(value)


def plan(current: Rows, desired: Rows) -> list[Change]:
    """The changes that make ``current`` what ``desired`` says, parents added before their children."""
    changes: list[Change] = []
    for table in ORDER:
        have, want = current[table], desired[table]
        for key, row in want.items():
            if key not in have:
                changes.append(Change(table, key, "add", None, row))
            elif have[key] != row:
                changes.append(Change(table, key, "change", have[key], row))
    for table in reversed(ORDER):
        if table in NEVER_REMOVED:
            continue
        have, want = current[table], desired[table]
        for key, row in have.items():
            if key in want:
                continue
            if table == "device":
                if row["state"] != DeviceState.RETIRED.value:
                    changes.append(
                        Change(table, key, "change", row, {**row, "state": DeviceState.RETIRED.value})
                    )
            else:
                changes.append(Change(table, key, "remove", row, None))
    return changes


def apply(session: Session, changes: list[Change], now: datetime | None = None) -> int | None:
    """Write the changes and count one new registry version; None when there was nothing to do."""
    if not changes:
        return None
    now = now or datetime.now(UTC)
    for change in changes:
        model = MODELS[change.table]
        keys = dict(zip(KEY_COLUMNS[change.table], change.key, strict=True))
        stamp = TIMESTAMPED.get(change.table)
        if change.action == "add":
            assert change.after is not None
            extra = {stamp: now} if stamp else {}
            session.add(model(**keys, **change.after, **extra))
        elif change.action == "change":
            assert change.after is not None
            obj = session.get(model, change.key)
            assert obj is not None  # read in this same transaction
            for column, value in change.after.items():
                setattr(obj, column, value)
            if stamp == "updated_at":
                obj.updated_at = now
        else:
            if change.table == "gateway":
                _remove_buses(session, change.key)
            session.delete(session.get(model, change.key))
        session.flush()  # parents reach the database before their children, whatever the unit of work
    return version.bump(session, now, communities=touched(session, changes))


def touched(session: Session, changes: list[Change]) -> set[str]:
    """The communities whose catalog the changes alter: their own rows, or their town's name."""
    communities = {c.key[0] for c in changes if c.table != "town"}
    towns = {c.key[0] for c in changes if c.table == "town"}
    if towns:
        in_towns = select(RegistryCommunity.id).where(RegistryCommunity.town_id.in_(sorted(towns)))
        communities.update(session.scalars(in_towns))
    return communities


def _remove_buses(session: Session, gateway: Key) -> None:
    """A gateway leaving the registry takes its buses along (they are not in the community files)."""
    community, gateway_id = gateway
    session.execute(
        delete(RegistryBus).where(RegistryBus.community_id == community, RegistryBus.gateway_id == gateway_id)
    )
