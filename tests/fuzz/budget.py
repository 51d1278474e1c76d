"""Per-test example budgets: ``@fuzz(weight)`` = the active profile's base examples × weight."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from hypothesis import settings

from tests.fuzz.conftest import PROFILE

F = TypeVar("F", bound=Callable[..., object])

WEIGHTS: dict[str, int] = {}
"""Weight of every fuzz test by qualified name, filled as the modules are imported."""


def fuzz(weight: int = 1, *, deadline_ms: int | None = None) -> Callable[[F], F]:
    """Hypothesis settings of the active profile with ``weight`` times its base number of examples.

    ``deadline_ms`` raises the profile's per-example deadline for a test whose inputs are slow by design.
    """
    base = settings.get_profile(PROFILE)

    def apply(test: F) -> F:
        WEIGHTS[f"{test.__module__}.{test.__qualname__}"] = weight
        deadline = base.deadline if deadline_ms is None else deadline_ms
        return settings(base, max_examples=base.max_examples * weight, deadline=deadline)(test)

    return apply
