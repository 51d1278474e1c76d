"""Operator accounts and API tokens: argon2 password hashes, tokens stored only as SHA-256 digests."""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import VerificationError
from sqlalchemy import (
    Column,
    DateTime,
    Engine,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Table,
    insert,
    select,
    update,
)

from common.db import create_tables

metadata = MetaData()
_hasher = PasswordHasher()

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
    Column("password_hash", String(256), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
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
)

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
    "department_handler": ("department",),
}


def _from_row(row: Any) -> User:
    return User(
        row.id, row.username, row.display_name, row.role, row.town, row.community, row.grid, row.department
    )


def create_user(
    db: Engine,
    username: str,
    password: str,
    role: str,
    display_name: str = "",
    *,
    town: str | None = None,
    community: str | None = None,
    grid: str | None = None,
    department: str | None = None,
) -> User:
    """A local account; its role decides which jurisdiction fields it needs."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; one of {', '.join(ROLES)}")
    scope = {"town": town, "community": community, "grid": grid, "department": department}
    missing = [f for f in ROLES[role] if not scope[f]]
    if missing:
        raise ValueError(f"a {role} needs {', '.join(missing)}")
    values = {
        **scope,
        "username": username,
        "display_name": display_name,
        "role": role,
        "password_hash": _hasher.hash(password),
        "created_at": datetime.now(UTC),
    }
    with db.begin() as conn:
        user_id = conn.execute(insert(users).values(**values).returning(users.c.id)).scalar_one()
    return User(int(user_id), username, display_name, role, town, community, grid, department)


def set_password(db: Engine, username: str, password: str) -> None:
    with db.begin() as conn:
        conn.execute(
            update(users).where(users.c.username == username).values(password_hash=_hasher.hash(password))
        )


def find_user(db: Engine, username: str) -> User | None:
    with db.connect() as conn:
        row = conn.execute(select(users).where(users.c.username == username)).first()
    return _from_row(row) if row else None


def authenticate(db: Engine, username: str, password: str) -> User | None:
    with db.connect() as conn:
        row = conn.execute(select(users).where(users.c.username == username)).first()
    if row is None:
        _hasher.hash(password)  # spend the same time as a real check: no user enumeration by timing
        return None
    try:
        _hasher.verify(row.password_hash, password)
    except VerificationError:
        return None
    return _from_row(row)


def issue_token(db: Engine, user: User, label: str = "") -> str:
    token = "yw_" + secrets.token_urlsafe(32)
    with db.begin() as conn:
        conn.execute(
            insert(api_tokens).values(
                user_id=user.id, token_sha256=_digest(token), label=label, created_at=datetime.now(UTC)
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


def list_tokens(db: Engine, username: str | None = None) -> list[TokenInfo]:
    """Tokens of one account (or of every account when ``username`` is None), oldest first."""
    query = select(api_tokens, users.c.username).join(users, api_tokens.c.user_id == users.c.id)
    if username is not None:
        query = query.where(users.c.username == username)
    with db.connect() as conn:
        rows = conn.execute(query.order_by(api_tokens.c.id)).all()
    return [TokenInfo(r.id, r.username, r.label, _utc(r.created_at), _utc(r.revoked_at)) for r in rows]


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


def user_for_token(db: Engine, token: str) -> User | None:
    with db.connect() as conn:
        row = conn.execute(
            select(users)
            .join(api_tokens, api_tokens.c.user_id == users.c.id)
            .where(api_tokens.c.token_sha256 == _digest(token), api_tokens.c.revoked_at.is_(None))
        ).first()
    return _from_row(row) if row else None


def ensure_demo_operator(db: Engine, credentials_path: Path) -> dict[str, str]:
    """Demo mode only: a district operator with a fresh password and token, written for the user to read."""
    create_schema(db)
    password = secrets.token_urlsafe(12)
    user = find_user(db, DEMO_USERNAME)
    if user is None:
        user = create_user(db, DEMO_USERNAME, password, role="district_operator", display_name="演示操作员")
    else:
        set_password(db, DEMO_USERNAME, password)
    credentials = {
        "username": DEMO_USERNAME,
        "password": password,
        "token": issue_token(db, user, "demo"),
    }
    credentials_path.parent.mkdir(parents=True, exist_ok=True)
    credentials_path.write_text(json.dumps(credentials, indent=2) + "\n", encoding="utf-8")
    credentials_path.chmod(0o600)
    return credentials
