"""API tokens: list your own (never the secret) and revoke one; an admin sees and revokes anyone's.

A revoked or expired token is refused from the very next request: tokens are looked up in the database
on every request, nothing caches them. Revocations are writes, so the audit log records who revoked which.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, status
from pydantic import BaseModel, Field

from api.accounts import list_tokens, revoke_token
from api.deps import CurrentUser, ResourcesDep
from api.params import RowId
from api.scope import may_manage_tokens_of

router = APIRouter(prefix="/api/v1/tokens", tags=["tokens"])


class TokenOut(BaseModel):
    id: int
    username: str
    label: str
    created_at: datetime
    revoked_at: datetime | None
    expires_at: datetime | None = Field(
        description="Refused from then on; none for tokens older than expiry."
    )
    scope: str | None = Field(description="The only routes it is good for (e.g. open311); none: all.")


@router.get(
    "", response_model=list[TokenOut], responses={403: {"description": "Only an admin lists others'"}}
)
def tokens(
    resources: ResourcesDep,
    user: CurrentUser,
    username: Annotated[
        str | None, Query(max_length=64, description="An admin's view of another account's tokens.")
    ] = None,
    every: Annotated[
        bool, Query(alias="all", description="An admin's view of every account's tokens.")
    ] = False,
) -> list[TokenOut]:
    whose = None if every else (user.username if username is None else username)
    if not may_manage_tokens_of(user, whose):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "only an admin lists other accounts' tokens")
    owner = None if every else (username or user.username)
    return [TokenOut.model_validate(t, from_attributes=True) for t in list_tokens(resources.db, owner)]


@router.delete(
    "/{token_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={404: {"description": "No such token among yours (an admin: among anyone's)"}},
)
def revoke(token_id: RowId, resources: ResourcesDep, user: CurrentUser) -> None:
    """Revoke a token (your own; an admin any). Revoking an already revoked token changes nothing."""
    owned = may_manage_tokens_of(user, None) or any(
        t.id == token_id for t in list_tokens(resources.db, user.username)
    )
    if not owned or not revoke_token(resources.db, token_id):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"token {token_id} not found")
