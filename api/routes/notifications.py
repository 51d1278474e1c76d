"""In-app notifications: the signed-in user's unread assignments, 80 % warnings and supervision
orders (#22), for API clients (bearer token); the console's bell reads the same rows
(``api/console/bell.py``)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Query

from api.console.bell import BellOut, ReadRequest, bell_of, read_them
from api.deps import CurrentUser, ResourcesDep

router = APIRouter(prefix="/api/v1", tags=["notifications"])


@router.get("/notifications")
def my_notifications(
    resources: ResourcesDep,
    user: CurrentUser,
    lang: Annotated[Literal["zh", "en"], Query(description="The language of the messages")] = "zh",
) -> BellOut:
    """The caller's unread count and latest 20 notifications, newest first; each message is plain text."""
    return bell_of(resources, user, lang)


@router.post("/notifications/read")
def read_notifications(
    resources: ResourcesDep,
    user: CurrentUser,
    body: Annotated[ReadRequest, Body()] = ReadRequest(),  # noqa: B008 - an empty body marks all
) -> dict[str, Any]:
    """Mark the caller's notifications read: those of ``ids``, or all of them."""
    return read_them(resources, user, body)
