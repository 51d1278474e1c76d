"""API tokens against the real API process: an expired token is refused, a token scoped to Open311 works
there (the key in a header, too) and nowhere else, and `yiwang up` leaves only its newest demo token."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from api import accounts
from common.db import make_engine
from tests.security.conftest import Console, api_process

pytestmark = pytest.mark.e2e
OPEN311 = "/open311/v2/requests.json"


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    def seed(database_url: str) -> None:
        db = make_engine(database_url)
        accounts.create_user(db, "hotline", "hotline-pass", role="district_operator")
        db.dispose()

    with api_process(tmp_path_factory.mktemp("tokens"), {}, seed) as console:
        yield console


def issue(console: Console, **options: object) -> str:
    db = make_engine(console.database_url)
    try:
        user = accounts.find_user(db, "hotline")
        assert user is not None
        return accounts.issue_token(db, user, "test", **options)  # type: ignore[arg-type]
    finally:
        db.dispose()


def test_an_expired_token_is_refused(console: Console) -> None:
    expired = issue(console, lifetime=timedelta(seconds=-1))
    fresh = issue(console, lifetime=timedelta(hours=1))
    with httpx.Client(base_url=console.base, timeout=10) as client:
        refused = client.get("/api/v1/cases", headers={"Authorization": f"Bearer {expired}"})
        assert refused.status_code == 401, refused.text[:200]
        assert "expired" in refused.json()["detail"]
        assert client.get(OPEN311, headers={"X-Api-Key": expired}).status_code == 403
        assert client.get(OPEN311, params={"api_key": expired}).status_code == 403
        assert client.get("/api/v1/cases", headers={"Authorization": f"Bearer {fresh}"}).status_code == 200


def test_an_open311_token_works_there_in_a_header_and_nowhere_else(console: Console) -> None:
    hotline = issue(console, scope="open311")
    with httpx.Client(base_url=console.base, timeout=10) as client:
        for path in ("/api/v1/cases", "/api/v1/tokens", "/api/v1/silences"):
            refused = client.get(path, headers={"Authorization": f"Bearer {hotline}"})
            assert refused.status_code == 403, (path, refused.text[:200])
            assert "open311" in refused.json()["detail"]
        by_header = client.get(OPEN311, headers={"X-Api-Key": hotline})
        assert by_header.status_code == 200, by_header.text[:200]
        assert client.get(OPEN311, params={"api_key": hotline}).status_code == 200
        report = {
            "service_code": "flooding",
            "address_id": "zhuganxiang/g-north",
            "description": "积水",
        }
        filed = client.post(OPEN311, data=report, headers={"X-Api-Key": hotline})
        assert filed.status_code == 200 and filed.json()[0]["service_request_id"], filed.text[:200]


def test_bringing_the_demo_up_again_revokes_its_previous_token(console: Console, tmp_path: Path) -> None:
    db = make_engine(console.database_url)
    try:
        first = accounts.ensure_demo_operator(db, tmp_path / "credentials.json")["token"]
        second = accounts.ensure_demo_operator(db, tmp_path / "credentials.json")["token"]
    finally:
        db.dispose()
    with httpx.Client(base_url=console.base, timeout=10) as client:
        assert client.get("/api/v1/cases", headers={"Authorization": f"Bearer {first}"}).status_code == 401
        assert client.get("/api/v1/cases", headers={"Authorization": f"Bearer {second}"}).status_code == 200
