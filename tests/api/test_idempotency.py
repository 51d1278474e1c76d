"""Idempotency-Key: a retried write is answered with its first result and never applied twice (#22).
On SQLite and PostgreSQL, through the whole app (the middleware as installed by create_app)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from api.idempotency import MAX_KEY_LENGTH
from api.settings import ApiSettings
from cases.attachment_models import Attachment, IdempotencyKey
from cases.models import CaseEvent
from common.db import make_engine
from tests.api.conftest import auth, console_login, settings_keeping_photos
from tests.cases.test_photos_samples import camera_jpeg

REPORT = {
    "community": "zhuganxiang",
    "grid": "g-north",
    "category": "fire_lane_blocked",
    "description": "车辆占用消防通道",
}


@pytest.fixture
def settings(tmp_path: Path, api_database_url: str) -> ApiSettings:
    return settings_keeping_photos(tmp_path, api_database_url)


@pytest.fixture
def db(settings: ApiSettings, client: TestClient) -> Iterator[Engine]:
    engine = make_engine(settings.database_url)
    yield engine
    engine.dispose()


def keyed(token: str, key: str) -> dict[str, str]:
    return auth(token) | {"Idempotency-Key": key}


def a_case(client: TestClient, token: str) -> int:
    answer = client.post("/api/v1/cases", json=REPORT, headers=auth(token))
    assert answer.status_code == 201, answer.text
    case_id: int = answer.json()["id"]
    return case_id


def events(db: Engine, case_id: int, action: str) -> int:
    with Session(db) as session:
        query = select(func.count()).where(CaseEvent.case_id == case_id, CaseEvent.action == action)
        return session.scalar(query.select_from(CaseEvent)) or 0


def test_the_same_action_twice_with_one_key_acts_once_and_answers_the_same(
    client: TestClient, token: str, db: Engine
) -> None:
    case_id = a_case(client, token)
    path = f"/api/v1/cases/{case_id}/actions"

    first = client.post(path, json={"action": "accept"}, headers=keyed(token, "phone-0001"))
    again = client.post(path, json={"action": "accept"}, headers=keyed(token, "phone-0001"))

    assert first.status_code == again.status_code == 200
    assert again.json() == first.json() and again.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    assert events(db, case_id, "accept") == 1
    # Without the key the same request is a new one: the workflow refuses a second accept.
    assert client.post(path, json={"action": "accept"}, headers=auth(token)).status_code == 409


def test_a_key_reused_after_the_case_moved_on_still_gets_the_first_answer(
    client: TestClient, token: str, db: Engine
) -> None:
    case_id = a_case(client, token)
    path = f"/api/v1/cases/{case_id}/actions"
    first = client.post(path, json={"action": "accept"}, headers=keyed(token, "k-accept"))
    assert client.post(path, json={"action": "verify"}, headers=keyed(token, "k-verify")).status_code == 200

    late = client.post(path, json={"action": "accept"}, headers=keyed(token, "k-accept"))

    assert late.status_code == 200 and late.json() == first.json()
    assert late.json()["state"] == "VERIFYING"  # the case as the first answer showed it
    assert client.get(f"/api/v1/cases/{case_id}", headers=auth(token)).json()["state"] == "FILED"
    assert events(db, case_id, "accept") == 1


def test_the_same_key_with_another_body_or_path_is_a_conflict(
    client: TestClient, token: str, db: Engine
) -> None:
    case_id = a_case(client, token)
    path = f"/api/v1/cases/{case_id}/actions"
    assert client.post(path, json={"action": "accept"}, headers=keyed(token, "k1")).status_code == 200

    other_body = client.post(path, json={"action": "accept", "note": "again"}, headers=keyed(token, "k1"))
    other_path = client.post("/api/v1/cases", json=REPORT, headers=keyed(token, "k1"))

    for answer in (other_body, other_path):
        assert answer.status_code == 409
        assert (
            answer.json()["key"] == "idempotency_key_reused"
            and "different request" in answer.json()["detail"]
        )
    assert events(db, case_id, "accept") == 1


def test_two_people_never_share_an_answer(
    client: TestClient, token: str, login: Callable[..., str], db: Engine
) -> None:
    other = login("op2", "district_operator")

    mine = client.post("/api/v1/cases", json=REPORT, headers=keyed(token, "shared-key"))
    theirs = client.post("/api/v1/cases", json=REPORT, headers=keyed(other, "shared-key"))

    assert mine.status_code == theirs.status_code == 201
    assert "idempotent-replayed" not in theirs.headers
    assert mine.json()["id"] != theirs.json()["id"]


@pytest.mark.parametrize(
    ("key", "words"),
    [
        ("k" * (MAX_KEY_LENGTH + 1), f"at most {MAX_KEY_LENGTH}"),
        ("two words", "visible ASCII"),
        ("", "visible ASCII"),
    ],
    ids=["129-chars", "space", "empty"],
)
def test_an_oversized_or_invalid_key_is_a_bad_request_and_nothing_runs(
    client: TestClient, token: str, db: Engine, key: str, words: str
) -> None:
    case_id = a_case(client, token)

    answer = client.post(
        f"/api/v1/cases/{case_id}/actions", json={"action": "accept"}, headers=keyed(token, key)
    )

    assert answer.status_code == 400 and words in answer.json()["detail"]
    assert events(db, case_id, "accept") == 0


def test_an_answer_that_depends_on_the_moment_is_not_kept(client: TestClient, token: str, db: Engine) -> None:
    case_id = a_case(client, token)
    path = f"/api/v1/cases/{case_id}/actions"

    unknown = client.post(path, json={"action": "accept"}, headers=keyed("yw_nobody", "k-retry"))
    assert unknown.status_code == 401
    done = client.post(path, json={"action": "accept"}, headers=keyed(token, "k-retry"))
    assert done.status_code == 200 and "idempotent-replayed" not in done.headers
    with Session(db) as session:
        (row,) = session.scalars(select(IdempotencyKey)).all()
        assert (row.identity, row.key, row.method, row.path, row.status) == (
            "user:op",
            "k-retry",
            "POST",
            path,
            200,
        )


def test_a_photo_retried_with_its_key_is_stored_once(client: TestClient, token: str, db: Engine) -> None:
    case_id = a_case(client, token)
    files = {"file": ("photo.jpg", camera_jpeg(1200, 900, noise=True), "image/jpeg")}
    path = f"/api/v1/cases/{case_id}/attachments"

    first = client.post(path, files=files, headers=keyed(token, "photo-1"))
    again = client.post(path, files=files, headers=keyed(token, "photo-1"))

    assert first.status_code == again.status_code == 201
    assert again.json()["id"] == first.json()["id"]
    with Session(db) as session:
        assert session.scalar(select(func.count()).select_from(Attachment)) == 1


def test_concurrent_duplicates_act_once(client: TestClient, token: str, db: Engine) -> None:
    case_id = a_case(client, token)
    path = f"/api/v1/cases/{case_id}/attachments"
    photo = camera_jpeg(3000, 2000, noise=True)  # slow enough to overlap

    def send(_: int) -> tuple[int, int | None]:
        answer = client.post(
            path, files={"file": ("p.jpg", photo, "image/jpeg")}, headers=keyed(token, "same-moment")
        )
        return answer.status_code, answer.json().get("id")

    with ThreadPoolExecutor(max_workers=3) as pool:
        answers = list(pool.map(send, range(3)))

    # Each duplicate either waited for the first answer or was told the first is still running.
    created = {photo_id for status, photo_id in answers if status == 201}
    assert len(created) == 1 and all(status in (201, 409) for status, _ in answers), answers
    with Session(db) as session:
        assert session.scalar(select(func.count()).select_from(Attachment)) == 1


def test_the_console_session_is_the_identity(client: TestClient, token: str, db: Engine) -> None:
    case_id = a_case(client, token)
    assert console_login(client, follow_redirects=False).status_code == 303
    page = client.get("/console/alerts").text
    csrf = page.split('name="csrf" value="', 1)[1].split('"', 1)[0]
    path = f"/console/cases/{case_id}/attachments"
    files = {"file": ("photo.jpg", camera_jpeg(), "image/jpeg")}

    first = client.post(path, files=files, headers={"X-CSRF-Token": csrf, "Idempotency-Key": "console-1"})
    again = client.post(path, files=files, headers={"X-CSRF-Token": csrf, "Idempotency-Key": "console-1"})

    assert first.status_code == again.status_code == 201 and again.json() == first.json()
    # The bearer token of the same person finds the same key.
    api = client.post(f"/api/v1/cases/{case_id}/attachments", files=files, headers=keyed(token, "console-1"))
    assert api.status_code == 409  # same person and key, another path


def test_keys_older_than_seven_days_are_pruned(client: TestClient, token: str, db: Engine) -> None:
    old = datetime.now(UTC) - timedelta(days=8)
    with Session(db) as session, session.begin():
        session.add(
            IdempotencyKey(
                identity="user:op",
                key="ancient",
                method="POST",
                path="/x",
                body_sha256="0" * 64,
                created_at=old,
            )
        )

    client.post("/api/v1/cases", json=REPORT, headers=keyed(token, "fresh"))

    with Session(db) as session:
        assert session.scalars(select(IdempotencyKey.key)).all() == ["fresh"]


def test_a_secret_shown_once_is_never_kept_for_a_replay(client: TestClient, token: str, db: Engine) -> None:
    """A one-time link (or a channel's key) kept as a replayable answer would sit in the clear for a
    week: a key on such a request is refused before it runs, and no account is made."""
    answer = client.post("/api/v1/users", json={"username": "li.na"}, headers=keyed(token, "link-1"))

    assert answer.status_code == 400 and answer.json()["key"] == "idempotency_secret_answer"
    with Session(db) as session:
        assert session.scalar(select(func.count()).select_from(IdempotencyKey)) == 0
    # Without a key the route itself answers (a district operator does not manage accounts).
    routed = client.post("/api/v1/users", json={"username": "li.na"}, headers=auth(token))
    assert routed.status_code == 403 and "manage accounts" in routed.text
