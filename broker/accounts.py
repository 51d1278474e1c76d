"""Broker accounts: per-gateway credentials and the ACL, as Mosquitto's ``password_file`` + ``acl_file``.

The password file is the single source of truth; the ACL is generated from its user names, whose
form says the role (ids are ``[a-z0-9-]``, so the dots cannot be ambiguous):

- ``gw.<community>.<gateway>``: a gateway. It may publish only under its own
  ``yiwang/v1/<community>/<gateway>/#`` and read only its own ``config``. A stolen gateway key cannot
  forge another gateway's data or read another gateway's configuration.
- ``fleet.<community>``: publishes for every gateway of one community and reads their config — for the
  demo's simulator (one process plays all gateways) and a community-level bridge; never across
  communities.
- ``svc.<name>``: a server service (ingest, alerts): reads ``yiwang/v1/#``, publishes nothing.
- ``admin.<name>``: reads everything and publishes desired ``config`` messages (the API/operator).

The broker keys each session by the user name (broker/mosquitto.py), so an account is one
connection at a time: each service replica needs its own (``svc.ingest-1``, ``svc.ingest-2``).

Hashes are Mosquitto 2's ``$7$`` format (PBKDF2-HMAC-SHA512, 101 iterations, 12-byte salt), written
here so provisioning needs no ``mosquitto_passwd`` on the server; a test checks a real Mosquitto
accepts them. After a change, Mosquitto rereads both files on SIGHUP (``systemctl reload mosquitto``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from common.private_files import write_private
from contract.ids import ID_RE
from contract.topics import PREFIX, Topic, TopicKind

ITERATIONS = 101
"""mosquitto_passwd's default for ``$7$`` hashes in 2.0."""
GATEWAY, FLEET, SERVICE, ADMIN = "gw", "fleet", "svc", "admin"


class AccountError(ValueError):
    """A bad id, an account that exists already, or an unreadable password file line."""


@dataclass(frozen=True, slots=True)
class Credentials:
    username: str
    password: str


def hash_password(password: str, *, salt: bytes | None = None, iterations: int = ITERATIONS) -> str:
    salt = salt if salt is not None else os.urandom(12)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations, 64)
    return f"$7${iterations}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def check_password(password: str, hashed: str) -> bool:
    try:
        _, kind, iterations, salt, digest = hashed.split("$")
        if kind != "7":
            return False
        expected = hash_password(password, salt=base64.b64decode(salt), iterations=int(iterations))
    except ValueError:
        return False
    return hmac.compare_digest(expected.split("$")[-1], digest)


def _check_id(what: str, value: str) -> str:
    if not ID_RE.fullmatch(value):
        raise AccountError(f"invalid {what} {value!r}: expected 1-64 of [a-z0-9-]")
    return value


def gateway_username(community: str, gateway: str) -> str:
    return f"{GATEWAY}.{_check_id('community id', community)}.{_check_id('gateway id', gateway)}"


def permissions(username: str) -> list[tuple[str, str]]:
    """(``read`` or ``write``, topic pattern) of one account; empty for a name of no known role."""
    role, _, rest = username.partition(".")
    if role == GATEWAY:
        community, _, gateway = rest.partition(".")
        # Upstream kinds only: a gateway must not rewrite its own desired config.
        writes = [("write", Topic(community, gateway, kind).path) for kind in TopicKind if kind.upstream]
        reads = [("read", Topic(community, gateway, kind).path) for kind in TopicKind if not kind.upstream]
        return [*writes, *reads]
    if role == FLEET and ID_RE.fullmatch(rest):
        writes = [("write", f"{PREFIX}/{rest}/+/{kind.value}") for kind in TopicKind if kind.upstream]
        return [*writes, *(("read", f"{PREFIX}/{rest}/+/{k.value}") for k in TopicKind if not k.upstream)]
    if role == SERVICE:
        return [("read", f"{PREFIX}/#")]
    if role == ADMIN:
        downstream = [("write", f"{PREFIX}/+/+/{k.value}") for k in TopicKind if not k.upstream]
        return [("read", f"{PREFIX}/#"), *downstream]
    return []


def acl_for(username: str) -> list[str]:
    """The account's lines of Mosquitto's ``acl_file``."""
    return [f"topic {access} {pattern}" for access, pattern in permissions(username)]


class AccountStore:
    """``passwd`` and ``acl`` in one directory (point Mosquitto's password_file/acl_file at them)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.password_file = directory / "passwd"
        self.acl_file = directory / "acl"

    def _read(self) -> dict[str, str]:
        if not self.password_file.exists():
            return {}
        users: dict[str, str] = {}
        for number, line in enumerate(self.password_file.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip() or line.startswith("#"):
                continue
            name, sep, hashed = line.partition(":")
            if not sep or not hashed:
                raise AccountError(f"{self.password_file}:{number}: expected 'user:hash'")
            users[name] = hashed
        return users

    def usernames(self) -> list[str]:
        return sorted(self._read())

    def verify(self, username: str, password: str) -> bool:
        hashed = self._read().get(username)
        return hashed is not None and check_password(password, hashed)

    def add_gateway(self, community: str, gateway: str, *, rotate: bool = False) -> Credentials:
        return self._add(gateway_username(community, gateway), rotate)

    def add_fleet(self, community: str, *, rotate: bool = False) -> Credentials:
        return self._add(f"{FLEET}.{_check_id('community id', community)}", rotate)

    def add_service(self, name: str, *, admin: bool = False, rotate: bool = False) -> Credentials:
        return self._add(f"{ADMIN if admin else SERVICE}.{_check_id('service name', name)}", rotate)

    def _add(self, username: str, rotate: bool) -> Credentials:
        users = self._read()
        if username in users and not rotate:
            raise AccountError(
                f"account {username} exists already in {self.password_file}; rotate to replace"
            )
        password = secrets.token_urlsafe(24)
        users[username] = hash_password(password)
        self._write(users)
        return Credentials(username, password)

    def _write(self, users: dict[str, str]) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        write_private(self.password_file, "".join(f"{u}:{h}\n" for u, h in sorted(users.items())))
        acl = ["# Generated by yiwang (broker/accounts.py) from the password file; do not edit.", ""]
        for username in sorted(users):
            acl += [f"user {username}", *acl_for(username), ""]
        write_private(self.acl_file, "\n".join(acl))
