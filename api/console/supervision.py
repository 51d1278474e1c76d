"""The console's supervision page: orders, answers and the monthly 通报 (#24)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
