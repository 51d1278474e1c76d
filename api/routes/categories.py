"""Case categories as data: created and changed through the API while the platform runs (#28)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/api/v1", tags=["categories"])
