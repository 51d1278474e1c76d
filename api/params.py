"""Bounds of integer parameters: a larger id or offset than the database column holds is refused as a
bad request (422) instead of overflowing in the driver (a 500)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import Path, Query

MAX_DB_INT = 2**63 - 1
MAX_ROW_ID = 2**31 - 1
"""Row ids are INTEGER columns: 64-bit in SQLite, but 32-bit on PostgreSQL."""

RowId = Annotated[int, Path(ge=1, le=MAX_ROW_ID)]
Offset = Annotated[int, Query(ge=0, le=MAX_DB_INT)]


def in_utc_range(*moments: datetime | None) -> bool:
    """Whether each time is still a date in UTC (9999-12-31T23:00-05:00 is not: the database overflows)."""
    try:
        for moment in moments:
            if moment is not None and moment.tzinfo is not None:
                moment.astimezone(UTC)
    except OverflowError:
        return False
    return True
