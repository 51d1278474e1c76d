"""Jurisdiction: what each account may see and do, decided here and nowhere else.

District-wide roles see everything; a town operator sees the towns' communities; grid workers and
building heads their grid; a department handler the cases called up to their department. Outside
the jurisdiction a case does not exist (404, never its data); an action the role may not take is 403.
"""

from __future__ import annotations

from typing import Any

from fastapi import HTTPException, status
from sqlalchemy import ColumnElement, and_, false, true

from api.accounts import User
from cases.models import Case
from cases.policy import CasePolicy

DISTRICT_ROLES = frozenset({"admin", "district_operator", "supervisor"})

# Which case actions each role may take (the workflow decides whether the state allows them).
_MANAGE = frozenset(
    {
        "accept",
        "verify",
        "void",
        "assign",
        "return",
        "check",
        "pass",
        "fail",
        "visit",
        "suspend",
        "resume",
        "extend",
        "merge",
        "reopen",
    }
)
ROLE_ACTIONS: dict[str, frozenset[str]] = {
    "admin": frozenset({"*"}),
    "district_operator": frozenset({"*"}),
    "supervisor": _MANAGE,
    # A town also calls the district (镇呼区应) and rates the department's response.
    "town_operator": _MANAGE | {"call_up", "rate_call"},
    "grid_worker": frozenset({"accept", "sign", "feedback"}),
    "building_head": frozenset({"feedback"}),
    "department_handler": frozenset({"respond", "call_return", "call_resolve"}),
}


def case_filter(user: User, policy: CasePolicy) -> ColumnElement[bool]:
    """A WHERE clause selecting the cases ``user`` may see."""
    if user.role == "department_handler":
        return Case.department == user.department
    return area_filter(user, policy, Case.community, Case.grid)


def sees_area(user: User, policy: CasePolicy, community: str, grid: str | None = None) -> bool:
    """Whether a place (a device's, a report's, a KPI scope's) is inside the user's jurisdiction."""
    if user.role in DISTRICT_ROLES:
        return True
    if user.role == "town_operator":
        return policy.organisation.town_of(community) == user.town
    if user.role in ("grid_worker", "building_head"):
        return community == user.community and (grid is None or grid == user.grid)
    return False


def area_filter(user: User, policy: CasePolicy, community: Any, grid: Any) -> ColumnElement[bool]:
    """A WHERE clause on any table with community and grid columns (alerts, for one)."""
    if user.role in DISTRICT_ROLES:
        return true()
    if user.role == "town_operator":
        communities = next((t.communities for t in policy.organisation.towns if t.id == user.town), [])
        return community.in_(communities)  # type: ignore[no-any-return]
    if user.role in ("grid_worker", "building_head"):
        return and_(community == user.community, grid == user.grid)
    return false()


def require_action(user: User, action: str) -> None:
    allowed = ROLE_ACTIONS.get(user.role, frozenset())
    if "*" not in allowed and action not in allowed:
        raise HTTPException(status.HTTP_403_FORBIDDEN, f"a {user.role} may not {action} a case")
