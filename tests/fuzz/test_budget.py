"""The fuzz suite's budget holds: a nightly run executes at least 100,000 examples."""

from __future__ import annotations

import importlib
from pathlib import Path

from hypothesis import settings

from tests.fuzz.budget import WEIGHTS

NIGHTLY_MINIMUM = 100_000


def test_nightly_profile_runs_at_least_100k_examples() -> None:
    for module in sorted(Path(__file__).parent.glob("test_*.py")):
        importlib.import_module(f"tests.fuzz.{module.stem}")  # fills WEIGHTS as @fuzz applies
    assert len(WEIGHTS) >= 40, sorted(WEIGHTS)
    total = sum(WEIGHTS.values())
    assert total * settings.get_profile("nightly").max_examples >= NIGHTLY_MINIMUM, total
    assert settings.get_profile("ci").database is None
    assert settings.get_profile("nightly").database is None
