"""Every role rule is decided in api/scope.py: the API layer compares no role elsewhere, and the rules
themselves, role by role, over a district of two towns (``tests/api/two_towns.py``)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from api.accounts import User
from api.scope import (
    grid_community,
    kpi_scopes,
    may_change_departments,
    may_change_roster,
    may_manage_person,
    may_manage_silences,
    may_manage_tokens_of,
    may_see_kpis,
    may_silence,
    may_take,
    sees_district,
    sees_phone_of,
    sees_silence,
)
from cases.kpis import Level
from cases.organisation import Person
from cases.policy import CasePolicy
from contract.catalog import Catalog, load_catalog
from tests.api.two_towns import ROLE_SCOPES, TOWN_A, TOWN_B, A, B, make_config

API = Path(__file__).resolve().parents[2] / "api"
# The rules live in scope.py; accounts.py stores the role, it decides nothing with it.
DECIDES = {API / "scope.py", API / "accounts.py"}


def _role_comparisons(tree: ast.AST) -> list[int]:
    """Lines comparing a ``.role`` (==, !=, in, not in, ...) or matching on one."""
    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare):
            operands, line = [node.left, *node.comparators], node.lineno
        elif isinstance(node, ast.Match):
            operands, line = [node.subject], node.lineno
        else:
            continue
        if any(isinstance(n, ast.Attribute) and n.attr == "role" for op in operands for n in ast.walk(op)):
            lines.append(line)
    return sorted(lines)


def test_no_role_is_compared_outside_scope() -> None:
    offences = [
        f"{path.relative_to(API.parent)}:{line}"
        for path in sorted(API.rglob("*.py"))
        if path not in DECIDES
        for line in _role_comparisons(ast.parse(path.read_text(encoding="utf-8"), filename=str(path)))
    ]
    assert not offences, f"role rules belong in api/scope.py, not at {', '.join(offences)}"


def test_the_scan_finds_what_it_forbids() -> None:
    source = """
if user.role == "admin": pass
ok = person.role in ROLES
if "x" not in (u.role, "y"): pass
match user.role:
    case _: pass
shown = f"a {user.role}"
may(person.role)
"""
    assert _role_comparisons(ast.parse(source)) == [2, 3, 4, 5]


@pytest.fixture(scope="module")
def district(tmp_path_factory: pytest.TempPathFactory) -> tuple[CasePolicy, Catalog]:
    config = make_config(tmp_path_factory.mktemp("scope") / "config")
    return CasePolicy.load(config), load_catalog(config)


def user(role: str, **scope: str) -> User:
    fields = ROLE_SCOPES.get(role, {}) | scope
    return User(id=1, username=f"the-{role}", display_name="", role=role, **fields)


ROLES = list(ROLE_SCOPES)
DISTRICT = {"admin", "district_operator", "supervisor"}


@pytest.mark.parametrize("role", ROLES)
def test_district_staff(role: str) -> None:
    assert sees_district(user(role)) is (role in DISTRICT)
    assert may_change_departments(user(role)) is (role in DISTRICT)
    assert may_manage_silences(user(role)) is (role in DISTRICT | {"town_operator"})


@pytest.mark.parametrize(
    ("role", "action", "may"),
    [
        ("admin", "void", True),
        ("district_operator", "anything", True),
        ("supervisor", "assign", True),
        ("supervisor", "sign", False),
        ("town_operator", "call_up", True),
        ("town_operator", "respond", False),
        ("grid_worker", "sign", True),
        ("grid_worker", "void", False),
        ("building_head", "feedback", True),
        ("building_head", "accept", False),
        ("department_handler", "respond", True),
        ("department_handler", "assign", False),
        ("nobody", "feedback", False),
    ],
)
def test_case_actions_by_role(role: str, action: str, may: bool) -> None:
    assert may_take(user(role), action) is may


@pytest.mark.parametrize(
    ("role", "level", "scope", "may"),
    [
        ("supervisor", "district", "rencheng", True),
        ("admin", "grid", "xg-north", True),
        ("town_operator", "district", "rencheng", False),
        ("town_operator", "town", TOWN_A, True),
        ("town_operator", "town", TOWN_B, False),
        ("town_operator", "community", A, True),
        ("town_operator", "community", B, False),
        ("town_operator", "grid", "g-south", True),
        ("town_operator", "grid", "xg-south", False),
        ("grid_worker", "town", TOWN_A, False),
        ("grid_worker", "community", A, True),  # sees_area: their community, any grid of it
        ("grid_worker", "grid", "g-north", True),
        ("grid_worker", "grid", "g-south", False),
        ("building_head", "grid", "xg-north", False),
        ("department_handler", "grid", "g-north", False),
        ("department_handler", "community", A, False),
    ],
)
def test_who_sees_which_kpis(
    district: tuple[CasePolicy, Catalog], role: str, level: Level, scope: str, may: bool
) -> None:
    policy, catalog = district
    assert may_see_kpis(user(role), policy, catalog, level, scope) is may


@pytest.mark.parametrize(
    ("role", "scopes"),
    [
        ("admin", [("district", "rencheng"), ("town", TOWN_A), ("town", TOWN_B)]),
        ("town_operator", [("town", TOWN_A)]),
        ("grid_worker", [("grid", "g-north")]),
        ("department_handler", []),
    ],
)
def test_the_console_kpi_scopes(
    district: tuple[CasePolicy, Catalog], role: str, scopes: list[tuple[str, str]]
) -> None:
    policy, _ = district
    assert [(level, scope) for level, scope, _name in kpi_scopes(user(role), policy)] == scopes


# Silences and grid rosters share one rule: district staff, or the town operator of the community's town.
TOWN_RULE = [
    ("district_operator", A, True),
    ("district_operator", None, True),
    ("town_operator", A, True),
    ("town_operator", B, False),
    ("town_operator", None, False),
    ("grid_worker", A, False),
    ("building_head", A, False),
    ("department_handler", A, False),
]


@pytest.mark.parametrize(("role", "community", "may"), TOWN_RULE)
def test_who_sets_silences_and_rosters(
    district: tuple[CasePolicy, Catalog], role: str, community: str | None, may: bool
) -> None:
    policy, _ = district
    assert may_silence(user(role), policy, community) is may
    assert may_change_roster(user(role), policy, community) is may


@pytest.mark.parametrize(
    ("role", "community", "sees"),
    [
        ("supervisor", None, True),
        ("supervisor", B, True),
        ("town_operator", A, True),
        ("town_operator", B, False),
        ("town_operator", None, False),
        ("grid_worker", A, True),
        ("grid_worker", B, False),
        ("department_handler", A, False),
    ],
)
def test_who_sees_a_silence(
    district: tuple[CasePolicy, Catalog], role: str, community: str | None, sees: bool
) -> None:
    policy, _ = district
    assert sees_silence(user(role), policy, community) is sees


@pytest.mark.parametrize(
    ("role", "person_role", "unit", "may"),
    [
        ("admin", "district_operator", "rencheng", True),
        ("supervisor", "department_handler", "water", True),
        ("town_operator", "grid_worker", "g-north", True),
        ("town_operator", "building_head", "g-south", True),
        ("town_operator", "town_operator", TOWN_A, True),
        ("town_operator", "grid_worker", "xg-north", False),  # another town's grid
        ("town_operator", "town_operator", TOWN_B, False),
        ("town_operator", "district_operator", TOWN_A, False),  # not a role a town manages
        ("town_operator", "department_handler", "water", False),
        ("grid_worker", "grid_worker", "g-north", False),
        ("department_handler", "department_handler", "water", False),
    ],
)
def test_who_manages_whom(
    district: tuple[CasePolicy, Catalog], role: str, person_role: str, unit: str, may: bool
) -> None:
    policy, catalog = district
    assert may_manage_person(user(role), policy, catalog, person_role, unit) is may


@pytest.mark.parametrize(
    ("role", "username", "sees"),
    [
        ("grid_worker", "the-grid_worker", True),
        ("grid_worker", "ma.li", False),
        ("town_operator", "ma.li", False),
    ],
)
def test_who_sees_a_phone_number(
    district: tuple[CasePolicy, Catalog], role: str, username: str, sees: bool
) -> None:
    policy, catalog = district
    person = Person(username=username, name="x", role="grid_worker", unit="xg-north")
    assert sees_phone_of(user(role), policy, catalog, person) is sees


@pytest.mark.parametrize(
    ("role", "whose", "may"),
    [
        ("admin", None, True),
        ("admin", "someone", True),
        ("district_operator", None, False),
        ("district_operator", "someone", False),
        ("district_operator", "the-district_operator", True),
        ("grid_worker", "the-grid_worker", True),
        ("grid_worker", "", False),
    ],
)
def test_whose_tokens(role: str, whose: str | None, may: bool) -> None:
    assert may_manage_tokens_of(user(role), whose) is may


def test_grid_community(district: tuple[CasePolicy, Catalog]) -> None:
    _, catalog = district
    assert (grid_community(catalog, "g-north"), grid_community(catalog, "xg-north")) == (A, B)
    assert grid_community(catalog, TOWN_A) is None
