"""The FastAPI application: resources are opened once per app and passed to routes as dependencies."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from starlette.middleware.sessions import SessionMiddleware

import yiwang
from alerts.policy import CasePolicy
from alerts.rules import load_rules
from alerts.schema import create_schema as create_case_schema
from api import accounts, audit
from api.deps import Resources
from api.metrics import install_metrics
from api.routes import (
    alerting,
    cases,
    console,
    console_alerts,
    console_case,
    console_fleet,
    devices,
    health,
    kpis,
    open311,
    organisation,
    tokens,
)
from api.security_headers import SecurityHeaders
from api.settings import ApiSettings
from contract.catalog import load_catalog
from ingest.store.factory import open_store
from yiwang.common.db import make_engine
from yiwang.common.heartbeat import create_schema as create_heartbeat_schema


def create_app(settings: ApiSettings) -> FastAPI:
    engine = make_engine(settings.database_url)
    create_case_schema(engine)
    accounts.create_schema(engine)
    audit.create_schema(engine)
    create_heartbeat_schema(engine)
    policy = CasePolicy.load(settings.config_dir, engine)  # with the organisation's run-time changes
    categories = policy.categories
    resources = Resources(
        settings=settings,
        engine=engine,
        series=open_store(settings.series_url),
        catalog=load_catalog(settings.config_dir),
        categories=categories,
        rules=load_rules(settings.config_dir, categories),
        policy=policy,
    )

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        resources.series.close()
        engine.dispose()

    app = FastAPI(title="Yiwang API", version=yiwang.__version__, lifespan=lifespan)
    app.state.resources = resources
    secret = (
        settings.session_secret.get_secret_value() if settings.session_secret else secrets.token_urlsafe(32)
    )
    app.add_middleware(
        SessionMiddleware,
        secret_key=secret,
        same_site="strict",
        https_only=False,
        session_cookie="yiwang_session",
    )
    app.middleware("http")(audit.audit_middleware(engine))
    install_metrics(app)
    app.add_middleware(SecurityHeaders)  # outermost of ours: every response gets the headers
    app.mount("/static", StaticFiles(directory=Path(__file__).resolve().parent / "static"), name="static")
    # Bearer-token routes answer 401 to a missing, unknown or revoked token: documented on each of them.
    for bearer_router in (
        cases.router,
        alerting.router,
        kpis.router,
        organisation.router,
        devices.router,
        tokens.router,
    ):
        app.include_router(
            bearer_router, responses={401: {"description": "Missing, unknown or revoked token"}}
        )
    for router in (
        health.router,
        open311.router,
        console.router,
        console_case.router,
        console_alerts.router,
        console_fleet.router,
    ):
        app.include_router(router)
    return app
