"""A camera case's blurred snapshot, fetched on demand from the gateway for users in scope (#22)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
