"""The field worker's phone view: my tasks by what falls due first, the case, the actions my role
may take (#22)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(include_in_schema=False)
