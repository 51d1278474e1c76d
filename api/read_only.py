"""Read-only accounts (the inspector) change nothing: every write they send is refused here, once for
the whole app, before any route looks at it — not left to each route to remember."""

from __future__ import annotations

from fastapi import HTTPException, Request, status

from api.accounts import User, grant_for_token
from api.console.web import LOGIN, session_user
from api.deps import ResourcesDep
from api.scope import may_write

READS = frozenset({"GET", "HEAD", "OPTIONS"})
# Signing in and out changes no case or setting: a read-only account may do both.
ALWAYS_ALLOWED = frozenset({LOGIN, "/console/logout"})


def _caller(request: Request, resources: ResourcesDep) -> User | None:
    """Whoever the request speaks for: its bearer token's account, else its console session's."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token:
        grant = grant_for_token(resources.db, token.strip())
        return grant.user if grant is not None else None
    return session_user(request, resources) if "session" in request.scope else None


def refuse_read_only_writes(request: Request, resources: ResourcesDep) -> None:
    """An app-wide dependency: 403 to a read-only account's write. Anyone else passes untouched (the
    route authenticates and authorises as it always does)."""
    if request.method in READS or request.url.path in ALWAYS_ALLOWED:
        return
    user = _caller(request, resources)
    if user is not None and not may_write(user):
        request.state.actor = user.username  # the audit log records who tried
        raise HTTPException(status.HTTP_403_FORBIDDEN, f"the account {user.username} may read, not change")
