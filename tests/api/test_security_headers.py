"""Security headers on every response, a console without inline script or style, and cookie flags."""

import re

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.settings import ApiSettings
from tests.api.conftest import auth, console_login

EVERYWHERE = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
}


@pytest.mark.parametrize(
    "path",
    ["/api/v1/cases", "/api/v1/cases/999", "/console/login", "/console", "/healthz", "/static/queue.js"],
)
def test_every_response_has_the_headers(client: TestClient, token: str, path: str) -> None:
    response = client.get(path, headers=auth(token), follow_redirects=False)
    for name, value in EVERYWHERE.items():
        assert response.headers[name] == value
    policy = dict(p.strip().split(" ", 1) for p in response.headers["Content-Security-Policy"].split(";"))
    assert policy["script-src"] == "'self'" and policy["style-src"] == "'self'"  # nothing inline runs
    assert policy["frame-ancestors"] == "'none'" and policy["object-src"] == "'none'"
    permissions = response.headers["Permissions-Policy"]
    assert all(f"{feature}=()" in permissions for feature in ("camera", "microphone", "geolocation"))
    assert "Strict-Transport-Security" not in response.headers  # plain http: no HSTS
    if path.startswith("/static/"):
        assert "no-store" not in response.headers.get("Cache-Control", "")
    else:
        assert response.headers["Cache-Control"] == "no-store"


def test_unauthenticated_and_error_answers_have_them_too(client: TestClient) -> None:
    for response in (client.get("/api/v1/cases"), client.get("/nowhere"), client.post("/console/login")):
        assert response.status_code in (401, 404, 422)
        assert (
            response.headers["X-Frame-Options"] == "DENY" and response.headers["Cache-Control"] == "no-store"
        )


def test_api_docs_get_their_own_looser_policy(client: TestClient) -> None:
    docs = client.get("/docs")
    assert "cdn.jsdelivr.net" in docs.headers["Content-Security-Policy"]
    assert docs.headers["X-Frame-Options"] == "DENY"


def test_console_pages_carry_no_inline_script_or_style(client: TestClient, token: str) -> None:
    console_login(client)
    for path in (
        "/console",
        "/console/alerts",
        "/console/fleet",
        "/console/rules",
        "/console/kpis",
        "/console/login",
    ):
        html = client.get(path).text
        assert path == "/console/login" or 'action="/console/logout"' in html, path  # the page, signed in
        assert "<style" not in html and " style=" not in html, path
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), path  # every script is a file
        assert not re.search(r"\son[a-z]+=", html), path  # no inline event handlers
    queue = client.get("/console").text
    assert '<script src="/static/queue.js"' in queue and 'href="/static/console.css"' in queue
    assert client.get("/static/console.css").headers["content-type"].startswith("text/css")


def test_hsts_and_secure_session_cookie_only_over_https(settings: ApiSettings, token: str) -> None:
    app = create_app(settings)
    with TestClient(app, base_url="https://testserver") as https:
        response = console_login(https, follow_redirects=False)
        assert response.status_code == 303
        assert response.headers["Strict-Transport-Security"].startswith("max-age=31536000")
        cookie = response.headers["set-cookie"].lower()
        assert cookie.startswith("yiwang_session=")
        assert {"httponly", "samesite=strict", "secure"} <= {a.strip() for a in cookie.split(";")}
    with TestClient(app) as http:
        response = console_login(http, follow_redirects=False)
        cookie = response.headers["set-cookie"].lower()
        assert {"httponly", "samesite=strict"} <= {a.strip() for a in cookie.split(";")}
        assert "secure" not in {a.strip() for a in cookie.split(";")}  # a local http console still signs in
        assert "Strict-Transport-Security" not in response.headers
