"""The console's account pages: people of the organisation and their logins (#22)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
