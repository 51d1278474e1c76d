"""Return visits (回访): closed cases awaiting a visit, the reporter's phone for the visiting role
only, the outcome (#22)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
