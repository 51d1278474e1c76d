"""Rows of made-up cases and events for the benches that bulk-load a case database (api, reports)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any


def case_row(
    case_id: int,
    *,
    opened: datetime,
    grid: str,
    category: str,
    state: str,
    source: str,
    stage: str,
    **columns: Any,
) -> dict[str, Any]:
    """A ``cases`` row in the demo community and town, a warning due 8 hours after it opened;
    ``columns`` add or override columns (urgency, department, reporter phone, ...)."""
    return {
        "id": case_id,
        "community": "zhuganxiang",
        "grid": grid,
        "category": category,
        "state": state,
        "title": f"{category} #{case_id}",
        "source": source,
        "severity": "warning",
        "opened_at": opened,
        "updated_at": opened + timedelta(hours=1),
        "deadline": opened + timedelta(hours=8),
        "version": 1,
        "description": "",
        "owner_town": "yuehe",
        "stage": stage,
        "stage_warned": False,
        "breaches": 0,
        **columns,
    }


def event_row(case_id: int, at: datetime, action: str, data: dict[str, Any] | None = None) -> dict[str, Any]:
    """A ``case_events`` row written by the bench, without a state change."""
    return {
        "case_id": case_id,
        "at": at,
        "actor": "bench",
        "action": action,
        "from_state": None,
        "to_state": None,
        "note": "",
        "data": data or {},
    }
