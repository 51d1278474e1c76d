"""Prometheus ``/metrics`` for the API: requests by route and status, and their latency.

Open by default, so the demo and a scraper on the same host work as they are. Route names and
request counts tell an outsider what is used and how much; where the API is reachable beyond the
scraper, set ``YIWANG_METRICS_TOKEN`` and /metrics answers only ``Authorization: Bearer <token>``
(Prometheus: ``authorization: {credentials: <token>}`` in the scrape config).
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request, Response
from prometheus_client import CollectorRegistry, Counter, Histogram, make_asgi_app
from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from starlette.datastructures import Headers
from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from common.settings import refuse_placeholder


class MetricsSettings(BaseSettings):
    """Who may read /metrics (env prefix ``YIWANG_``)."""

    model_config = SettingsConfigDict(env_prefix="YIWANG_", extra="ignore")

    metrics_token: SecretStr | None = Field(
        default=None,
        description="When set, /metrics requires `Authorization: Bearer <token>`; unset, it is open.",
    )

    @field_validator("metrics_token", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @model_validator(mode="after")
    def _no_placeholder(self) -> MetricsSettings:
        token = self.metrics_token.get_secret_value() if self.metrics_token else None
        refuse_placeholder("YIWANG_METRICS_TOKEN", token)
        return self


def require_bearer(inner: ASGIApp, token: str) -> ASGIApp:
    """``inner`` behind ``Authorization: Bearer <token>``; anything else gets 401."""
    expected = token.encode("utf-8")

    async def guarded(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            scheme, _, given = Headers(scope=scope).get("authorization", "").partition(" ")
            # Header values arrive as latin-1 text; their bytes are what the client sent.
            if scheme.lower() != "bearer" or not hmac.compare_digest(
                given.strip().encode("latin-1"), expected
            ):
                refused = PlainTextResponse(
                    "/metrics 需要令牌 / needs a bearer token\n",
                    status_code=401,
                    headers={"WWW-Authenticate": 'Bearer realm="metrics"'},
                )
                await refused(scope, receive, send)
                return
        await inner(scope, receive, send)

    return guarded


def install_metrics(app: FastAPI, settings: MetricsSettings | None = None) -> None:
    """Count requests and serve /metrics; ``settings`` default to the environment's."""
    settings = settings or MetricsSettings()
    # One registry per app: tests build many apps in one process.
    registry = CollectorRegistry()
    requests = Counter(
        "yiwang_api_requests", "HTTP requests", ["method", "route", "status"], registry=registry
    )
    latency = Histogram(
        "yiwang_api_request_seconds",
        "HTTP request latency",
        ["method", "route"],
        registry=registry,
        buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
    )

    async def measure(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        started = time.perf_counter()
        response = await call_next(request)
        # The route template, not the raw path: /api/v1/cases/{case_id}, so ids do not explode cardinality.
        route = getattr(request.scope.get("route"), "path", "unmatched")
        requests.labels(request.method, route, str(response.status_code)).inc()
        latency.labels(request.method, route).observe(time.perf_counter() - started)
        return response

    app.middleware("http")(measure)
    exporter: ASGIApp = make_asgi_app(registry=registry)
    if settings.metrics_token is not None:
        exporter = require_bearer(exporter, settings.metrics_token.get_secret_value())
    app.mount("/metrics", exporter)
