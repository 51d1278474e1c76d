"""One-time links that let a person set their password: the first one (welcome) and after a reset.

The link's secret is random and stored only as its SHA-256 digest; it expires (72 h by default), works
once, and a newer link of the same account replaces it. Using it and setting the password happen in one
transaction that only succeeds while the link is unused, so two tabs racing cannot both use it.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from sqlalchemy import Engine, delete, insert, select, update

from api.accounts import (
    PASSWORD_RULES,
    _utc,
    account_links,
    console_sessions,
    hash_password,
    password_rule_broken,
    users,
)

LINK_LIFETIME = timedelta(hours=72)
WELCOME_PATH = "/console/welcome/"
TOKEN_PATTERN = r"^[A-Za-z0-9_-]{20,64}$"  # noqa: S105 - the shape of a link, no secret
Purpose = Literal["welcome", "reset"]
Refusal = Literal["unknown", "expired", "used"]


@dataclass(frozen=True, slots=True)
class Link:
    """A fresh link: ``path`` carries the secret, shown once to whoever hands it to the person."""

    username: str
    purpose: Purpose
    path: str
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class LinkState:
    """What a presented link is good for: its account and purpose, or why it is refused."""

    username: str | None
    purpose: str | None
    refusal: Refusal | None


class LinkRefused(Exception):
    """The link is unknown, expired or used (``reason``)."""

    def __init__(self, reason: Refusal) -> None:
        super().__init__(f"this link is {reason}")
        self.reason: Refusal = reason


class PasswordRefused(ValueError):
    """The chosen password breaks a password rule: ``rule`` (a key of PASSWORD_RULES), and in words."""

    def __init__(self, rule: str) -> None:
        super().__init__(PASSWORD_RULES[rule])
        self.rule = rule


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue_link(
    db: Engine, username: str, purpose: Purpose, created_by: str, lifetime: timedelta = LINK_LIFETIME
) -> Link:
    """A new link for an existing account; earlier unused links of it stop working.

    A reset also clears the old password and ends the account's console sessions: whoever knew the old
    password is out, and only the link's holder gets in.
    """
    token = secrets.token_urlsafe(32)
    now = datetime.now(UTC)
    with db.begin() as conn:
        user_id = conn.execute(select(users.c.id).where(users.c.username == username)).scalar_one()
        conn.execute(
            update(account_links)
            .where(account_links.c.user_id == user_id, account_links.c.used_at.is_(None))
            .values(used_at=now)
        )
        conn.execute(
            insert(account_links).values(
                user_id=user_id,
                token_sha256=_digest(token),
                purpose=purpose,
                created_by=created_by,
                created_at=now,
                expires_at=now + lifetime,
            )
        )
        if purpose == "reset":
            conn.execute(update(users).where(users.c.id == user_id).values(password_hash=""))
            conn.execute(delete(console_sessions).where(console_sessions.c.user_id == user_id))
    return Link(username, purpose, WELCOME_PATH + token, now + lifetime)


def link_state(db: Engine, token: str) -> LinkState:
    """Whether a presented link may still be used, without using it."""
    with db.connect() as conn:
        row = conn.execute(
            select(account_links, users.c.username, users.c.active)
            .join(users, users.c.id == account_links.c.user_id)
            .where(account_links.c.token_sha256 == _digest(token))
        ).first()
    if row is None:
        return LinkState(None, None, "unknown")
    if row.used_at is not None or not row.active:
        return LinkState(row.username, row.purpose, "used")
    if _utc(row.expires_at) <= datetime.now(UTC):
        return LinkState(row.username, row.purpose, "expired")
    return LinkState(row.username, row.purpose, None)


def redeem(db: Engine, token: str, password: str) -> str:
    """Set the account's password through the link and use the link up; returns the username.

    Raises LinkRefused when the link cannot be used, PasswordRefused (nothing used) when the password
    breaks a rule.
    """
    state = link_state(db, token)
    if state.refusal is not None or state.username is None:
        raise LinkRefused(state.refusal or "unknown")
    if rule := password_rule_broken(state.username, password):
        raise PasswordRefused(rule)
    password_hash = hash_password(password)
    now = datetime.now(UTC)
    with db.begin() as conn:
        used = conn.execute(
            update(account_links)
            .where(
                account_links.c.token_sha256 == _digest(token),
                account_links.c.used_at.is_(None),
                account_links.c.expires_at > now,
            )
            .values(used_at=now)
            .returning(account_links.c.user_id)
        ).first()
        if used is None:  # another request used it meanwhile
            raise LinkRefused("used")
        conn.execute(update(users).where(users.c.id == used.user_id).values(password_hash=password_hash))
        conn.execute(delete(console_sessions).where(console_sessions.c.user_id == used.user_id))
    return state.username
