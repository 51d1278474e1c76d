"""The documented shape of the API's error answers, so clients and schema checks know what a 4xx holds.

Routes raise ``HTTPException(code, "a sentence")``; FastAPI's own request validation answers 422 with a
list of errors. A route that can answer 422 both ways documents ``problem(...)`` for it.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class Problem(BaseModel):
    detail: str | list[dict[str, Any]] = Field(
        description="Why the request was refused: a sentence, or FastAPI's list of validation errors."
    )


def problem(description: str) -> dict[str, Any]:
    """A ``responses=`` entry: an error answer with its reason in ``detail``."""
    return {"model": Problem, "description": description}
