"""Accounts for the organisation's people: create, first-login link, reset, deactivate (#22)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/api/v1", tags=["users"])
