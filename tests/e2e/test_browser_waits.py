"""Every browser wait polls a function, never an expression string.

Playwright's ``wait_for_function`` with a plain expression calls ``eval`` at every poll, and the
console's CSP (``script-src 'self'``) refuses it. The first check runs inside DevTools' own evaluate,
outside the CSP, so such a wait passes whenever its condition already holds and fails only on a busy
machine (as it did once in CI). A function is evaluated once and then called.
"""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]


def expression_waits(source: str) -> list[int]:
    """Lines of ``wait_for_function`` calls whose first argument is a string that is not a function."""
    lines = []
    for node in ast.walk(ast.parse(source)):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        if node.func.attr != "wait_for_function" or not node.args:
            continue
        first = node.args[0]
        if isinstance(first, ast.Constant) and isinstance(first.value, str):
            text = first.value.strip()
            if not (text.startswith("(") and "=>" in text.split("\n", 1)[0]) and not text.startswith(
                "function"
            ):
                lines.append(node.lineno)
    return lines


def test_the_check_knows_an_expression_from_a_function() -> None:
    assert expression_waits("page.wait_for_function(\"document.title === 'x'\")") == [1]
    assert expression_waits("page.wait_for_function(\"() => document.title === 'x'\", timeout=5)") == []
    assert expression_waits('page.wait_for_function("function () { return true }")') == []


def test_no_browser_test_waits_on_an_expression_string() -> None:
    found = {
        f"{path.relative_to(TESTS)}:{line}"
        for path in TESTS.rglob("*.py")
        for line in expression_waits(path.read_text(encoding="utf-8"))
    }
    assert not found, f"write these as '() => …' (see this file's docstring): {sorted(found)}"
