"""Cases opened by hand: an operator taking a phone call or a 12345 transfer (#23)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(include_in_schema=False)
