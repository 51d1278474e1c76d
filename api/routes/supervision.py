"""Supervision orders (督办), automatic and manual, and the monthly 通报 list (#24)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/api/v1", tags=["supervision"])
