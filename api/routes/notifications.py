"""In-app notifications: the signed-in user's unread assignments, 80 % warnings and supervision
orders (#22)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
