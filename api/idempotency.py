"""Idempotency keys: a write retried with the same ``Idempotency-Key`` is answered with its first
result (#22)."""

from __future__ import annotations

from fastapi import FastAPI
from sqlalchemy import Engine


def install(app: FastAPI, db: Engine) -> None:
    """Answer a repeated write from its stored first result (not yet written)."""
