"""Residents' reports through public channels: per-channel keys, rate-limited, never a staff token (#22)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
