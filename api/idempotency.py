"""Idempotency keys: a write retried with the same ``Idempotency-Key`` is answered with its first
result (#22).

A phone that lost its signal cannot know whether its action arrived, so it sends it again with the
same key; the second request must not act twice. Any POST, PUT, PATCH or DELETE with the header is
claimed under (caller, key) before it runs: a repeat with the same method, path and body gets the first
status and body back, whatever happened to the case since; the same key with anything else is a 409;
a repeat while the first is still running waits a little, then is told to retry (409).

The caller is the account behind the bearer token or the console session (not the token or cookie
itself): one person's retry after signing in again still finds its key, and two people never share
an answer. Answers that depend on the moment (401, 403, 408, 429, 5xx) are not kept: a retry runs again.
Keys are kept 7 days and the table is bounded (:data:`MAX_KEYS`).

A plain ASGI middleware installed innermost: request bodies are already bounded by BodyLimit and the
session cookie already decoded when it reads them.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from fastapi import FastAPI
from sqlalchemy import Engine, delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.accounts import grant_for_token
from api.console.web import session_user
from cases.attachment_models import IdempotencyKey

HEADER = b"idempotency-key"
REPLAYED_HEADER = "Idempotent-Replayed"
MAX_KEY_LENGTH = 128
_KEY = re.compile(r"^[\x21-\x7e]+$")  # visible ASCII: a UUID, a ULID, a counter
_BOUNDARY = re.compile(r"boundary=(\"[^\"]+\"|[^;\s]+)", re.IGNORECASE)
WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
KEEP = timedelta(days=7)
MAX_KEYS = 200_000
"""The table's bound: past it the oldest keys go first, even before their 7 days."""
MAX_KEPT_ANSWER = 1024 * 1024
"""A larger answer is not kept; its repeat says the first request succeeded, without the body."""
NOT_KEPT = frozenset({401, 403, 408, 425, 429})
WAIT_FOR_FIRST_S = 5.0
POLL_S = 0.1
ABANDONED_AFTER = timedelta(minutes=2)
"""A key still running after this long belongs to a request that died: the next repeat takes it over."""
PRUNE_EVERY_S = 60.0
# Writes whose answer is a secret shown once (an API token, a one-time link, a channel key) or a sign-in:
# keeping their answer would store the secret in the clear for a week. A key on them is refused.
SECRET_ANSWERS = re.compile(
    r"^/(api/v1/tokens|api/v1/users(/[^/]+/reset)?|api/v1/channels|console/login|console/welcome"
    r"|console/users(/[^/]+/reset)?)/?$"
)
_PATH_LENGTH = 512


def install(app: FastAPI, db: Engine) -> None:
    """Answer a repeated write from its stored first result.

    Appended last to the app's middleware list, so it runs innermost: inside BodyLimit (the body it
    reads is bounded) and SessionMiddleware (the console session is known).
    """
    app.user_middleware.append(Middleware(IdempotencyKeys, db=db))


@dataclass(frozen=True, slots=True)
class Claim:
    """What the key store says about a request: ``new`` (run it, row ``row_id``), ``done`` (replay the
    answer), ``running`` (the first is still at it) or ``mismatch`` (the key was used for another)."""

    outcome: Literal["new", "done", "running", "mismatch"]
    row_id: int = 0
    status: int = 0
    content_type: str | None = None
    body: bytes | None = None
    location: str | None = None


class IdempotencyKeys:
    def __init__(self, app: ASGIApp, db: Engine) -> None:
        self.app, self.db = app, db
        self._pruned_at = float("-inf")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in WRITES:
            await self.app(scope, receive, send)
            return
        key = _header(scope, HEADER)
        if key is None:
            await self.app(scope, receive, send)
            return
        if len(key) > MAX_KEY_LENGTH or not _KEY.match(key):
            await _answer(send, 400, _bad_key(key))
            return
        if SECRET_ANSWERS.match(scope["path"]):
            detail = (
                "this request's answer is a secret shown once (or a sign-in): it is never stored, so it "
                "cannot be replayed; send it without an Idempotency-Key"
            )
            await _answer(send, 400, {"detail": detail, "key": "idempotency_secret_answer"})
            return
        body = await _read_body(receive)  # BodyLimit (outside) stops an oversized one
        replay = _replaying(body, receive)
        identity = await run_in_threadpool(self._identity, scope)
        if identity is None:  # nobody signed in: the route refuses it, nothing to remember
            await self.app(scope, replay, send)
            return
        scope.setdefault("state", {}).setdefault("actor", identity.removeprefix("user:"))  # for the audit log
        request = _Request(identity, key, scope["method"], _path(scope), _fingerprint(scope, body))
        claim = await self._claim_waiting(request)
        if claim.outcome == "mismatch":
            detail = (
                "this Idempotency-Key was already used for a different request (method, path or body); "
                "send a new key for a new request"
            )
            await _answer(send, 409, {"detail": detail, "key": "idempotency_key_reused"})
        elif claim.outcome == "running":
            detail = "a request with this Idempotency-Key is still in progress; retry in a moment"
            await _answer(send, 409, {"detail": detail, "key": "idempotency_in_progress"})
        elif claim.outcome == "done":
            await _replay(send, claim)
        else:
            await self._run_first(scope, replay, send, claim.row_id)

    def _identity(self, scope: Scope) -> str | None:
        """``user:<username>`` of the bearer token or, without one, of the console session."""
        resources = scope["app"].state.resources
        scheme, _, token = (_header(scope, b"authorization") or "").partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            grant = grant_for_token(self.db, token.strip())
            return f"user:{grant.user.username}" if grant is not None else None
        if "session" not in scope:
            return None
        user = session_user(Request(scope), resources)
        return f"user:{user.username}" if user is not None else None

    async def _claim_waiting(self, request: _Request) -> Claim:
        """The claim, after waiting a little for a first request that is still running."""
        deadline = time.monotonic() + WAIT_FOR_FIRST_S
        while True:
            claim = await run_in_threadpool(self._claim, request)
            if claim.outcome != "running" or time.monotonic() >= deadline:
                return claim
            await asyncio.sleep(POLL_S)

    def _claim(self, request: _Request) -> Claim:
        now = datetime.now(UTC)
        if time.monotonic() - self._pruned_at >= PRUNE_EVERY_S:
            self._pruned_at = time.monotonic()
            prune(self.db, now)
        for _ in range(3):  # a row pruned or released between the insert and the read: claim again
            try:
                with Session(self.db) as session, session.begin():
                    row = request.row(now)
                    session.add(row)
                    session.flush()
                    return Claim("new", row_id=row.id)
            except IntegrityError:
                pass  # the key is taken: by this request's first attempt, or by another request
            with Session(self.db) as session, session.begin():
                found = session.scalars(
                    select(IdempotencyKey).where(
                        IdempotencyKey.identity == request.identity, IdempotencyKey.key == request.key
                    )
                ).first()
                if found is None:
                    continue
                if (found.method, found.path, found.body_sha256) != (
                    request.method,
                    request.path,
                    request.body_sha256,
                ):
                    return Claim("mismatch")
                if found.status is not None:
                    return Claim(
                        "done",
                        found.id,
                        found.status,
                        found.content_type,
                        found.response_body,
                        found.location,
                    )
                if found.created_at > now - ABANDONED_AFTER:
                    return Claim("running")
                found.created_at = now  # the first attempt died: this one runs it
                return Claim("new", row_id=found.id)
        return Claim("running")

    async def _run_first(self, scope: Scope, receive: Receive, send: Send, row_id: int) -> None:
        """Run the request and keep its answer under the key (or release the key if it is not kept)."""
        status = 0
        content_type: str | None = None
        location: str | None = None
        chunks: list[bytes] = []
        size = 0

        async def keeping_send(message: Message) -> None:
            nonlocal status, content_type, location, size
            if message["type"] == "http.response.start":
                status = int(message["status"])
                content_type = _header_of(message.get("headers", []), b"content-type")
                location = _header_of(message.get("headers", []), b"location")
            elif message["type"] == "http.response.body":
                size += len(message.get("body", b""))
                if size <= MAX_KEPT_ANSWER:
                    chunks.append(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, keeping_send)
        except BaseException:
            await run_in_threadpool(self._release, row_id)
            raise
        if status == 0 or status >= 500 or status in NOT_KEPT:
            await run_in_threadpool(self._release, row_id)
            return
        body = b"".join(chunks) if size <= MAX_KEPT_ANSWER else None
        answer = Claim("done", row_id, status, content_type, body, location)
        await run_in_threadpool(self._keep, answer)

    def _keep(self, answer: Claim) -> None:
        with Session(self.db) as session, session.begin():
            session.execute(
                update(IdempotencyKey)
                .where(IdempotencyKey.id == answer.row_id)
                .values(
                    status=answer.status,
                    content_type=(answer.content_type or "")[:128] or None,
                    response_body=answer.body,
                    location=(answer.location or "")[:1000] or None,
                )
            )

    def _release(self, row_id: int) -> None:
        with Session(self.db) as session, session.begin():
            session.execute(delete(IdempotencyKey).where(IdempotencyKey.id == row_id))


@dataclass(frozen=True, slots=True)
class _Request:
    identity: str
    key: str
    method: str
    path: str
    body_sha256: str

    def row(self, now: datetime) -> IdempotencyKey:
        return IdempotencyKey(
            identity=self.identity,
            key=self.key,
            method=self.method,
            path=self.path,
            body_sha256=self.body_sha256,
            status=None,
            created_at=now,
        )


def prune(db: Engine, now: datetime) -> None:
    """Forget keys older than 7 days, and the oldest beyond MAX_KEYS."""
    with Session(db) as session, session.begin():
        session.execute(delete(IdempotencyKey).where(IdempotencyKey.created_at < now - KEEP))
        over = (session.scalar(select(func.count()).select_from(IdempotencyKey)) or 0) - MAX_KEYS
        if over > 0:
            oldest = (
                select(IdempotencyKey.id).order_by(IdempotencyKey.created_at).limit(over).scalar_subquery()
            )
            session.execute(delete(IdempotencyKey).where(IdempotencyKey.id.in_(oldest)))


def _bad_key(key: str) -> dict[str, str]:
    if len(key) > MAX_KEY_LENGTH:
        detail = f"the Idempotency-Key is {len(key)} characters; at most {MAX_KEY_LENGTH} are allowed"
    else:
        detail = "the Idempotency-Key must be visible ASCII characters without spaces (e.g. a UUID)"
    return {"detail": detail, "key": "idempotency_key_invalid"}


def _header(scope: Scope, name: bytes) -> str | None:
    return _header_of(scope["headers"], name)


def _header_of(headers: list[tuple[bytes, bytes]], name: bytes) -> str | None:
    for key, value in headers:
        if key.lower() == name:
            return value.decode("latin-1")
    return None


def _path(scope: Scope) -> str:
    query = scope.get("query_string", b"").decode("latin-1")
    path: str = scope["path"] + (f"?{query}" if query else "")
    return path[:_PATH_LENGTH]


def _fingerprint(scope: Scope, body: bytes) -> str:
    """SHA-256 of the body; a multipart body without its boundary, which a client draws anew for every
    send (a browser retrying the same FormData is the same request)."""
    content_type = _header(scope, b"content-type") or ""
    found = _BOUNDARY.search(content_type) if content_type.lower().startswith("multipart/") else None
    if found is not None:
        body = body.replace(b"--" + found.group(1).strip('"').encode("latin-1"), b"--boundary")
    return hashlib.sha256(body).hexdigest()


async def _read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _replaying(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that hands the app the body already read, then whatever the client sends next."""
    delivered = False

    async def replay() -> Message:
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


async def _replay(send: Send, claim: Claim) -> None:
    if claim.body is None:
        note = {"detail": "already done: the first answer to this Idempotency-Key was too large to keep"}
        body, content_type = json.dumps(note).encode(), "application/json"
    else:
        body, content_type = claim.body, claim.content_type or "application/octet-stream"
    headers = [
        (b"content-type", content_type.encode("latin-1")),
        (b"content-length", str(len(body)).encode()),
        (REPLAYED_HEADER.lower().encode(), b"true"),
    ]
    if claim.location:
        headers.append((b"location", claim.location.encode("latin-1")))
    await send({"type": "http.response.start", "status": claim.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _answer(send: Send, status: int, payload: dict[str, str]) -> None:
    body = json.dumps(payload).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
