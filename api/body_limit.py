"""Request bodies are bounded before anything parses them (plain ASGI middleware, nothing buffered).

A declared Content-Length over the limit is answered 413 without reading a byte of the body; a
chunked body is counted as it streams in and refused at the first chunk that passes the limit, so a
client cannot make the process hold more than the limit plus one chunk. The 413 says
``Connection: close``: the server then stops reading the rest of a large upload instead of draining it.
One limit fits JSON and forms; a route may have a smaller one (a rule file to validate) or a larger
one (a case's photo uploads, matched by a pattern since the path names the case).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

DEFAULT_MAX_BYTES = 1024 * 1024


class BodyTooLarge(HTTPException):
    """Raised from ``receive`` so that whoever is reading the body stops; answered 413."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, too_large(limit), headers={"Connection": "close"})


def too_large(limit: int) -> str:
    return f"request body too large: at most {limit:,} bytes here"


class BodyLimit:
    def __init__(
        self,
        app: ASGIApp,
        max_bytes: int = DEFAULT_MAX_BYTES,
        path_limits: Mapping[str, int] | None = None,
        pattern_limits: Sequence[tuple[re.Pattern[str], int]] = (),
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.path_limits = dict(path_limits or {})
        self.pattern_limits = tuple(pattern_limits)  # paths with an id in them (a case's photo uploads)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self._limit(scope["path"])
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            await _refuse(limit, scope, receive, send)
            return
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except BodyTooLarge:
            # Whoever read the body did not turn the exception into an answer (a bare ASGI reader).
            if started:
                raise
            await _refuse(limit, scope, receive, send)

    def _limit(self, path: str) -> int:
        if path in self.path_limits:
            return self.path_limits[path]
        return next((limit for pattern, limit in self.pattern_limits if pattern.match(path)), self.max_bytes)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None  # the HTTP server refuses a malformed length itself
    return None


async def _refuse(limit: int, scope: Scope, receive: Receive, send: Send) -> None:
    response = JSONResponse({"detail": too_large(limit)}, status_code=413, headers={"Connection": "close"})
    await response(scope, receive, send)
