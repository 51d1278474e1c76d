"""Public reporting channels and the reports filed through them (#22).

A channel's key is shown once, when the channel is made, and stored only as its SHA-256 digest (a key
is 256 random bits: a fast digest is enough, nothing to brute-force). So is the token of each report's
status link: whoever holds the link follows that one report, and request numbers cannot be enumerated.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Engine, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from cases.models import Case
from cases.organisation import Organisation
from cases.public_channel_models import PublicChannel, PublicRequest

KEY_PREFIX = "ywc_"  # tells a channel key from a staff token (``yw_``) at a glance
MAX_NAME = 64


class ChannelRefused(ValueError):
    """A channel cannot be made as asked; the message says what to fix."""


@dataclass(frozen=True, slots=True)
class Channel:
    id: int
    name: str
    communities: tuple[str, ...]  # every community it reports into (a town's, resolved)
    town: str | None
    serves_page: bool
    enabled: bool
    created_by: str
    created_at: datetime

    def reaches(self, community: str) -> bool:
        return community in self.communities

    def public(self) -> dict[str, object]:
        """What the API lists: never the key."""
        return {
            "id": self.id,
            "name": self.name,
            "communities": list(self.communities),
            "town": self.town,
            "serves_page": self.serves_page,
            "enabled": self.enabled,
            "created_by": self.created_by,
            "created_at": self.created_at.isoformat(),
        }


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _channel(row: PublicChannel) -> Channel:
    return Channel(
        id=row.id,
        name=row.name,
        communities=tuple(row.communities),
        town=row.town,
        serves_page=row.serves_page,
        enabled=row.enabled,
        created_by=row.created_by,
        created_at=_utc(row.created_at),
    )


def reachable_communities(
    organisation: Organisation, known: Iterable[str], communities: Iterable[str], town: str | None
) -> list[str]:
    """The communities a channel may report into: those named, plus every community of ``town``.

    Raises ChannelRefused for an unknown community or town, or when nothing is named at all.
    """
    known = set(known)
    named = list(dict.fromkeys(communities))
    unknown = [c for c in named if c not in known]
    if unknown:
        raise ChannelRefused(f"unknown community {unknown[0]!r}: one of {', '.join(sorted(known))}")
    if town is not None:
        found = next((t for t in organisation.towns if t.id == town), None)
        if found is None:
            raise ChannelRefused(f"unknown town {town!r}")
        named += [c for c in found.communities if c in known and c not in named]
    if not named:
        raise ChannelRefused("name the communities (or the town) the channel may report into")
    return named


def create_channel(
    db: Engine,
    name: str,
    communities: list[str],
    *,
    town: str | None,
    serves_page: bool,
    actor: str,
    now: datetime | None = None,
) -> tuple[Channel, str]:
    """A new enabled channel and its key (the only time the key is seen)."""
    name = name.strip()
    if not name or len(name) > MAX_NAME:
        raise ChannelRefused(f"a channel's name has 1 to {MAX_NAME} characters")
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    row = PublicChannel(
        name=name,
        key_digest=digest(key),
        communities=communities,
        town=town,
        serves_page=serves_page,
        enabled=True,
        created_by=actor[:128],
        created_at=now or datetime.now(UTC),
    )
    try:
        with Session(db) as session, session.begin():
            session.add(row)
            session.flush()
            channel = _channel(row)
    except IntegrityError:
        raise ChannelRefused(f"there is already a channel named {name!r}") from None
    return channel, key


def list_channels(db: Engine) -> list[Channel]:
    with Session(db) as session:
        return [_channel(r) for r in session.scalars(select(PublicChannel).order_by(PublicChannel.id))]


def reports_per_channel(db: Engine) -> dict[int, int]:
    """How many reports each channel filed (channels that filed none are absent): one grouped query."""
    with Session(db) as session:
        rows = session.execute(
            select(PublicRequest.channel_id, func.count()).group_by(PublicRequest.channel_id)
        ).all()
        return {channel_id: int(count) for channel_id, count in rows}


def find_channel(db: Engine, channel_id: int) -> Channel | None:
    with Session(db) as session:
        row = session.get(PublicChannel, channel_id)
        return _channel(row) if row else None


def disable_channel(db: Engine, channel_id: int) -> bool:
    """Its key stops working at once; the channel stays, so its reports still say where they came from."""
    with Session(db) as session, session.begin():
        done = session.execute(
            update(PublicChannel).where(PublicChannel.id == channel_id).values(enabled=False)
        )
        return bool(getattr(done, "rowcount", 0))


def channel_for_key(db: Engine, key: str) -> Channel | None:
    """The channel of a key, enabled or not (the caller says which); None for a key nobody issued."""
    if not key.startswith(KEY_PREFIX) or len(key) > 128:
        return None
    with Session(db) as session:
        row = session.scalars(select(PublicChannel).where(PublicChannel.key_digest == digest(key))).first()
        return _channel(row) if row else None


def page_channel(db: Engine) -> Channel | None:
    """The enabled channel the public page files through (the newest, should there be several)."""
    with Session(db) as session:
        row = session.scalars(
            select(PublicChannel)
            .where(PublicChannel.serves_page.is_(True), PublicChannel.enabled.is_(True))
            .order_by(PublicChannel.id.desc())
            .limit(1)
        ).first()
        return _channel(row) if row else None


@dataclass(frozen=True, slots=True)
class Place:
    """Where a resident says the problem is: a grid, and a building or a position when known."""

    community: str
    grid: str
    building: str | None = None
    lat: float | None = None
    lon: float | None = None


def record_request(session: Session, case_id: int, channel: Channel, place: Place, now: datetime) -> str:
    """Remember a report filed through ``channel``; returns its status token (shown once, in the link)."""
    token = secrets.token_urlsafe(24)
    session.add(
        PublicRequest(
            case_id=case_id,
            channel_id=channel.id,
            token_digest=digest(token),
            building=place.building,
            lat=place.lat,
            lon=place.lon,
            created_at=now,
        )
    )
    return token


def followed_request(session: Session, case_id: int, token: str) -> PublicRequest | None:
    """The report of a status link, when the token is its own (else None, as for an unknown number)."""
    row = session.get(PublicRequest, case_id)
    if row is None or not secrets.compare_digest(row.token_digest, digest(token)):
        return None
    return row


def requests_of(session: Session, case_ids: Iterable[int]) -> dict[int, PublicRequest]:
    ids = list(case_ids)
    if not ids:
        return {}
    rows = session.scalars(select(PublicRequest).where(PublicRequest.case_id.in_(ids)))
    return {r.case_id: r for r in rows}


def followed_case(session: Session, case: Case) -> Case:
    """The case whose progress a resident sees: their own, or the one it was merged into."""
    for _ in range(5):  # merges do not chain far; bounded all the same
        target = session.get(Case, case.merged_into) if case.merged_into is not None else None
        if target is None:
            break
        case = target
    return case
