"""Hypothesis profiles of the fuzz suite: ``ci`` (default) and ``nightly`` (``YIWANG_FUZZ=nightly``).

Every fuzz test takes its settings from :func:`fuzz`, which scales the active profile's base number of
examples by the test's weight, so one number per profile sets the whole suite's budget:

- ``ci``: base 20 examples, derandomized (the same inputs every run, so CI is reproducible);
- ``nightly``: base 500 examples, random seed (every night explores new inputs).

Arithmetic: the weights of the 47 ``@fuzz`` tests add up to 222 (``test_budget.py`` recounts them and
fails if a nightly run would fall under 100,000), so a nightly run executes at least
222 × 500 = 111,000 examples and a CI run 222 × 20 = 4,440. Neither profile keeps an example database:
nothing is written into the repository (``database=None``); a failure prints its reproducing example
(and ``@reproduce_failure`` blob) instead.

The profiles are applied per test (``@fuzz(weight)``), never loaded globally, so the other hypothesis
tests of the suite keep their own settings when the whole suite runs in one session.
"""

from __future__ import annotations

import os
from typing import Any

from hypothesis import HealthCheck, settings

PROFILE = "nightly" if os.environ.get("YIWANG_FUZZ") == "nightly" else "ci"

# "No hang": one example taking five seconds is a failure, not a slow test. Typical examples take well
# under 10 ms; five seconds, not less, because this runs on a shared 2-core machine (load 9 seen) and
# the slowest legitimate case, YAML nested past the recursion limit, takes about one.
_COMMON: dict[str, Any] = {
    "database": None,
    "deadline": 5000,
    "print_blob": True,
    "suppress_health_check": [HealthCheck.too_slow],
}
settings.register_profile("ci", max_examples=20, derandomize=True, **_COMMON)
settings.register_profile("nightly", max_examples=500, derandomize=False, **_COMMON)
