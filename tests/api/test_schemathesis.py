"""Schemathesis against the published OpenAPI, once per role: no 500, and every answer as documented.

Each role calls every operation with its own bearer token against a real app on SQLite, seeded with
cases, alerts, telemetry, devices, gateways and silences in two towns (``tests/api/two_towns.py``).
After an example that may have revoked the role's token (``DELETE /api/v1/tokens/{id}``) the role gets
a fresh one, so a revocation cannot silence the rest of the run.
"""

from __future__ import annotations

import os

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import Case, CheckFunction, checks
from schemathesis.core.failures import FailureGroup
from schemathesis.openapi import from_asgi

from api import accounts
from common.db import make_engine
from tests.api.two_towns import ROLE_SCOPES, Seeded

# The stateless checks. Left out: positive_data_acceptance, since a schema-valid id of a grid, device or
# category that does not exist is rightly refused (422/404) -- the catalog is data, not schema.
CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
    checks.response_headers_conformance,
    checks.ignored_auth,
]
# Per operation and role, bounded so that 7 roles x ~30 operations run in about 90 s on 2 cores. A deeper,
# random sweep: YIWANG_SCHEMATHESIS_EXAMPLES=200 YIWANG_SCHEMATHESIS_RANDOM=1 pytest tests/api/test_schemathesis.py
MAX_EXAMPLES = int(os.environ.get("YIWANG_SCHEMATHESIS_EXAMPLES", "12"))
DERANDOMIZE = not os.environ.get("YIWANG_SCHEMATHESIS_RANDOM")


@pytest.fixture(scope="module")
def api_schema(towns_api: TestClient) -> schemathesis.BaseSchema:
    return from_asgi("/openapi.json", towns_api.app)


def _with_credentials(case: Case, token: str) -> dict[str, str]:
    """The role's token where the operation takes it: Open311's ``api_key``, else the bearer header."""
    if case.path.startswith("/open311/") and case.method == "GET":
        case.query = {**(case.query or {}), "api_key": token}
    elif case.path.startswith("/open311/") and isinstance(case.body, dict):
        case.body = {**case.body, "api_key": token}
    return {"Authorization": f"Bearer {token}"}


def _checks(case: Case) -> list[CheckFunction]:
    # /healthz answers 503 on purpose here: no broker and no ingest/alerts services run in this test.
    health = case.path == "/healthz"
    return [c for c in CHECKS if not (health and c is checks.not_a_server_error)]


@pytest.mark.slow
@pytest.mark.parametrize("role", sorted(ROLE_SCOPES))
def test_every_operation_conforms_for_every_role(
    role: str, api_schema: schemathesis.BaseSchema, towns: Seeded
) -> None:
    db = make_engine(towns.settings.database_url)
    user = accounts.find_user(db, role)
    assert user is not None
    failures: list[str] = []
    operations = 0
    tokens = [accounts.issue_token(db, user, "schemathesis")]
    for result in api_schema.get_all_operations():
        operation = result.ok()
        operations += 1

        @given(case=operation.as_strategy())
        @settings(
            max_examples=MAX_EXAMPLES,
            deadline=None,
            database=None,
            derandomize=DERANDOMIZE,  # by default the same examples every run: CI does not flake
            phases=[Phase.explicit, Phase.generate],  # no shrinking: the report's curl line reproduces it
            suppress_health_check=list(HealthCheck),
        )
        def call(case: Case) -> None:
            case.call_and_validate(headers=_with_credentials(case, tokens[-1]), checks=_checks(case))
            if case.method == "DELETE" and case.path.startswith("/api/v1/tokens/"):
                tokens.append(accounts.issue_token(db, user, "schemathesis"))  # it may have been ours

        try:
            call()
        except (Exception, FailureGroup) as err:  # every operation's failure is collected, then reported
            failures.append(f"{role} {operation.label}: {err}")
    db.dispose()
    assert operations >= 20
    assert not failures, "\n\n".join(failures)
