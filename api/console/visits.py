"""The console's return-visit list and form (#22)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(include_in_schema=False)
