"""Security headers on every response, as plain ASGI middleware (it must not buffer the SSE stream).

- Content-Security-Policy: the console is server-rendered with its script and styles in ``/static``,
  so nothing inline runs and only this origin is reached. FastAPI's ``/docs`` and ``/redoc`` pages load
  their viewer from a CDN and start it with an inline script: they get their own, looser policy.
- X-Content-Type-Options, X-Frame-Options (and ``frame-ancestors``), Referrer-Policy, Permissions-Policy.
- Strict-Transport-Security only on requests that arrived over https: on plain http the header is
  ignored by browsers anyway, and a local ``make run`` must not pin localhost to https. Behind a TLS
  proxy, run uvicorn with ``--proxy-headers``/``--forwarded-allow-ips`` so the scheme is seen as https.
- Cache-Control: no-store on everything but ``/static``: API answers and console pages carry
  jurisdiction-bound data that no shared or browser cache should keep.
- The session cookie gets ``Secure`` when the request came over https (Starlette's SessionMiddleware
  already sets HttpOnly and SameSite=strict).
"""

from __future__ import annotations

from collections.abc import Sequence

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send


def console_csp(image_origins: Sequence[str] = ()) -> str:
    """The console's policy; ``image_origins`` (a map's tile service) may also serve images."""
    return "; ".join(
        (
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self'",
            " ".join(("img-src 'self' data:", *image_origins)),
            "connect-src 'self'",
            "form-action 'self'",
            "frame-ancestors 'none'",
            "base-uri 'none'",
            "object-src 'none'",
        )
    )


CONSOLE_CSP = console_csp()
_CDN = "https://cdn.jsdelivr.net"
DOCS_CSP = "; ".join(
    (
        "default-src 'self'",
        f"script-src 'self' 'unsafe-inline' {_CDN}",
        f"style-src 'self' 'unsafe-inline' {_CDN}",
        f"img-src 'self' data: https://fastapi.tiangolo.com {_CDN}",
        "worker-src 'self' blob:",
        "connect-src 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
        "object-src 'none'",
    )
)
DOCS_PATHS = ("/docs", "/redoc")
HSTS = "max-age=31536000; includeSubDomains"
COMMON = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=(), usb=()",
    "Cross-Origin-Opener-Policy": "same-origin",
}
SESSION_COOKIE = "yiwang_session="


class SecurityHeaders:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        https = scope.get("scheme") == "https"

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                add_headers(MutableHeaders(scope=message), path, https)
            await send(message)

        await self.app(scope, receive, send_with_headers)


def add_headers(headers: MutableHeaders, path: str, https: bool) -> None:
    for name, value in COMMON.items():
        headers.setdefault(name, value)
    docs = path in DOCS_PATHS or path.startswith("/docs/")
    headers.setdefault("Content-Security-Policy", DOCS_CSP if docs else CONSOLE_CSP)
    if not path.startswith("/static/"):
        headers.setdefault("Cache-Control", "no-store")
    if https:
        headers.setdefault("Strict-Transport-Security", HSTS)
        cookies = headers.getlist("set-cookie")
        if any(_lacks_secure(c) for c in cookies):
            del headers["set-cookie"]
            for cookie in cookies:
                headers.append("set-cookie", cookie + "; secure" if _lacks_secure(cookie) else cookie)


def _lacks_secure(cookie: str) -> bool:
    """Whether a Set-Cookie value is the session cookie without the Secure attribute."""
    name_value, *attributes = (part.strip().lower() for part in cookie.split(";"))
    return name_value.startswith(SESSION_COOKIE) and "secure" not in attributes
