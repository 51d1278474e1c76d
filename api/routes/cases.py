"""Grid cases: the queue (newest first) and one case with its timeline and evidence."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, status
from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from alerts.models import OPEN_STATES, Case, CaseState
from api.deps import CurrentUser, ResourcesDep
from api.schemas import CaseDetail, CaseEventOut, CaseOut, EvidenceOut, Page

router = APIRouter(prefix="/api/v1/cases", tags=["cases"])


def case_out(case: Case, resources: ResourcesDep) -> CaseOut:
    category = resources.categories.get(case.category)
    return CaseOut(
        id=case.id,
        community=case.community,
        grid=case.grid,
        category=case.category,
        category_name=category.name_zh if category else case.category,
        state=case.state,
        severity=case.severity,
        title=case.title,
        source=case.source,
        opened_at=case.opened_at,
        deadline=case.deadline,
        updated_at=case.updated_at,
    )


@router.get("", response_model=Page[CaseOut])
def list_cases(
    resources: ResourcesDep,
    _user: CurrentUser,
    state: Annotated[list[CaseState] | None, Query(description="Only cases in these states.")] = None,
    open_only: Annotated[
        bool, Query(alias="open", description="Only cases not yet closed, voided or merged.")
    ] = False,
    category: str | None = None,
    grid: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> Page[CaseOut]:
    query = select(Case)
    if state:
        query = query.where(Case.state.in_([s.value for s in state]))
    if open_only:
        query = query.where(Case.state.in_([s.value for s in OPEN_STATES]))
    if category:
        query = query.where(Case.category == category)
    if grid:
        query = query.where(Case.grid == grid)
    with Session(resources.engine) as session:
        total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
        rows = session.scalars(
            query.order_by(Case.opened_at.desc(), Case.id.desc()).limit(limit).offset(offset)
        )
        items = [case_out(c, resources) for c in rows]
    return Page[CaseOut](items=items, total=total, limit=limit, offset=offset)


@router.get("/{case_id}", response_model=CaseDetail, responses={404: {"description": "No such case"}})
def get_case(case_id: int, resources: ResourcesDep, _user: CurrentUser) -> CaseDetail:
    with Session(resources.engine) as session:
        case = session.scalar(
            select(Case)
            .where(Case.id == case_id)
            .options(selectinload(Case.events), selectinload(Case.evidence))
        )
        if case is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"case {case_id} not found")
        return CaseDetail(
            **case_out(case, resources).model_dump(),
            events=[CaseEventOut.model_validate(e, from_attributes=True) for e in case.events],
            evidence=[EvidenceOut.model_validate(e, from_attributes=True) for e in case.evidence],
        )
