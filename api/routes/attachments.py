"""Photos as evidence: upload, list and serve a case's attachments, in the user's jurisdiction only (#22)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
