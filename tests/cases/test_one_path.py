"""Every change to a case goes through cases.actions: nothing else builds case rows or moves a case.

A case's log, evidence and supervision orders are what KPIs, notifications and audits read; one module
writing them keeps one place that decides a change's actor, order and facts.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("common", "contract", "edge", "broker", "series", "ingest", "cases", "alerts", "api", "yiwang")
# Constructors of case rows, and the calls that build or move a case outside a session function.
GUARDED = frozenset({"Case", "CaseEvent", "Evidence", "SupervisionOrder", "apply_action", "new_case"})
# The one path, and the pure state machine it applies (which returns the event it built).
ALLOWED = frozenset({Path("cases/actions.py"), Path("cases/workflow.py")})


def offences(path: Path, root: Path = ROOT) -> list[str]:
    """``file:line: name(`` for each guarded construction or call in ``path``."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    # ``from cases.models import CaseEvent as Event`` must not hide a construction.
    aliases = {
        alias.asname: alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom)
        for alias in node.names
        if alias.asname is not None
    }
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        if isinstance(node.func, ast.Name):
            name = aliases.get(node.func.id, node.func.id)
        elif isinstance(node.func, ast.Attribute):
            name = node.func.attr
        else:
            continue
        if name in GUARDED:
            found.append((node.lineno, name))
    return [f"{path.relative_to(root)}:{line}: {name}(" for line, name in sorted(found)]


def sources() -> list[Path]:
    return sorted(p for package in PACKAGES for p in (ROOT / package).rglob("*.py"))


def test_the_scan_covers_every_package() -> None:
    assert all((ROOT / package / "__init__.py").is_file() for package in PACKAGES)
    assert ROOT / "alerts" / "intake.py" in sources()


def test_the_scan_sees_through_aliases_and_attributes(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(
        "from cases.models import CaseEvent as Event\n\nEvent(case=None)\nworkflow.apply_action(1)\n",
        encoding="utf-8",
    )
    assert offences(sample, tmp_path) == ["sample.py:3: CaseEvent(", "sample.py:4: apply_action("]


def test_every_change_to_a_case_goes_through_cases_actions() -> None:
    found = [o for path in sources() if path.relative_to(ROOT) not in ALLOWED for o in offences(path)]
    assert not found, "build case rows and change cases through cases.actions:\n" + "\n".join(found)
