"""Agent rollouts: a version goes to canary gateways first, then to a percentage of the fleet or all of
it, and stops by itself when a gateway it reached rolled back.

The desired version of a gateway is a row (``registry.rollout_models``), published retained to its
``version`` topic (``registry.version_publisher``); the gateway reports what runs (``agent``) and its
last attempt (``upgrade``) in its retained state, which the alert service keeps. These functions take
those states as plain dicts (``{(community, gateway): state}``), so the registry needs no service.

A rollout is *canary* until it is widened, then *rolling*; *done* at 100 %; *stopped* once a gateway it
reached reported the version rolled back or failed — then it is never widened, and the gateways it
told that have not started yet are told nothing any more (their desired version is withdrawn).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from contract.release import is_safe_version
from registry.models import RegistryGateway
from registry.rollout_models import REASON_LENGTH, AgentRollout, GatewayDesiredVersion

GatewayKey = tuple[str, str]
States = Mapping[GatewayKey, Mapping[str, Any] | None]
MAX_CANARIES = 20


class RolloutStatus(StrEnum):
    CANARY = "canary"
    ROLLING = "rolling"
    DONE = "done"
    STOPPED = "stopped"
    SUPERSEDED = "superseded"


ACTIVE = (RolloutStatus.CANARY.value, RolloutStatus.ROLLING.value)


class GatewayPhase(StrEnum):
    """Where one gateway stands against its desired version."""

    UNMANAGED = "unmanaged"  # no desired version: it runs what it was installed with
    CURRENT = "current"  # runs its desired version
    PENDING = "pending"  # told, has not reported an attempt of it yet
    UPGRADING = "upgrading"  # an attempt is under way
    ROLLED_BACK = "rolled_back"
    FAILED = "failed"


class RolloutError(ValueError):
    """A rollout request that cannot be done as asked; the message says what to fix."""


@dataclass(frozen=True, slots=True)
class GatewayVersion:
    community: str
    gateway: str
    online: bool | None
    running: str | None
    desired: str | None
    rollout_id: int | None
    attempt: str | None
    outcome: str | None
    reason: str | None
    phase: GatewayPhase


def now() -> datetime:
    return datetime.now(UTC)


def phase_of(desired: str | None, state: Mapping[str, Any] | None) -> GatewayPhase:
    if desired is None:
        return GatewayPhase.UNMANAGED
    state = state or {}
    if state.get("agent") == desired:
        return GatewayPhase.CURRENT
    upgrade = state.get("upgrade") or {}
    if upgrade.get("attempt") != desired:
        return GatewayPhase.PENDING
    outcome = upgrade.get("outcome")
    if outcome == "rolled_back":
        return GatewayPhase.ROLLED_BACK
    if outcome == "failed":
        return GatewayPhase.FAILED
    return GatewayPhase.UPGRADING


def all_gateways(session: Session, community: str | None = None) -> list[GatewayKey]:
    query = select(RegistryGateway.community_id, RegistryGateway.id)
    if community is not None:
        query = query.where(RegistryGateway.community_id == community)
    return sorted((c, g) for c, g in session.execute(query))


def desired_versions(session: Session) -> dict[GatewayKey, GatewayDesiredVersion]:
    return {(r.community, r.gateway): r for r in session.scalars(select(GatewayDesiredVersion))}


def fleet_versions(
    session: Session, states: States, online: Mapping[GatewayKey, bool | None]
) -> list[GatewayVersion]:
    """Every registered gateway: running, desired, its last attempt and where it stands."""
    desired = desired_versions(session)
    out = []
    for key in all_gateways(session):
        row, state = desired.get(key), states.get(key) or {}
        upgrade = state.get("upgrade") or {}
        out.append(
            GatewayVersion(
                community=key[0],
                gateway=key[1],
                online=online.get(key),
                running=state.get("agent"),
                desired=row.version if row else None,
                rollout_id=row.rollout_id if row else None,
                attempt=upgrade.get("attempt"),
                outcome=upgrade.get("outcome"),
                reason=upgrade.get("reason"),
                phase=phase_of(row.version if row else None, state),
            )
        )
    return out


def active_rollout(session: Session) -> AgentRollout | None:
    return session.scalars(
        select(AgentRollout).where(AgentRollout.status.in_(ACTIVE)).order_by(AgentRollout.id.desc())
    ).first()


def latest_rollouts(session: Session, limit: int = 10) -> list[AgentRollout]:
    return list(session.scalars(select(AgentRollout).order_by(AgentRollout.id.desc()).limit(limit)))


def resolve_gateways(session: Session, names: Sequence[str]) -> list[GatewayKey]:
    """``community/gateway`` or a bare gateway id unique in the registry; RolloutError names the unknown."""
    if len(names) > MAX_CANARIES:
        raise RolloutError(f"at most {MAX_CANARIES} canaries, not {len(names)}")
    known = all_gateways(session)
    out: list[GatewayKey] = []
    for name in names:
        community, _, gateway = name.rpartition("/")
        found = [k for k in known if k[1] == gateway and (not community or k[0] == community)]
        if not found:
            raise RolloutError(f"no gateway {name!r} in the registry (`yiwang gateway add` registers one)")
        if len(found) > 1:
            raise RolloutError(f"gateway {name!r} is in several communities: write community/{gateway}")
        out.append(found[0])
    return out


def _tell(session: Session, keys: Iterable[GatewayKey], version: str, rollout: AgentRollout) -> int:
    desired = desired_versions(session)
    told = 0
    for key in keys:
        row = desired.get(key)
        if row is None:
            session.add(
                GatewayDesiredVersion(
                    community=key[0], gateway=key[1], version=version, rollout_id=rollout.id, set_at=now()
                )
            )
        elif row.version != version or row.rollout_id != rollout.id:
            row.version, row.rollout_id, row.set_at = version, rollout.id, now()
        else:
            continue
        told += 1
    return told


def start_canary(session: Session, version: str, canaries: Sequence[str], by: str) -> AgentRollout:
    """A new rollout of ``version`` to the canaries only; an active one of another version is superseded."""
    if not is_safe_version(version):
        raise RolloutError(f"{version!r} is not a version (letters, digits, . + _ -, at most 64)")
    if not canaries:
        raise RolloutError("name at least one canary gateway (--canary gw-01)")
    keys = resolve_gateways(session, canaries)
    for old in session.scalars(select(AgentRollout).where(AgentRollout.status.in_(ACTIVE))):
        old.status, old.updated_at = RolloutStatus.SUPERSEDED.value, now()
    rollout = AgentRollout(
        version=version,
        canaries=[list(k) for k in keys],
        percent=0,
        status=RolloutStatus.CANARY.value,
        created_by=by[:128],
        created_at=now(),
        updated_at=now(),
    )
    session.add(rollout)
    session.flush()
    _tell(session, keys, version, rollout)
    return rollout


def evaluate(session: Session, states: States) -> list[GatewayKey]:
    """Stop the active rollout when a gateway it told rolled back or failed; the gateways whose desired
    version was withdrawn (to publish as cleared)."""
    rollout = active_rollout(session)
    if rollout is None:
        return []
    told = list(
        session.scalars(select(GatewayDesiredVersion).where(GatewayDesiredVersion.rollout_id == rollout.id))
    )
    failures = [
        (r, phase_of(r.version, states.get((r.community, r.gateway))))
        for r in told
        if phase_of(r.version, states.get((r.community, r.gateway)))
        in (GatewayPhase.ROLLED_BACK, GatewayPhase.FAILED)
    ]
    if not failures:
        return []
    row, phase = failures[0]
    report = (states.get((row.community, row.gateway)) or {}).get("upgrade") or {}
    word = "rolled back" if phase is GatewayPhase.ROLLED_BACK else "failed"
    rollout.status = RolloutStatus.STOPPED.value
    rollout.stopped_reason = (
        f"{row.community}/{row.gateway} {word} {rollout.version}: {report.get('reason') or '?'}"[
            :REASON_LENGTH
        ]
    )
    rollout.updated_at = now()
    withdrawn = []
    for r in told:
        if phase_of(r.version, states.get((r.community, r.gateway))) is GatewayPhase.PENDING:
            withdrawn.append((r.community, r.gateway))
            session.delete(r)  # not started yet: it is told nothing any more
    return withdrawn


def widen(
    session: Session, version: str, states: States, percent: int | None, community: str | None = None
) -> tuple[AgentRollout, int]:
    """Tell ``percent`` % (None: all) of the gateways (of ``community``) to run ``version``, once every
    canary runs it; the rollout and how many gateways were newly told."""
    if percent is not None and not 1 <= percent <= 100:
        raise RolloutError(f"--percent must be 1 to 100, not {percent}")
    evaluate(session, states)
    rollout = session.scalars(
        select(AgentRollout).where(AgentRollout.version == version).order_by(AgentRollout.id.desc())
    ).first()
    if rollout is None or rollout.status == RolloutStatus.SUPERSEDED.value:
        raise RolloutError(f"no rollout of {version}: start with --canary <gateway>")
    if rollout.status == RolloutStatus.STOPPED.value:
        raise RolloutError(f"the rollout of {version} stopped: {rollout.stopped_reason}")
    waiting = [
        f"{c}/{g}"
        for c, g in rollout.canaries
        if phase_of(version, states.get((c, g))) is not GatewayPhase.CURRENT
    ]
    if waiting:
        raise RolloutError(
            f"canary {', '.join(waiting)} has not reported {version} running yet: wait, then try again"
        )
    targets = all_gateways(session, community)
    share = 100 if percent is None else percent
    chosen = targets[: math.ceil(len(targets) * share / 100)]
    told = _tell(session, chosen, version, rollout)
    rollout.percent = max(rollout.percent, share)
    full = community is None and rollout.percent >= 100
    rollout.status = (RolloutStatus.DONE if full else RolloutStatus.ROLLING).value
    rollout.updated_at = now()
    return rollout, told
