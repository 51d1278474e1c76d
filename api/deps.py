"""Shared FastAPI dependencies: the app's resources and the authenticated caller."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import Engine

from alerts.rules import Rule
from api.accounts import User, grant_for_token
from api.ratelimit import LoginThrottle, StreamSlots
from api.settings import ApiSettings
from cases.attachments import AttachmentStore, open_attachment_store
from cases.categories import Category
from cases.policy import CasePolicy
from contract.catalog import Catalog
from registry.live import LiveCatalog
from series.store import TimeSeriesStore


@dataclass
class Resources:
    settings: ApiSettings
    db: Engine
    series: TimeSeriesStore
    live: LiveCatalog  # the registry as it is now, reloaded when it changes
    rules: list[Rule]
    policy: CasePolicy
    throttle: LoginThrottle = field(init=False)
    streams: StreamSlots = field(default_factory=StreamSlots)
    attachments: AttachmentStore = field(init=False)  # photos of cases (#22)

    @property
    def catalog(self) -> Catalog:
        return self.live.catalog

    @property
    def categories(self) -> dict[str, Category]:
        """The case categories as they are now (config and those created at run time)."""
        return self.policy.categories

    def __post_init__(self) -> None:
        self.throttle = LoginThrottle(
            free_failures=self.settings.login_free_failures,
            backoff_s=self.settings.login_backoff_s,
            backoff_max_s=self.settings.login_backoff_max_s,
        )
        secret = self.settings.attachments_secret_key
        self.attachments = open_attachment_store(
            self.settings.attachments_dir,
            self.settings.attachments_url,
            access_key=self.settings.attachments_access_key,
            secret_key=secret.get_secret_value() if secret else None,
        )


def get_resources(request: Request) -> Resources:
    resources: Resources = request.app.state.resources
    return resources


ResourcesDep = Annotated[Resources, Depends(get_resources)]
_bearer = HTTPBearer(auto_error=False, description="An API token (Authorization: Bearer yw_...).")


def current_user(
    request: Request,
    resources: ResourcesDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> User:
    grant = grant_for_token(resources.db, credentials.credentials) if credentials else None
    if grant is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "a valid bearer token is required (this one is missing, unknown, revoked or expired)",
            headers={"WWW-Authenticate": "Bearer"},
        )
    request.state.actor = grant.user.username  # for the audit log
    if not grant.allows(request.url.path):
        raise HTTPException(status.HTTP_403_FORBIDDEN, f"this token is limited to the {grant.scope} scope")
    return grant.user


CurrentUser = Annotated[User, Depends(current_user)]
