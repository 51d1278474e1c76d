"""Token revocation: listed without the secret, refused from the very next request, audited."""

from datetime import datetime

from fastapi.testclient import TestClient

from api import accounts
from api.settings import ApiSettings
from common.db import make_engine
from tests.api.conftest import audited, auth


def test_owner_lists_and_revokes_a_token_which_dies_at_once(
    client: TestClient, token: str, settings: ApiSettings
) -> None:
    db = make_engine(settings.database_url)
    op = accounts.find_user(db, "op")
    assert op is not None
    laptop = accounts.issue_token(db, op, "laptop")
    listed = client.get("/api/v1/tokens", headers=auth(token)).json()
    assert [t["label"] for t in listed] == ["", "laptop"] and all(t["revoked_at"] is None for t in listed)
    assert laptop not in str(listed) and token not in str(listed)  # never the secret (nor its digest)
    assert datetime.fromisoformat(listed[0]["created_at"]).tzinfo is not None  # RFC 3339, with offset
    assert client.get("/api/v1/cases", headers=auth(laptop)).status_code == 200
    assert client.delete(f"/api/v1/tokens/{listed[1]['id']}", headers=auth(token)).status_code == 204
    refused = client.get("/api/v1/cases", headers=auth(laptop))
    assert refused.status_code == 401 and refused.headers["WWW-Authenticate"] == "Bearer"
    assert accounts.user_for_token(db, laptop) is None
    # Revoking one's own current token works too; that token is then refused.
    assert client.delete(f"/api/v1/tokens/{listed[0]['id']}", headers=auth(token)).status_code == 204
    assert client.get("/api/v1/tokens", headers=auth(token)).status_code == 401
    db.dispose()
    assert audited(settings) == [
        ("op", "DELETE", f"/api/v1/tokens/{listed[1]['id']}", 204),
        ("op", "DELETE", f"/api/v1/tokens/{listed[0]['id']}", 204),
    ]


def test_only_the_owner_or_an_admin_revokes(client: TestClient, token: str, settings: ApiSettings) -> None:
    db = make_engine(settings.database_url)
    other = accounts.create_user(db, "w", "pw", "grid_worker", community="zhuganxiang", grid="g-north")
    other_token = accounts.issue_token(db, other, "phone")
    admin = accounts.issue_token(db, accounts.create_user(db, "root", "pw", "admin"))
    db.dispose()
    op_token_id = client.get("/api/v1/tokens", headers=auth(token)).json()[0]["id"]
    phone_id = client.get("/api/v1/tokens", headers=auth(other_token)).json()[0]["id"]
    # A district operator is not an admin: another account's token does not exist for them.
    assert client.delete(f"/api/v1/tokens/{phone_id}", headers=auth(token)).status_code == 404
    assert client.delete(f"/api/v1/tokens/{op_token_id}", headers=auth(other_token)).status_code == 404
    assert (
        client.get("/api/v1/tokens", params={"username": "op"}, headers=auth(other_token)).status_code == 403
    )
    assert client.get("/api/v1/tokens", params={"all": True}, headers=auth(token)).status_code == 403
    assert client.get("/api/v1/cases", headers=auth(other_token)).status_code == 200
    everyone = client.get("/api/v1/tokens", params={"all": True}, headers=auth(admin)).json()
    assert {t["username"] for t in everyone} == {"op", "w", "root"}
    assert client.delete(f"/api/v1/tokens/{phone_id}", headers=auth(admin)).status_code == 204
    assert client.get("/api/v1/cases", headers=auth(other_token)).status_code == 401
    assert client.delete("/api/v1/tokens/999", headers=auth(admin)).status_code == 404
    assert client.delete(f"/api/v1/tokens/{2**63}", headers=auth(admin)).status_code == 422  # no overflow 500
