"""The command-centre wall: the district at a glance on a big screen (#24)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
