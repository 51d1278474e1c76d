"""Response models of the REST API (separate from the database models)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, Field

T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    items: list[T]
    total: int
    limit: int
    offset: int


class CaseOut(BaseModel):
    id: int
    community: str
    grid: str
    category: str
    category_name: str
    state: str
    severity: str
    title: str
    source: str
    opened_at: datetime
    deadline: datetime
    updated_at: datetime
    version: int
    urgency: str
    owner_town: str
    department: str | None
    assignee: str | None
    stage: str
    stage_due: datetime | None
    breaches: int
    merged_into: int | None


class CaseEventOut(BaseModel):
    at: datetime
    actor: str
    action: str
    from_state: str | None
    to_state: str | None
    note: str
    data: dict[str, Any]


class EvidenceOut(BaseModel):
    rule_id: str
    rule_version: int
    device: str
    building: str | None
    location: str
    observed: dict[str, Any]
    observed_at: datetime
    readings: list[tuple[int, bool | int | float | str]] | None = Field(
        default=None,
        description="The readings of the rule's field the alert engine had seen when the alert fired: "
        "[ts_ms, value] pairs, oldest first, the triggering reading included; null for event, timer and "
        "composite rules.",
    )


class WaitingRequestOut(BaseModel):
    """A request of the case's assignee still waiting for its approvers' answer."""

    action: str = Field(description="request_extension or request_return: the action that asked.")
    answer_with: list[str] = Field(
        description="The actions that answer it: extend or return with on_request: true, or refuse_request "
        "with request: the asking action."
    )
    asked_by: str
    asked_at: datetime
    params: dict[str, Any] = Field(description="What was asked: hours and reason, or the return's reason.")


class CaseDetail(CaseOut):
    description: str
    events: list[CaseEventOut]
    evidence: list[EvidenceOut]
    waiting_requests: list[WaitingRequestOut] = Field(
        default_factory=list,
        description="Requests of the assignee (an extension, a return) no approver has answered yet, oldest "
        "first: what an approver's client shows as waiting.",
    )


class TelemetryPoint(BaseModel):
    ts: int
    time: datetime
    values: dict[str, bool | int | float | str]


class FieldOut(BaseModel):
    type: str
    unit: str | None


class Telemetry(BaseModel):
    device: str
    type: str
    fields: dict[str, FieldOut]
    since: datetime
    until: datetime | None
    points: list[TelemetryPoint]


class ComponentHealth(BaseModel):
    ok: bool
    detail: str
    stats: dict[str, Any] | None = None  # a service's own counters (messages, dead letters, ...)


class Health(BaseModel):
    ok: bool
    components: dict[str, ComponentHealth]
