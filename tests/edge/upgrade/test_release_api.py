"""The API serves stored releases to gateways holding a releases-scoped token, with Range for resume;
that token opens nothing else, and nothing outside the release store is reachable."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi.testclient import TestClient

from api import accounts
from api.app import create_app
from api.settings import ApiSettings
from common.db import make_engine
from contract.release import FILES_DIR, parse_signed
from tests.edge.upgrade.releases import make_release

CONFIG = Path(__file__).resolve().parents[3] / "config"
KEY = Ed25519PrivateKey.generate()
WHEEL = "yiwang-0.2.0-py3-none-any.whl"
BASE = "/api/v1/releases/0.2.0"


@pytest.fixture
def api(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[TestClient, dict[str, str]]]:
    store = tmp_path / "releases"
    make_release(store, "0.2.0", KEY, tmp_path)
    (tmp_path / "secret.txt").write_text("not a release")
    monkeypatch.setenv("YIWANG_RELEASE_DIR", str(store))
    settings = ApiSettings(
        database_url=f"sqlite:///{tmp_path}/yiwang.db",
        series_url=f"sqlite:///{tmp_path}/series.db",
        config_dir=CONFIG,
        mqtt_port=1,
    )
    with TestClient(create_app(settings)) as client:
        db = make_engine(settings.database_url)
        user = accounts.create_user(db, "fleet", "correct horse", role="district_operator")
        tokens = {
            scope or "all": accounts.issue_token(db, user, scope=scope)
            for scope in ("releases", "open311", None)
        }
        db.dispose()
        yield client, tokens


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_a_gateway_token_fetches_a_release_it_can_verify(api: tuple[TestClient, dict[str, str]]) -> None:
    client, tokens = api
    headers = bearer(tokens["releases"])
    manifest = client.get(f"{BASE}/manifest", headers=headers)
    signature = client.get(f"{BASE}/signature", headers=headers)
    assert manifest.status_code == signature.status_code == 200
    parsed = parse_signed(manifest.content, signature.content, KEY.public_key())
    wheel = client.get(f"{BASE}/files/{WHEEL}", headers=headers)
    assert wheel.status_code == 200
    assert len(wheel.content) == parsed.file(WHEEL).size  # type: ignore[union-attr]


def test_a_range_request_resumes_a_file(api: tuple[TestClient, dict[str, str]], tmp_path: Path) -> None:
    client, tokens = api
    whole = (tmp_path / "releases" / "0.2.0" / FILES_DIR / WHEEL).read_bytes()
    part = client.get(f"{BASE}/files/{WHEEL}", headers={**bearer(tokens["releases"]), "Range": "bytes=1000-"})
    assert part.status_code == 206
    assert part.content == whole[1000:]
    assert part.headers["content-range"] == f"bytes 1000-{len(whole) - 1}/{len(whole)}"


def test_without_a_token_nothing_is_served(api: tuple[TestClient, dict[str, str]]) -> None:
    client, _ = api
    assert client.get(f"{BASE}/manifest").status_code == 401


def test_a_releases_token_opens_nothing_else_and_other_scopes_not_releases(
    api: tuple[TestClient, dict[str, str]],
) -> None:
    client, tokens = api
    assert client.get("/api/v1/cases", headers=bearer(tokens["releases"])).status_code == 403
    assert client.get(f"{BASE}/manifest", headers=bearer(tokens["open311"])).status_code == 403
    assert client.get(f"{BASE}/manifest", headers=bearer(tokens["all"])).status_code == 200


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/releases/0.9.9/manifest",
        f"{BASE}/files/missing.whl",
        f"{BASE}/files/..%2F..%2F..%2Fsecret.txt",
        "/api/v1/releases/..%2F..%2Fsecret.txt/manifest",
        f"{BASE}/files/.hidden",
    ],
)
def test_nothing_outside_the_release_store_is_reachable(
    api: tuple[TestClient, dict[str, str]], path: str
) -> None:
    client, tokens = api
    response = client.get(path, headers=bearer(tokens["releases"]))
    assert response.status_code == 404
    assert b"not a release" not in response.content
