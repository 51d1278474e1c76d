"""Shared FastAPI dependencies: the app's resources and the authenticated caller."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import Engine

from alerts.rules import Rule
from api.accounts import User, user_for_token
from api.ratelimit import LoginThrottle
from api.settings import ApiSettings
from cases.categories import Category
from cases.policy import CasePolicy
from contract.catalog import Catalog
from series.store import TimeSeriesStore


@dataclass
class Resources:
    settings: ApiSettings
    db: Engine
    series: TimeSeriesStore
    catalog: Catalog
    categories: dict[str, Category]
    rules: list[Rule]
    policy: CasePolicy
    throttle: LoginThrottle = field(default_factory=LoginThrottle)


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
    user = user_for_token(resources.db, credentials.credentials) if credentials else None
    if user is not None:
        request.state.actor = user.username  # for the audit log
    if user is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "a valid bearer token is required",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return user


CurrentUser = Annotated[User, Depends(current_user)]
