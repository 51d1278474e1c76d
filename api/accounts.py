"""Operator accounts, console sessions and API tokens: argon2 password hashes; session ids and tokens
stored only as SHA-256 digests, so a copy of the database signs nobody in."""

from __future__ import annotations

import hashlib
import json
import secrets
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import VerificationError
from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    Engine,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Table,
    delete,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy import true as sa_true

from common.db import create_tables
from common.private_files import write_private

metadata = MetaData()
_hasher = PasswordHasher()
MAX_CONCURRENT_HASHES = 4
"""Each argon2 hash takes ~64 MiB and a core for a while: a burst of logins waits instead of exhausting
the box."""
_hashing = threading.BoundedSemaphore(MAX_CONCURRENT_HASHES)

users = Table(
    "users",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("username", String(64), nullable=False, unique=True),
    Column("display_name", String(128), nullable=False, default=""),
    Column("role", String(32), nullable=False),
    # Jurisdiction: which part of the district this account sees (see api/scope.py).
    Column("town", String(64)),
    Column("community", String(64)),
    Column("grid", String(64)),
    Column("department", String(64)),
    # "" until the person sets one through their one-time link (nothing verifies against it).
    Column("password_hash", String(256), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    # The person of the organisation the account belongs to; None for accounts made before #22.
    Column("person", String(64)),
    # A deactivated account signs nobody in: its sessions and tokens ended when it was deactivated.
    Column("active", Boolean, nullable=False, default=True, server_default=sa_true()),
)

api_tokens = Table(
    "api_tokens",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("user_id", ForeignKey("users.id"), nullable=False, index=True),
    Column("token_sha256", String(64), nullable=False, unique=True),
    Column("label", String(64), nullable=False, default=""),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("revoked_at", DateTime(timezone=True)),
    Column("expires_at", DateTime(timezone=True)),
    # None: every route the account may use; else one of SCOPES.
    Column("scope", String(32)),
)

console_sessions = Table(
    "console_sessions",
    metadata,
    Column("id_sha256", String(64), primary_key=True),
    Column("user_id", ForeignKey("users.id"), nullable=False, index=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("last_seen_at", DateTime(timezone=True), nullable=False),
)

account_links = Table(
    "account_links",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("user_id", ForeignKey("users.id"), nullable=False, index=True),
    Column("token_sha256", String(64), nullable=False, unique=True),
    # "welcome" (the first password) or "reset" (a new one): the page words it accordingly.
    Column("purpose", String(16), nullable=False),
    Column("created_by", String(64), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    # Set when the link was used, or replaced by a newer one: it never works again.
    Column("used_at", DateTime(timezone=True)),
)

TOKEN_LIFETIME = timedelta(days=90)
SCOPES = {"open311": "/open311/", "releases": "/api/v1/releases/"}
"""A scoped token's name → the path prefix it is good for; it is refused (403) everywhere else."""

DEMO_USERNAME = "demo-operator"


@dataclass(frozen=True, slots=True)
class User:
    id: int
    username: str
    display_name: str
    role: str
    town: str | None = None
    community: str | None = None
    grid: str | None = None
    department: str | None = None


MIN_PASSWORD = 10
MAX_PASSWORD = 256  # the login form's limit


PASSWORD_RULES = {
    "too_short": f"the password must have at least {MIN_PASSWORD} characters",
    "too_long": f"the password must have at most {MAX_PASSWORD} characters",
    "has_username": "the password must not contain the username",
    "too_plain": "the password must use at least 4 different characters",
}


def password_rule_broken(username: str, password: str) -> str | None:
    """The first password rule (a key of PASSWORD_RULES) ``password`` breaks; None when it keeps them."""
    if len(password) < MIN_PASSWORD:
        return "too_short"
    if len(password) > MAX_PASSWORD:
        return "too_long"
    if username.lower() in password.lower():
        return "has_username"
    if len(set(password)) < 4:
        return "too_plain"
    return None


def password_problem(username: str, password: str) -> str | None:
    """What is wrong with a password a person chose (None: nothing); the same rules everywhere."""
    rule = password_rule_broken(username, password)
    return PASSWORD_RULES[rule] if rule else None


def create_schema(db: Engine) -> None:
    create_tables(db, metadata)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


ROLES = {
    "admin": (),
    "district_operator": (),
    "supervisor": (),
    "town_operator": ("town",),
    "grid_worker": ("community", "grid"),
    "building_head": ("community", "grid"),
    "street_steward": ("community", "grid"),
    "department_handler": ("department",),
    # District-wide and read-only (纪委): api/scope.py lets it read and refuses it every write.
    "inspector": (),
}


def _from_row(row: Any) -> User:
    return User(
        row.id, row.username, row.display_name, row.role, row.town, row.community, row.grid, row.department
    )


def create_user(
    db: Engine,
    username: str,
    password: str | None,
    role: str,
    display_name: str = "",
    *,
    town: str | None = None,
    community: str | None = None,
    grid: str | None = None,
    department: str | None = None,
    person: str | None = None,
) -> User:
    """A local account; its role decides which jurisdiction fields it needs.

    ``password`` None: nobody can sign in until the person sets one through a one-time link.
    """
    scope = {"town": town, "community": community, "grid": grid, "department": department}
    check_jurisdiction(role, scope)
    values = {
        **scope,
        "username": username,
        "display_name": display_name,
        "role": role,
        "password_hash": _hasher.hash(password) if password is not None else "",
        "created_at": datetime.now(UTC),
        "person": person,
        "active": True,
    }
    with db.begin() as conn:
        user_id = conn.execute(insert(users).values(**values).returning(users.c.id)).scalar_one()
    return User(int(user_id), username, display_name, role, town, community, grid, department)


def check_jurisdiction(role: str, scope: dict[str, str | None]) -> None:
    """ValueError naming what a role lacks: an unknown role, or the jurisdiction fields it needs."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; one of {', '.join(ROLES)}")
    missing = [f for f in ROLES[role] if not scope[f]]
    if missing:
        raise ValueError(f"a {role} needs {', '.join(missing)}")


@dataclass(frozen=True, slots=True)
class Account:
    """An account as the people who manage it see it: never its password hash."""

    user: User
    person: str | None
    active: bool
    has_password: bool
    created_at: datetime


def list_accounts(db: Engine) -> list[Account]:
    """Every account, by username."""
    with db.connect() as conn:
        rows = conn.execute(select(users).order_by(users.c.username)).all()
    return [_account(r) for r in rows]


def find_account(db: Engine, username: str) -> Account | None:
    with db.connect() as conn:
        row = conn.execute(select(users).where(users.c.username == username)).first()
    return _account(row) if row else None


def _account(row: Any) -> Account:
    return Account(
        _from_row(row), row.person, bool(row.active), row.password_hash != "", _utc(row.created_at)
    )


def change_role(db: Engine, username: str, role: str, scope: dict[str, str | None]) -> None:
    """A new role and jurisdiction; live sessions and tokens carry the new one from the next request."""
    check_jurisdiction(role, scope)
    with db.begin() as conn:
        conn.execute(update(users).where(users.c.username == username).values(role=role, **scope))


def deactivate(db: Engine, username: str) -> None:
    """Nobody signs in as the account any more: its console sessions end, its API tokens and unused
    one-time links are revoked, all in one transaction, so the very next request is refused."""
    now = datetime.now(UTC)
    with db.begin() as conn:
        user_id = conn.execute(select(users.c.id).where(users.c.username == username)).scalar_one()
        conn.execute(update(users).where(users.c.id == user_id).values(active=False))
        conn.execute(delete(console_sessions).where(console_sessions.c.user_id == user_id))
        conn.execute(
            update(api_tokens)
            .where(api_tokens.c.user_id == user_id, api_tokens.c.revoked_at.is_(None))
            .values(revoked_at=now)
        )
        conn.execute(
            update(account_links)
            .where(account_links.c.user_id == user_id, account_links.c.used_at.is_(None))
            .values(used_at=now)
        )


def reactivate(db: Engine, username: str) -> None:
    """The account may sign in again with its password; its revoked tokens stay revoked."""
    with db.begin() as conn:
        conn.execute(update(users).where(users.c.username == username).values(active=True))


def hash_password(password: str) -> str:
    """An argon2 hash, one of at most MAX_CONCURRENT_HASHES at a time."""
    with _hashing:
        return _hasher.hash(password)


def set_password(db: Engine, username: str, password: str) -> None:
    """A new password; every console session of the account ends with the old one."""
    password_hash = hash_password(password)
    with db.begin() as conn:
        conn.execute(update(users).where(users.c.username == username).values(password_hash=password_hash))
        user_ids = select(users.c.id).where(users.c.username == username).scalar_subquery()
        conn.execute(delete(console_sessions).where(console_sessions.c.user_id == user_ids))


def find_user(db: Engine, username: str) -> User | None:
    with db.connect() as conn:
        row = conn.execute(select(users).where(users.c.username == username)).first()
    return _from_row(row) if row else None


def authenticate(db: Engine, username: str, password: str) -> User | None:
    """The account, when it is active, has a password and ``password`` is it."""
    with db.connect() as conn:
        row = conn.execute(
            select(users).where(users.c.username == username, users.c.active, users.c.password_hash != "")
        ).first()
    with _hashing:
        if row is None:
            _hasher.hash(password)  # spend the same time as a real check: no user enumeration by timing
            return None
        try:
            _hasher.verify(row.password_hash, password)
        except VerificationError:
            return None
    return _from_row(row)


@dataclass(frozen=True, slots=True)
class SessionLifetime:
    idle: timedelta
    absolute: timedelta


def start_session(db: Engine, user: User, lifetime: SessionLifetime) -> str:
    """A new console session of ``user``: its id goes into the (signed) cookie, its digest into the table.

    Sessions past their lifetime are swept here, so the table holds only live ones.
    """
    session_id = secrets.token_urlsafe(32)
    now = datetime.now(UTC)
    with db.begin() as conn:
        conn.execute(
            delete(console_sessions).where(
                or_(
                    console_sessions.c.last_seen_at < now - lifetime.idle,
                    console_sessions.c.created_at < now - lifetime.absolute,
                )
            )
        )
        conn.execute(
            insert(console_sessions).values(
                id_sha256=_digest(session_id), user_id=user.id, created_at=now, last_seen_at=now
            )
        )
    return session_id


def session_owner(db: Engine, session_id: str, lifetime: SessionLifetime) -> User | None:
    """The user of a live console session; None when it ended (signed out, password changed, expired).

    Its idle clock restarts; the write is skipped while the last one is recent, so pages stay reads.
    """
    now = datetime.now(UTC)
    with db.connect() as conn:
        row = conn.execute(
            select(
                users,
                console_sessions.c.created_at.label("session_created_at"),
                console_sessions.c.last_seen_at,
            )
            .join(console_sessions, console_sessions.c.user_id == users.c.id)
            .where(console_sessions.c.id_sha256 == _digest(session_id), users.c.active)
        ).first()
    if row is None:
        return None
    last_seen = _utc(row.last_seen_at)
    if now - last_seen > lifetime.idle or now - _utc(row.session_created_at) > lifetime.absolute:
        end_session(db, session_id)
        return None
    if now - last_seen > min(lifetime.idle / 8, timedelta(minutes=1)):
        with db.begin() as conn:
            conn.execute(
                update(console_sessions)
                .where(console_sessions.c.id_sha256 == _digest(session_id))
                .values(last_seen_at=now)
            )
    return _from_row(row)


def end_session(db: Engine, session_id: str) -> None:
    with db.begin() as conn:
        conn.execute(delete(console_sessions).where(console_sessions.c.id_sha256 == _digest(session_id)))


def issue_token(
    db: Engine,
    user: User,
    label: str = "",
    *,
    lifetime: timedelta = TOKEN_LIFETIME,
    scope: str | None = None,
) -> str:
    """A new API token of ``user``, good for ``lifetime`` and, with a ``scope``, only for what it names."""
    if scope is not None and scope not in SCOPES:
        raise ValueError(f"unknown token scope {scope!r}; one of {', '.join(SCOPES)}")
    token = "yw_" + secrets.token_urlsafe(32)
    now = datetime.now(UTC)
    with db.begin() as conn:
        conn.execute(
            insert(api_tokens).values(
                user_id=user.id,
                token_sha256=_digest(token),
                label=label,
                created_at=now,
                expires_at=now + lifetime,
                scope=scope,
            )
        )
    return token


@dataclass(frozen=True, slots=True)
class TokenInfo:
    """A token as its owner and admins see it: never the secret, which is stored only as a digest."""

    id: int
    username: str
    label: str
    created_at: datetime
    revoked_at: datetime | None
    expires_at: datetime | None
    scope: str | None


def list_tokens(db: Engine, username: str | None = None) -> list[TokenInfo]:
    """Tokens of one account (or of every account when ``username`` is None), oldest first."""
    query = select(api_tokens, users.c.username).join(users, api_tokens.c.user_id == users.c.id)
    if username is not None:
        query = query.where(users.c.username == username)
    with db.connect() as conn:
        rows = conn.execute(query.order_by(api_tokens.c.id)).all()
    return [
        TokenInfo(
            r.id, r.username, r.label, _utc(r.created_at), _utc(r.revoked_at), _utc(r.expires_at), r.scope
        )
        for r in rows
    ]


def _utc(value: Any) -> Any:
    """SQLite hands timestamps back without their offset; they were stored in UTC."""
    return value.replace(tzinfo=UTC) if isinstance(value, datetime) and value.tzinfo is None else value


def revoke_token(db: Engine, token_id: int) -> bool:
    """Revoke a token from now on; False when there is no such token. Revoking twice keeps the first time.

    Every request looks its token up in the database (no cache), so the next request is already refused.
    """
    with db.begin() as conn:
        found = conn.execute(select(api_tokens.c.id).where(api_tokens.c.id == token_id)).first()
        conn.execute(
            update(api_tokens)
            .where(api_tokens.c.id == token_id, api_tokens.c.revoked_at.is_(None))
            .values(revoked_at=datetime.now(UTC))
        )
    return found is not None


@dataclass(frozen=True, slots=True)
class Grant:
    """What a presented token grants: its account, and the scope it is limited to (None: none)."""

    user: User
    scope: str | None

    def allows(self, path: str) -> bool:
        return self.scope is None or path.startswith(SCOPES[self.scope])


def grant_for_token(db: Engine, token: str) -> Grant | None:
    """The grant of a live token; None for an unknown, revoked or expired one."""
    with db.connect() as conn:
        row = conn.execute(
            select(users, api_tokens.c.scope.label("token_scope"))
            .join(api_tokens, api_tokens.c.user_id == users.c.id)
            .where(
                api_tokens.c.token_sha256 == _digest(token),
                api_tokens.c.revoked_at.is_(None),
                users.c.active,
                or_(api_tokens.c.expires_at.is_(None), api_tokens.c.expires_at > datetime.now(UTC)),
            )
        ).first()
    return Grant(_from_row(row), row.token_scope) if row else None


def user_for_token(db: Engine, token: str) -> User | None:
    """The account of a live token that is good for every route (unscoped)."""
    grant = grant_for_token(db, token)
    return grant.user if grant is not None and grant.scope is None else None


def _revoke_tokens_labelled(db: Engine, user: User, label: str) -> None:
    with db.begin() as conn:
        conn.execute(
            update(api_tokens)
            .where(
                api_tokens.c.user_id == user.id,
                api_tokens.c.label == label,
                api_tokens.c.revoked_at.is_(None),
            )
            .values(revoked_at=datetime.now(UTC))
        )


def ensure_demo_operator(db: Engine, credentials_path: Path) -> dict[str, str]:
    """Demo mode only: a district operator with a fresh password and token, written for the user to read.

    The previous demo token is revoked: only the one in the credentials file works.
    """
    create_schema(db)
    password = secrets.token_urlsafe(12)
    user = find_user(db, DEMO_USERNAME)
    if user is None:
        user = create_user(db, DEMO_USERNAME, password, role="district_operator", display_name="演示操作员")
    else:
        set_password(db, DEMO_USERNAME, password)
        _revoke_tokens_labelled(db, user, "demo")
    credentials = {
        "username": DEMO_USERNAME,
        "password": password,
        "token": issue_token(db, user, "demo"),
    }
    credentials_path.parent.mkdir(parents=True, exist_ok=True)
    write_private(credentials_path, json.dumps(credentials, indent=2) + "\n")
    return credentials
