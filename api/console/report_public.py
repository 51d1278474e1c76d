"""The public reporting page (/report) and a report's status page (/report/{id}), no account needed (#22)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(include_in_schema=False)
