"""Jurisdiction: what each account may see and do, decided here and nowhere else.

District-wide roles see everything; a town operator sees the towns' communities; grid workers and
building heads their grid; a department handler the cases called up to their department. Outside
the jurisdiction a case does not exist (404, never its data); an action the role may not take is 403.
"""

from __future__ import annotations

from typing import Any

from fastapi import HTTPException, status
from sqlalchemy import ColumnElement, and_, false, true

from alerts.silences import Matchers
from api.accounts import User
from cases.kpis import Level
from cases.models import Case
from cases.organisation import Person
from cases.policy import CasePolicy
from cases.workflow import REQUESTS
from contract.catalog import Catalog

DISTRICT_ROLES = frozenset({"admin", "district_operator", "supervisor"})
# The district's inspectors (纪委): they read what district staff read, and change nothing.
READ_ONLY_ROLES = frozenset({"inspector"})
READS_DISTRICT = DISTRICT_ROLES | READ_ONLY_ROLES
# Whom a town operator may add, change or remove (within the town): never district or department staff.
TOWN_MAY_MANAGE = frozenset({"grid_worker", "building_head", "street_steward", "town_operator"})
# Grid-scoped roles: they see their own grid of their community.
GRID_ROLES = frozenset({"grid_worker", "building_head", "street_steward"})

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
        "refuse_request",
    }
)
# The assignee on foot asks for an extension or a return (#22); an approver above answers it.
_ASK = frozenset({"request_extension", "request_return"})
ROLE_ACTIONS: dict[str, frozenset[str]] = {
    "admin": frozenset({"*"}),
    "district_operator": frozenset({"*"}),
    "supervisor": _MANAGE,
    # A town also calls the district (镇呼区应) and rates the department's response.
    "town_operator": _MANAGE | {"call_up", "rate_call"},
    "grid_worker": frozenset({"accept", "sign", "feedback"}) | _ASK,
    "building_head": frozenset({"feedback"}) | _ASK,
    "street_steward": frozenset({"feedback"}) | _ASK,
    "department_handler": frozenset({"respond", "call_return", "call_resolve"}),
}


def case_filter(user: User, policy: CasePolicy) -> ColumnElement[bool]:
    """A WHERE clause selecting the cases ``user`` may see."""
    if user.role == "department_handler":
        return Case.department == user.department
    return area_filter(user, policy, Case.community, Case.grid)


def sees_area(user: User, policy: CasePolicy, community: str, grid: str | None = None) -> bool:
    """Whether a place (a device's, a report's, a KPI scope's) is inside the user's jurisdiction."""
    if user.role in READS_DISTRICT:
        return True
    if user.role == "town_operator":
        return policy.organisation.town_of(community) == user.town
    if user.role in GRID_ROLES:
        return community == user.community and (grid is None or grid == user.grid)
    return False


def area_filter(user: User, policy: CasePolicy, community: Any, grid: Any) -> ColumnElement[bool]:
    """A WHERE clause on any table with community and grid columns (alerts, for one)."""
    if user.role in READS_DISTRICT:
        return true()
    if user.role == "town_operator":
        communities = next((t.communities for t in policy.organisation.towns if t.id == user.town), [])
        return community.in_(communities)  # type: ignore[no-any-return]
    if user.role in GRID_ROLES:
        return and_(community == user.community, grid == user.grid)
    return false()


def sees_district(user: User) -> bool:
    """District staff: the whole district is theirs to see and to manage."""
    return user.role in DISTRICT_ROLES


def may_take(user: User, action: str) -> bool:
    """Whether the role may take a case action at all (the workflow decides whether the state allows it)."""
    allowed = ROLE_ACTIONS.get(user.role, frozenset())
    return "*" in allowed or action in allowed


def require_action(user: User, action: str) -> None:
    if not may_take(user, action):
        raise HTTPException(status.HTTP_403_FORBIDDEN, f"a {user.role} may not {action} a case")


def grid_community(catalog: Catalog, grid: str) -> str | None:
    """The community a grid lies in; None for an id that is no grid."""
    return next((c.id for c in catalog.communities.values() if any(g.id == grid for g in c.grids)), None)


def _district_or_town_of(user: User, policy: CasePolicy, community: str | None) -> bool:
    """District staff, or the operator of the town the community belongs to."""
    return sees_district(user) or (
        user.role == "town_operator" and community is not None and sees_area(user, policy, community)
    )


def may_see_kpis(user: User, policy: CasePolicy, catalog: Catalog, level: Level, scope: str) -> bool:
    """KPIs of a scope in the jurisdiction (as ``sees_area`` judges it); a town's only for its operator."""
    if sees_district(user):
        return True
    if level == "town":
        return user.role == "town_operator" and user.town == scope
    if level == "community":
        return sees_area(user, policy, scope)
    if level == "grid":
        return sees_area(user, policy, grid_community(catalog, scope) or "", scope)
    return False


def kpi_scopes(user: User, policy: CasePolicy) -> list[tuple[Level, str, str]]:
    """(level, id, name) of the scopes whose KPIs the console shows the user, the widest first."""
    org = policy.organisation
    if sees_district(user):
        towns: list[tuple[Level, str, str]] = [("town", t.id, t.name) for t in org.towns]
        return [("district", org.district.id, org.district.name), *towns]
    if user.role == "town_operator" and user.town:
        return [("town", user.town, next((t.name for t in org.towns if t.id == user.town), ""))]
    if user.community and user.grid:
        return [("grid", user.grid, user.grid)]
    return []


def sees_silence(user: User, policy: CasePolicy, community: str | None) -> bool:
    """District staff see every silence; others those of a community in their jurisdiction."""
    return sees_district(user) or (community is not None and sees_area(user, policy, community))


def may_manage_silences(user: User) -> bool:
    """The roles that set and end silences at all (where: ``may_silence``)."""
    return sees_district(user) or user.role == "town_operator"


def may_silence(user: User, policy: CasePolicy, community: str | None) -> bool:
    """Set or end a silence of a community: district staff anywhere, a town operator in the town.

    A silence without a community (a rule district-wide) is district staff's alone.
    """
    return _district_or_town_of(user, policy, community)


# What a silence below the district must name: a whole community's or grid's alarms (fire and gas
# among them) are not a town's to silence.
NARROW_MATCHERS = ("rule", "category", "device")


def silence_too_broad(user: User, matchers: Matchers) -> bool:
    """District staff may silence any matchers; anyone else must name a rule, a category or a device."""
    return not sees_district(user) and not any(getattr(matchers, m) for m in NARROW_MATCHERS)


def may_change_roster(user: User, policy: CasePolicy, community: str | None) -> bool:
    """A grid's duty roster (``community``: the grid's) is district staff's or the town operator's."""
    return _district_or_town_of(user, policy, community)


def may_manage_person(user: User, policy: CasePolicy, catalog: Catalog, role: str, unit: str) -> bool:
    """District staff manage anyone; a town operator the grid staff and operators of their own town."""
    if sees_district(user):
        return True
    if user.role != "town_operator" or role not in TOWN_MAY_MANAGE:
        return False
    if unit == user.town:
        return True
    community = grid_community(catalog, unit)
    return community is not None and sees_area(user, policy, community)


def sees_phone_of(user: User, policy: CasePolicy, catalog: Catalog, person: Person) -> bool:
    """A phone number is personal data: for the person themselves and whoever may manage them."""
    return user.username == person.username or may_manage_person(
        user, policy, catalog, person.role, person.unit
    )


def may_add_towns(user: User) -> bool:
    """Towns are the district's own divisions: only an admin adds one."""
    return user.role == "admin"


def may_manage_registry(user: User, policy: CasePolicy, community: str) -> bool:
    """A community's grids, buildings, gateways and devices: district staff, or its town's operator."""
    return _district_or_town_of(user, policy, community)


def sees_town(user: User, town: str) -> bool:
    return sees_district(user) or user.town == town


def may_change_departments(user: User) -> bool:
    """Departments serve the whole district: only district staff change them."""
    return sees_district(user)


def may_change_categories(user: User) -> bool:
    """Case categories (names, SLAs, departments) serve the whole district: its admins and operators."""
    return user.role in ("admin", "district_operator")


def may_change_definitions(user: User) -> bool:
    """Sensor types and alert rules serve the whole district: its admins and operators (#28)."""
    return user.role in ("admin", "district_operator")


def may_manage_tokens_of(user: User, username: str | None) -> bool:
    """Everyone manages their own API tokens; an admin anyone's (``username`` None: everyone's)."""
    return user.role == "admin" or (username is not None and username == user.username)


def may_write(user: User) -> bool:
    """Whether the account may change anything at all: an inspector reads and never writes (the app
    refuses every write of theirs centrally, api/read_only.py)."""
    return user.role not in READ_ONLY_ROLES


def may_read_audit(user: User) -> bool:
    """The audit log (who did what, when, from where) is for admins and the inspectors."""
    return user.role == "admin" or user.role in READ_ONLY_ROLES


def may_handle_dead_letters(user: User) -> bool:
    """Dead letters carry whatever gateways sent, from every community: district staff's to read and
    replay."""
    return sees_district(user)


def may_see_department_kpis(user: User, department: str) -> bool:
    """A district department's call-up KPIs: district staff, and the department's own handlers."""
    return sees_district(user) or (user.role == "department_handler" and user.department == department)


def may_compare_units(user: User) -> bool:
    """Towns and departments ranked side by side are the district's comparison."""
    return sees_district(user)


def may_read_report(user: User, policy: CasePolicy, catalog: Catalog, level: Level, scope: str) -> bool:
    """A monthly report of a scope (its KPIs, its units ranked, its 通报): whoever sees the scope's KPIs;
    a town operator their town's, never the district's."""
    return may_see_kpis(user, policy, catalog, level, scope)


def may_manage_accounts(user: User) -> bool:
    """Who manages logins at all: an admin, and a town operator for the people of their town."""
    return user.role in ("admin", "town_operator")


def may_manage_account(user: User, policy: CasePolicy, catalog: Catalog, role: str, unit: str) -> bool:
    """The login of someone with ``role`` in ``unit``: an admin anyone's; a town operator those of
    the people of their own town it manages as people (never district or department staff's)."""
    if user.role == "admin":
        return True
    return user.role == "town_operator" and may_manage_person(user, policy, catalog, role, unit)


# Supervision (督办, #24): who reads orders, who issues them on whom, and who answers for a unit.
SEES_SUPERVISION = READS_DISTRICT | {"town_operator", "department_handler", "grid_worker"}


def may_see_supervision(user: User) -> bool:
    """Orders on the cases one sees: district staff, inspectors, towns, departments and grid workers
    (who answer for their grid); building heads only report and give feedback."""
    return user.role in SEES_SUPERVISION


def may_supervise(user: User, policy: CasePolicy, community: str | None) -> bool:
    """Issue a supervision order on a case: district staff anywhere, a town operator in the town."""
    return _district_or_town_of(user, policy, community)


def may_supervise_unit(user: User, unit_kind: str) -> bool:
    """Supervision runs downwards: the district supervises towns, departments and grids; a town its grids."""
    return sees_district(user) or (user.role == "town_operator" and unit_kind == "grid")


def answers_for(user: User, unit: str, unit_kind: str) -> bool:
    """Whether the user speaks for the unit an order targets: its grid worker, its town's operator, or
    its department's handler."""
    return (
        (unit_kind == "grid" and user.role == "grid_worker" and user.grid == unit)
        or (unit_kind == "town" and user.role == "town_operator" and user.town == unit)
        or (unit_kind == "department" and user.role == "department_handler" and user.department == unit)
    )


def reads_whole_district(user: User) -> bool:
    """District staff and the inspectors: every town of the district is theirs to read."""
    return user.role in READS_DISTRICT


def own_wall_town(user: User) -> str | None:
    """The town whose wall a town operator sees by default (None: no town of their own)."""
    return user.town if user.role == "town_operator" and user.town else None


def own_department(user: User) -> str | None:
    """The department a department handler speaks for (None for every other role)."""
    return user.department if user.role == "department_handler" and user.department else None


def may_manage_channels(user: User) -> bool:
    """Public reporting channels (12345, the public page) and their keys: district admins and operators."""
    return user.role in ("admin", "district_operator")


# Return visits (回访, #22): the platform's operators call the resident back — a town's for its town, the
# district's anywhere — never the grid worker or department that did the work (a resident is asked
# about the work by someone who did not do it), and only they see the reporter's phone number.
VISITING_ROLES = frozenset({"district_operator", "town_operator"})


def may_visit(user: User) -> bool:
    """Whether the role makes return visits at all (which cases: ``case_filter``)."""
    return user.role in VISITING_ROLES


def sees_reporter_phone(user: User, policy: CasePolicy, case: Case) -> bool:
    """The reporter's phone, in full: to a visiting role, for a closed case awaiting its visit in the
    user's jurisdiction; everyone else (and every list, export and Open311 answer) gets it masked or not
    at all."""
    return (
        may_visit(user)
        and case.state == "CLOSED"
        and (sees_district(user) or sees_area(user, policy, case.community, case.grid))
    )


# The roles that work cases on foot: after sign-in they land on the phone view (#22).
FIELD_ROLES = GRID_ROLES | {"department_handler"}


def home_page(user: User) -> str:
    """Where the console sends the user after sign-in: field roles to their phone view."""
    return "/console/field" if user.role in FIELD_ROLES else "/console"


# Alarms and calls (#23): who acknowledges an alert, and who opens a case from a phone call.
ACKNOWLEDGES_ALERTS = DISTRICT_ROLES | {"town_operator", "grid_worker"}


def may_acknowledge_alerts(user: User) -> bool:
    """Acknowledge an alert of one's jurisdiction with a note: district staff, town operators and grid
    workers (who work the alarms); building heads, stewards and departments do not watch them."""
    return user.role in ACKNOWLEDGES_ALERTS


def may_take_calls(user: User) -> bool:
    """Open a case by hand from a phone call or a 12345 transfer (where: ``sees_area``): district and
    town operators."""
    return sees_district(user) or user.role == "town_operator"


def may_publish_photo(user: User, policy: CasePolicy, community: str) -> bool:
    """Mark a case's photo public (Open311 may then show it, #22): district staff, or the town's operator."""
    return _district_or_town_of(user, policy, community)


def may_attach_snapshot(user: User) -> bool:
    """Keep a camera case's snapshot in the case's photos, stored centrally from then on (#22): district
    staff and town operators; everyone else in scope only views it, fetched from the gateway."""
    return sees_district(user) or user.role == "town_operator"


def may_answer_request(user: User, request: str, requester: str) -> bool:
    """Approve or refuse a field worker's request (#22): a role that takes the action asked for (the
    town's operators, district staff; where: ``case_filter``), never the one who asked."""
    asked_for = REQUESTS.get(request)
    return (
        asked_for is not None
        and user.username != requester
        and may_take(user, asked_for)
        and may_take(user, "refuse_request")
    )
