"""The audit log for oversight: who changed what (which case, which setting), when, from where —
filtered, paged newest first, and exported as CSV. For admins and inspectors (纪委) only."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, status
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from api.accounts import User
from api.audit import AuditEntry, AuditFilter, iter_audit, read_audit
from api.deps import CurrentUser, ResourcesDep
from api.params import MAX_ROW_ID, in_utc_range
from api.scope import may_read_audit

router = APIRouter(prefix="/api/v1", tags=["audit"])
PAGE_MAX = 500
CSV_COLUMNS = ("id", "at", "actor", "method", "path", "status", "client")
# A spreadsheet runs a cell starting with one of these as a formula (CSV injection).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


class AuditEntryOut(BaseModel):
    id: int
    at: datetime
    actor: str = Field(description="The account; 'anonymous' when nobody was signed in.")
    method: str
    path: str = Field(description="What was changed: the case, the setting, the account.")
    status: int = Field(description="How it ended: 2xx done, 4xx refused.")
    client: str = Field(description="Where from: the client address.")


class AuditPage(BaseModel):
    entries: list[AuditEntryOut]
    next_before: int | None = Field(description="Pass as `before` for the next (older) page; none: no more.")


def audit_filter(
    actor: Annotated[str | None, Query(max_length=128, description="Exactly this account.")] = None,
    path: Annotated[
        str | None, Query(max_length=512, description="Paths starting with this, e.g. /api/v1/cases/12")
    ] = None,
    method: Annotated[Literal["POST", "PUT", "PATCH", "DELETE"] | None, Query()] = None,
    status_code: Annotated[int | None, Query(alias="status", ge=100, le=599)] = None,
    since: Annotated[datetime | None, Query(alias="from", description="From this time (inclusive).")] = None,
    until: Annotated[datetime | None, Query(alias="to", description="Until this time (exclusive).")] = None,
) -> AuditFilter:
    if not in_utc_range(since, until):
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_ENTITY, "from/to is not a time the log can hold")
    return AuditFilter(actor, path, method, status_code, since, until)


Filter = Annotated[AuditFilter, Depends(audit_filter)]


def _require_auditor(user: User) -> None:
    if not may_read_audit(user):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "the audit log is for admins and inspectors")


@router.get("/audit", response_model=AuditPage, responses={403: {"description": "Not an admin or inspector"}})
def audit(
    resources: ResourcesDep,
    user: CurrentUser,
    where: Filter,
    limit: Annotated[int, Query(ge=1, le=PAGE_MAX)] = 100,
    before: Annotated[
        int | None, Query(ge=1, le=MAX_ROW_ID, description="Entries older than this id.")
    ] = None,
) -> AuditPage:
    """Writes through the API and the console, newest first."""
    _require_auditor(user)
    entries = read_audit(resources.db, where, limit=limit, before=before)
    return AuditPage(
        entries=[AuditEntryOut.model_validate(e, from_attributes=True) for e in entries],
        next_before=entries[-1].id if len(entries) == limit else None,
    )


def safe_cell(value: object) -> str:
    """A cell a spreadsheet shows as text: a leading formula character is quoted away."""
    text = str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def _csv_rows(entries: Iterator[AuditEntry]) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    for n, e in enumerate(entries, 1):
        writer.writerow(
            [safe_cell(v) for v in (e.id, e.at.isoformat(), e.actor, e.method, e.path, e.status, e.client)]
        )
        if n % 500 == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


@router.get(
    "/exports/audit.csv",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"text/csv": {}}, "description": "Every matching entry, newest first"},
        403: {"description": "Not an admin or inspector"},
    },
)
def audit_csv(resources: ResourcesDep, user: CurrentUser, where: Filter) -> StreamingResponse:
    """The same entries as /audit, every page of them, as CSV (UTF-8, times in UTC)."""
    _require_auditor(user)
    return StreamingResponse(
        _csv_rows(iter_audit(resources.db, where)),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="audit.csv"'},
    )
