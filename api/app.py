"""The FastAPI application: resources are opened once per app and passed to routes as dependencies."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.metadata import version

from fastapi import Depends, FastAPI
from fastapi.staticfiles import StaticFiles
from sqlalchemy import Engine
from starlette.middleware.gzip import GZipMiddleware
from starlette.middleware.sessions import SessionMiddleware

from alerts.rules import load_rules
from alerts.schema import create_schema as create_alert_schema
from api import accounts, audit, idempotency
from api.body_limit import BodyLimit
from api.console import alerts as console_alerts
from api.console import case as console_case
from api.console import channels as console_channels
from api.console import device as console_device
from api.console import field as console_field
from api.console import fleet as console_fleet
from api.console import intake as console_intake
from api.console import kpi_page as console_kpis
from api.console import map as console_map
from api.console import oversight as console_oversight
from api.console import pages as console
from api.console import registry as console_registry
from api.console import report_public as console_report_public
from api.console import supervision as console_supervision
from api.console import users as console_users
from api.console import visits as console_visits
from api.console import wall as console_wall
from api.console.web import STATIC_DIR, SignInRequired, sign_in_first
from api.deps import Resources
from api.metrics import install_metrics
from api.read_only import refuse_read_only_writes
from api.routes import (
    alerting,
    attachments,
    camera_evidence,
    cases,
    deadletters,
    devices,
    exports,
    gateway_config,
    health,
    kpis,
    notifications,
    open311,
    organisation,
    public_reports,
    registry,
    releases,
    reports,
    rollouts,
    sensor_types,
    supervision,
    tokens,
    users,
    visits,
)
from api.routes import audit as audit_routes
from api.routes import categories as category_routes
from api.routes import map as map_routes
from api.security_headers import SecurityHeaders
from api.settings import ApiSettings
from cases.attachments import AttachmentStoreDown
from cases.policy import CasePolicy
from common.db import Base, create_tables, make_engine
from common.heartbeat import create_schema as create_heartbeat_schema
from contract.catalog import load_sensor_types
from registry.config_publisher import DesiredConfigPublisher
from registry.importer import seed_if_empty
from registry.live import LiveCatalog, open_live_catalog
from registry.models import TABLES as REGISTRY_TABLES
from registry.rows import Town
from series.factory import open_store


def open_registry(settings: ApiSettings, db: Engine, policy: CasePolicy) -> LiveCatalog:
    """The live catalog; a registry never seeded is seeded from the community files first."""
    org = policy.organisation
    towns = [Town(t.id, t.name, org.district.name, tuple(t.communities)) for t in org.towns]
    types = {p.id for p in load_sensor_types(settings.config_dir)}
    create_tables(db, Base.metadata, tables=list(REGISTRY_TABLES))
    seed_if_empty(db, settings.config_dir / "communities", towns, types)
    return open_live_catalog(db, settings.config_dir, settings.registry_poll_s)


def create_app(settings: ApiSettings) -> FastAPI:
    db = make_engine(settings.database_url)
    create_alert_schema(db)
    accounts.create_schema(db)
    audit.create_schema(db)
    create_heartbeat_schema(db)
    policy = CasePolicy.load(settings.config_dir, db)  # with the organisation's run-time changes
    live = open_registry(settings, db, policy)
    resources = Resources(
        settings=settings,
        db=db,
        series=open_store(settings.series_url),
        live=live,
        rules=load_rules(settings.config_dir, policy.categories),
        policy=policy,
    )

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        live.start()
        # Desired gateway configs go out from here: the API holds the registry and an admin account
        # (``broker.accounts``: the role that may write ``config`` topics).
        configs = DesiredConfigPublisher(db, settings, poll_s=settings.registry_poll_s)
        configs.start()
        yield
        configs.stop()
        live.stop()
        resources.series.close()
        db.dispose()

    # A read-only account (the inspector) is refused every write, whichever route it aims at.
    app = FastAPI(
        title="Yiwang API",
        version=version("yiwang"),
        lifespan=lifespan,
        dependencies=[Depends(refuse_read_only_writes)],
    )
    app.state.resources = resources
    app.add_exception_handler(SignInRequired, sign_in_first)  # console pages: nobody signed in
    app.add_exception_handler(AttachmentStoreDown, attachments.photo_store_down)  # a 503, nothing kept
    secret = (
        settings.session_secret.get_secret_value() if settings.session_secret else secrets.token_urlsafe(32)
    )
    # An oversized body is refused before any route parses it, and still audited (only the idempotency
    # keys sit inside it, api/idempotency.py).
    app.add_middleware(
        BodyLimit,
        path_limits={
            alerting.VALIDATE_PATH: alerting.RULE_FILE_MAX_BYTES,
            public_reports.REPORT_PATH: public_reports.REPORT_MAX_BYTES,  # a resident's three photos
        },
        pattern_limits=attachments.BODY_LIMITS,
    )
    app.add_middleware(
        SessionMiddleware,
        secret_key=secret,
        same_site="strict",
        https_only=False,
        session_cookie="yiwang_session",
        # The cookie carries a server-side session id (checked on every request); the browser may
        # forget it with the session's absolute lifetime.
        max_age=max(1, int(settings.session_absolute_s)),
    )
    idempotency.install(app, db)  # a retried write (a phone back online) is answered, not applied twice
    app.middleware("http")(audit.audit_middleware(db))
    install_metrics(app)
    app.add_middleware(SecurityHeaders)  # outermost of ours: every response gets the headers
    # Scripts and styles compressed for a worker on a weak link; pages are not (they carry the CSRF token
    # beside text a visitor may put there, the setting of the BREACH attack).
    app.mount("/static", GZipMiddleware(StaticFiles(directory=STATIC_DIR), minimum_size=1024), name="static")
    # Bearer-token routes answer 401 to a missing, unknown or revoked token: documented on each of them.
    for bearer_router in (
        cases.router,
        alerting.router,
        kpis.router,
        organisation.router,
        devices.router,
        registry.router,
        map_routes.router,
        tokens.router,
        releases.router,
        rollouts.router,
        audit_routes.router,
        deadletters.router,
        reports.router,
        exports.router,
        gateway_config.router,
        supervision.router,
        users.router,
        sensor_types.router,
        category_routes.router,
        visits.router,
        notifications.router,
        camera_evidence.router,
    ):
        app.include_router(
            bearer_router, responses={401: {"description": "Missing, unknown or revoked token"}}
        )
    for router in (
        health.router,
        open311.router,
        public_reports.router,
        attachments.router,
        console.router,
        console_kpis.router,
        console_field.router,
        console_intake.router,
        console_report_public.router,
        console_visits.router,
        console_case.router,
        console_device.router,
        console_alerts.router,
        console_fleet.router,
        console_map.router,
        console_oversight.router,
        console_registry.router,
        console_supervision.router,
        console_users.router,
        console_channels.router,
        console_wall.router,
    ):
        app.include_router(router)
    return app
