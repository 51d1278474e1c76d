"""Case categories as data: created and changed through the API while the platform runs (#28).

``config/categories.yaml`` is the baseline; categories created or changed here are stored beside it
(``cases.category_store``) and every service's case policy picks them up within seconds, without a
restart: the API itself, the alert engine's intake (a rule may name the new category) and the SLA
clocks. District admins and operators change categories; everyone signed in reads them. Writes are
audited by the middleware; the app-wide body limit is checked before any parsing.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Path, status
from pydantic import BaseModel, ConfigDict, Field

from api.accounts import User
from api.deps import CurrentUser, ResourcesDep
from api.errors import problem
from api.scope import may_change_categories
from cases.categories import URGENCIES, Category
from cases.category_store import (
    CategoryChange,
    CategoryError,
    CategoryExists,
    CategoryStore,
    UnknownCategory,
    check_department,
    check_sla,
    department_of,
)
from contract.ids import FIELD_PATTERN

router = APIRouter(prefix="/api/v1", tags=["categories"])
ID_RE = re.compile(FIELD_PATTERN)
MAX_URGENCIES = 8  # a handful of urgency levels; more is not an SLA but a mistake
MAX_MINUTES = 7 * 24 * 60
CategoryId = Annotated[str, Path(max_length=64, description="The category's id, e.g. air_co2_high.")]
SlaHours = Annotated[
    dict[str, float] | None,
    Field(
        max_length=MAX_URGENCIES,
        description=f"Opened → completed, in hours, for every urgency ({', '.join(URGENCIES)}).",
    ),
]
Clock = Literal["working", "continuous"]


class CategoryIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(
        max_length=64, description="Lowercase letters, digits and underscores; starts with a letter."
    )
    name_zh: str | None = Field(default=None, max_length=64, description="The name in 简体中文 (required).")
    name_en: str | None = Field(default=None, max_length=128, description="The name in English (required).")
    sla_hours: SlaHours = None
    department: str | None = Field(
        default=None, max_length=64, description="The district department its cases go to (required)."
    )
    clock: Clock = Field(
        default="working", description="continuous: every hour counts; working: office hours."
    )
    accept_minutes: float = Field(default=30, gt=0, le=MAX_MINUTES, description="NEW → accepted (受理).")
    sign_minutes: float = Field(default=60, gt=0, le=MAX_MINUTES, description="ASSIGNED → signed for (签收).")


class CategoryPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name_zh: str | None = Field(default=None, max_length=64)
    name_en: str | None = Field(default=None, max_length=128)
    sla_hours: SlaHours = None
    department: str | None = Field(default=None, max_length=64)
    clock: Clock | None = None


class CategoryOut(BaseModel):
    id: str
    name_zh: str
    name_en: str
    sla_hours: dict[str, float] = Field(description="Opened → completed, in hours, per urgency.")
    department: str | None = Field(description="The district department its cases go to.")
    clock: str
    accept_minutes: float
    sign_minutes: float


def _store(resources: ResourcesDep) -> CategoryStore:
    store = resources.policy.category_store
    if store is None:  # create_app always binds the policy to the database
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "categories are read-only here")
    return store


def _require_change(user: User) -> None:
    if not may_change_categories(user):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "only district admins and operators change categories")


def _departments(resources: ResourcesDep) -> dict[str, list[str]]:
    return {d.id: list(d.categories) for d in resources.policy.organisation.departments}


def _out(category: Category, department: str | None) -> CategoryOut:
    return CategoryOut(
        id=category.code,
        name_zh=category.name_zh,
        name_en=category.name_en,
        sla_hours=category.sla_hours_by_urgency(),
        department=department,
        clock=category.clock,
        accept_minutes=category.accept_minutes,
        sign_minutes=category.sign_minutes,
    )


def _name(field: str, value: str | None, language: str, *, required: bool) -> str | None:
    if value is None:
        if required:
            raise CategoryError(f"{field}: required: the category's name in {language}")
        return None
    if not value.strip() or not value.isprintable():
        raise CategoryError(f"{field}: give the name in {language} as printable text, not blank")
    return value.strip()


def _unprocessable(err: Exception) -> HTTPException:
    return HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(err))


@router.get("/categories", response_model=list[CategoryOut])
def list_categories(resources: ResourcesDep, _user: CurrentUser) -> list[CategoryOut]:
    """Every case category as it stands now, config and run-time ones, with its SLA and department."""
    departments = _departments(resources)
    return [_out(c, department_of(c.code, departments)) for c in resources.categories.values()]


@router.post(
    "/categories",
    response_model=CategoryOut,
    status_code=status.HTTP_201_CREATED,
    responses={
        403: problem("Only district admins and operators change categories"),
        409: problem("The id is taken"),
        422: problem("A bad id, a missing name, an urgency without an SLA, an unknown department"),
    },
)
def create_category(body: CategoryIn, resources: ResourcesDep, user: CurrentUser) -> CategoryOut:
    """Create a case category: its id, names in both languages, an SLA for every urgency and the district
    department its cases go to. Every service uses it within seconds; a rule may then name it."""
    _require_change(user)
    departments = _departments(resources)
    try:
        if not ID_RE.fullmatch(body.id):
            raise CategoryError(
                f"id: {body.id!r} is not a category id: use lowercase letters, digits and underscores, "
                "starting with a letter (e.g. air_co2_high)"
            )
        name_zh = _name("name_zh", body.name_zh, "简体中文", required=True)
        name_en = _name("name_en", body.name_en, "English", required=True)
        hours = check_sla(body.sla_hours)
        department = check_department(body.department, departments)
        category = Category(
            code=body.id,
            name_zh=name_zh or "",
            name_en=name_en or "",
            sla_hours=hours["normal"],
            urgent_sla_hours=hours["urgent"],
            accept_minutes=body.accept_minutes,
            sign_minutes=body.sign_minutes,
            clock=body.clock,
        )
        _store(resources).create(
            category, department=department, departments=departments, author=user.username
        )
    except CategoryExists as err:
        raise HTTPException(status.HTTP_409_CONFLICT, str(err)) from err
    except CategoryError as err:
        raise _unprocessable(err) from err
    return _out(category, department)


@router.patch(
    "/categories/{category_id}",
    response_model=CategoryOut,
    responses={
        403: problem("Only district admins and operators change categories"),
        404: problem("No such category"),
        409: problem("Changed by someone else at the same moment: try again"),
        422: problem("Nothing to change, a blank name, a bad SLA, an unknown department"),
    },
)
def change_category(
    category_id: CategoryId, body: CategoryPatch, resources: ResourcesDep, user: CurrentUser
) -> CategoryOut:
    """Change a category's names, SLA (only the urgencies given), department or clock; a configured
    category is changed too (the stored version replaces it).

    **An SLA change applies to cases opened afterwards**: open cases keep the deadline they were given
    when they opened (a case whose urgency is changed later gets a deadline from the SLA of that moment).
    """
    _require_change(user)
    if all(v is None for v in body.model_dump().values()):
        raise _unprocessable(
            CategoryError("nothing to change: give name_zh, name_en, sla_hours, department or clock")
        )
    try:
        change = CategoryChange(
            name_zh=_name("name_zh", body.name_zh, "简体中文", required=False),
            name_en=_name("name_en", body.name_en, "English", required=False),
            sla_hours=body.sla_hours,
            department=body.department,
            clock=body.clock,
        )
        category, department = _store(resources).change(
            category_id, change, departments=_departments(resources), author=user.username
        )
    except UnknownCategory as err:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(err)) from err
    except CategoryExists as err:
        raise HTTPException(status.HTTP_409_CONFLICT, str(err)) from err
    except CategoryError as err:
        raise _unprocessable(err) from err
    return _out(category, department)
