"""Photos over HTTP: upload (API and console), serve in the jurisdiction only, bad input refused with
nothing stored, and photos named by feedback and visits (#22). On SQLite and PostgreSQL."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from io import BytesIO
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from api.routes.attachments import UPLOAD_MAX_BYTES
from api.settings import ApiSettings
from cases.attachment_models import Attachment
from cases.attachments import case_position
from cases.models import CaseEvent
from common.db import make_engine
from tests.api.conftest import auth, console_login, settings_keeping_photos
from tests.cases.test_photos_samples import (
    GPS_DECIMAL,
    camera_jpeg,
    png_bomb,
    renamed_pdf,
    truncated_jpeg,
)
from yiwang.bench.photos import photo_ms

REPORT = {
    "community": "zhuganxiang",
    "grid": "g-north",
    "category": "fire_lane_blocked",
    "description": "车辆占用消防通道",
    "location": "3号楼",
}


@pytest.fixture
def settings(tmp_path: Path, api_database_url: str) -> ApiSettings:
    return settings_keeping_photos(tmp_path, api_database_url)


@pytest.fixture
def rows(settings: ApiSettings) -> Iterator[Callable[[], list[Attachment]]]:
    db = make_engine(settings.database_url)

    def read() -> list[Attachment]:
        with Session(db) as session:
            return list(session.scalars(select(Attachment).order_by(Attachment.id)))

    yield read
    db.dispose()


def stored_files(settings: ApiSettings) -> list[str]:
    root = settings.attachments_dir
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()) if root.exists() else []


def a_case(client: TestClient, token: str, **change: str) -> int:
    answer = client.post("/api/v1/cases", json=REPORT | change, headers=auth(token))
    assert answer.status_code == 201, answer.text
    case_id: int = answer.json()["id"]
    return case_id


def upload(client: TestClient, token: str, case_id: int, *photos: bytes, **form: str) -> Any:
    files = [("file", (f"photo{i}.jpg", data, "image/jpeg")) for i, data in enumerate(photos)]
    return client.post(f"/api/v1/cases/{case_id}/attachments", files=files, data=form, headers=auth(token))


def test_a_photo_is_stored_by_its_hash_and_served_with_safe_headers(
    client: TestClient, token: str, settings: ApiSettings, rows: Callable[[], list[Attachment]]
) -> None:
    case_id = a_case(client, token)

    answer = upload(client, token, case_id, camera_jpeg(2400, 1800, noise=True, gps=True))

    assert answer.status_code == 201, answer.text
    body = answer.json()
    photo_id = body["id"]
    assert body["url"] == f"/attachments/{photo_id}"
    assert body["thumb_url"] == f"/attachments/{photo_id}?size=thumb"
    assert (body["width"], body["height"]) == (1600, 1200) and 0 < body["bytes"] <= 500 * 1024
    assert [item["id"] for item in body["items"]] == [photo_id]
    (row,) = rows()
    assert (row.case_id, row.uploaded_by, row.public, row.lat) == (case_id, "op", False, None)
    sha = row.sha256
    assert stored_files(settings) == [f"{sha[:2]}/{sha[2:4]}/{sha}.jpg"]

    served = client.get(body["url"], headers=auth(token))
    assert served.status_code == 200
    assert served.headers["content-type"] == "image/jpeg"
    assert served.headers["x-content-type-options"] == "nosniff"
    assert served.headers["cache-control"].startswith("private, max-age=")
    assert served.headers["content-disposition"].startswith("inline")
    assert len(served.content) == body["bytes"]
    assert Image.open(BytesIO(served.content)).getexif() == {}  # the camera's GPS did not survive

    thumb = client.get(body["thumb_url"], headers=auth(token))
    assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/jpeg"
    assert Image.open(BytesIO(thumb.content)).size == (320, 240)
    assert f"{sha[:2]}/{sha[2:4]}/{sha}.thumb.jpg" in stored_files(settings)  # made once, then kept

    listed = client.get(f"/api/v1/cases/{case_id}/attachments", headers=auth(token)).json()
    assert [(p["id"], p["uploaded_by"]) for p in listed] == [(photo_id, "op")]


def test_a_photo_never_leaves_the_jurisdiction(
    client: TestClient, token: str, login: Callable[..., str]
) -> None:
    case_id = a_case(client, token)  # in g-north
    photo = upload(client, token, case_id, camera_jpeg()).json()
    north = login("north.worker", "grid_worker", community="zhuganxiang", grid="g-north")
    south = login("south.worker", "grid_worker", community="zhuganxiang", grid="g-south")

    assert client.get(photo["url"], headers=auth(north)).status_code == 200
    for path in (photo["url"], photo["thumb_url"], f"/api/v1/cases/{case_id}/attachments"):
        assert client.get(path, headers=auth(south)).status_code == 404, path
    refused = upload(client, south, case_id, camera_jpeg())
    assert refused.status_code == 404 and refused.json()["key"] == "photo_case_not_found"
    assert client.get(photo["url"]).status_code == 401  # no public URL: not even for a guess
    assert client.get(photo["url"], headers=auth("yw_not-a-token")).status_code == 401
    assert client.get("/attachments/999999", headers=auth(token)).status_code == 404


@pytest.mark.parametrize(
    ("photos", "status", "key", "words"),
    [
        ([renamed_pdf()], 422, "photo_not_image", "not a photo"),
        ([truncated_jpeg()], 422, "photo_damaged", "truncated"),
        ([png_bomb()], 422, "photo_too_many_pixels", "image too large in pixels"),
        ([b"\xff\xd8" + b"\0" * (11 * 1024 * 1024)], 413, "photo_too_large", "at most 10 MB"),
        ([camera_jpeg()] * 50, 422, "photo_too_many", "at most 3 photos"),
        ([camera_jpeg(), camera_jpeg(orientation=3), renamed_pdf()], 422, "photo_not_image", "photo 3 of 3"),
    ],
    ids=["renamed-pdf", "truncated", "bomb", "11-MB", "50-photos", "one-bad-of-three"],
)
def test_bad_photos_are_refused_and_nothing_is_stored(
    client: TestClient,
    token: str,
    settings: ApiSettings,
    rows: Callable[[], list[Attachment]],
    photos: list[bytes],
    status: int,
    key: str,
    words: str,
) -> None:
    case_id = a_case(client, token)

    answer = upload(client, token, case_id, *photos)

    assert answer.status_code == status, answer.text
    assert answer.json()["key"] == key and words in answer.json()["detail"]
    assert rows() == [] and stored_files(settings) == []


def test_an_upload_over_its_body_limit_is_refused_before_it_is_read(
    client: TestClient, token: str, rows: Callable[[], list[Attachment]]
) -> None:
    case_id = a_case(client, token)
    headers = auth(token) | {"Content-Type": "multipart/form-data; boundary=x"}

    answer = client.post(
        f"/api/v1/cases/{case_id}/attachments", content=b"x" * (UPLOAD_MAX_BYTES + 1), headers=headers
    )

    assert answer.status_code == 413 and "too large" in answer.json()["detail"]
    assert rows() == []
    none = client.post(f"/api/v1/cases/{case_id}/attachments", data={"keep_gps": "true"}, headers=auth(token))
    assert none.status_code == 422 and none.json()["key"] == "photo_none"


def test_gps_is_kept_only_when_asked_and_becomes_the_case_position(
    client: TestClient, token: str, settings: ApiSettings
) -> None:
    case_id = a_case(client, token)
    assert upload(client, token, case_id, camera_jpeg(gps=True)).status_code == 201
    db = make_engine(settings.database_url)
    try:
        with Session(db) as session:
            assert case_position(session, case_id) is None
        assert open311_position(client, token, case_id) == (None, None)
        assert (
            upload(client, token, case_id, camera_jpeg(gps=True, orientation=8), keep_gps="true").status_code
            == 201
        )
        with Session(db) as session:
            assert case_position(session, case_id) == pytest.approx(GPS_DECIMAL, abs=1e-4)
        # Open311 answers it as the request's lat/long (the report itself gave none).
        assert open311_position(client, token, case_id) == pytest.approx(GPS_DECIMAL, abs=1e-4)
    finally:
        db.dispose()


def open311_position(client: TestClient, token: str, case_id: int) -> tuple[float | None, float | None]:
    answer = client.get(f"/open311/v2/requests.json?api_key={token}&service_request_id={case_id}")
    assert answer.status_code == 200, answer.text
    [row] = answer.json()
    return row["lat"], row["long"]


def console_csrf(client: TestClient) -> str:
    page = client.get("/console/alerts").text
    found = re.search(r'(?:name="csrf" value|data-csrf)="([^"]+)"', page)
    assert found is not None, page[:300]
    return found.group(1)


def test_the_console_uploads_with_its_session_and_csrf_header(
    client: TestClient, token: str, rows: Callable[[], list[Attachment]]
) -> None:
    case_id = a_case(client, token)
    path = f"/console/cases/{case_id}/attachments"
    files = {"file": ("photo.jpg", camera_jpeg(), "image/jpeg")}
    signed_out = client.post(path, files=files)
    assert signed_out.status_code == 401 and signed_out.json()["key"] == "photo_sign_in"
    assert console_login(client, follow_redirects=False).status_code == 303

    no_token = client.post(path, files=files)
    assert no_token.status_code == 403
    assert (
        no_token.json()["key"] == "photo_csrf" and no_token.json()["message"] == "页面已过期，请刷新后重试。"
    )
    assert rows() == []
    stored = client.post(path, files=files, headers={"X-CSRF-Token": console_csrf(client)})
    assert stored.status_code == 201, stored.text
    english = client.post(
        path + "?lang=en",
        files={"file": ("x.jpg", renamed_pdf(), "image/jpeg")},
        headers={"X-CSRF-Token": console_csrf(client)},
    )
    assert english.status_code == 422 and english.json()["message"].startswith("This is not a photo")
    served = client.get(stored.json()["url"])  # the session's cookie is enough for an <img>
    assert served.status_code == 200 and served.headers["content-type"] == "image/jpeg"


def feedback_ready(client: TestClient, token: str, worker: str) -> int:
    """A case of g-north assigned to li.na and signed by her."""
    case_id = a_case(client, token)
    for action, params in (("accept", {}), ("verify", {}), ("assign", {"assignee": "li.na"})):
        answer = client.post(
            f"/api/v1/cases/{case_id}/actions", json={"action": action, "params": params}, headers=auth(token)
        )
        assert answer.status_code == 200, answer.text
    signed = client.post(f"/api/v1/cases/{case_id}/actions", json={"action": "sign"}, headers=auth(worker))
    assert signed.status_code == 200, signed.text
    return case_id


def test_feedback_carries_the_workers_own_photos_of_the_case(
    client: TestClient, token: str, login: Callable[..., str], settings: ApiSettings
) -> None:
    worker = login("li.na", "grid_worker", community="zhuganxiang", grid="g-north")
    case_id = feedback_ready(client, token, worker)
    other_case = a_case(client, token, grid="g-middle", category="flooding")
    mine = upload(client, worker, case_id, camera_jpeg()).json()["id"]
    operators = upload(client, token, case_id, camera_jpeg(orientation=3)).json()["id"]
    elsewhere = upload(client, token, other_case, camera_jpeg(orientation=6)).json()["id"]
    path = f"/api/v1/cases/{case_id}/actions"

    for ids, words in (
        ([operators], f"attachments {operators} are not photos you uploaded"),
        ([mine, elsewhere], f"attachments {elsewhere} are not photos you uploaded"),
        ("7", "must be a list of ids"),
        ([mine, mine], "names an id twice"),
        (list(range(1, 12)), "at most 10"),
    ):
        body = {"action": "feedback", "params": {"attachments": ids}}
        refused = client.post(path, json=body, headers=auth(worker))
        assert refused.status_code == 422 and words in refused.json()["detail"], refused.text

    done = client.post(
        path, json={"action": "feedback", "params": {"attachments": [mine]}}, headers=auth(worker)
    )

    assert done.status_code == 200, done.text
    assert done.json()["state"] == "FEEDBACK"
    db = make_engine(settings.database_url)
    try:
        with Session(db) as session:
            events = session.scalars(
                select(CaseEvent).where(CaseEvent.case_id == case_id, CaseEvent.action == "feedback")
            ).all()
            assert [e.data["attachments"] for e in events] == [[mine]]
            assert session.scalar(select(func.count()).select_from(Attachment)) == 3
    finally:
        db.dispose()


def test_only_an_operator_makes_a_photo_public(
    client: TestClient, token: str, login: Callable[..., str]
) -> None:
    case_id = a_case(client, token)
    photo_id = upload(client, token, case_id, camera_jpeg()).json()["id"]
    worker = login("north.worker", "grid_worker", community="zhuganxiang", grid="g-north")
    path = f"/api/v1/attachments/{photo_id}/public"

    assert client.post(path, headers=auth(worker)).status_code == 403
    made = client.post(path, headers=auth(token))
    assert made.status_code == 200 and made.json()["public"] is True
    back = client.post(path, json={"public": False}, headers=auth(token))
    assert back.status_code == 200 and back.json()["public"] is False
    south = login("south.worker", "grid_worker", community="zhuganxiang", grid="g-south")
    assert client.post(path, headers=auth(south)).status_code == 404


def test_the_photo_bench_uploads_a_4_mb_camera_photo_through_the_route(
    client: TestClient, token: str, rows: Callable[[], list[Attachment]]
) -> None:
    case_id = a_case(client, token)
    client.headers.update(auth(token))

    figures = photo_ms(client, case_id, uploads=1)

    assert figures["photo_bytes_in"] > 3_500_000 and figures["photo_bytes_stored"] <= 500 * 1024
    assert figures["photo_size_stored"] == "1600x1200" and figures["photo_ms"] > 0
    assert len(rows()) == 2  # the warm-up and the measured one: two different photos


def test_a_photo_store_that_fails_keeps_nothing_and_says_try_again(
    client: TestClient, token: str, settings: ApiSettings, rows: Callable[[], list[Attachment]]
) -> None:
    case_id = a_case(client, token)
    settings.attachments_dir.parent.mkdir(parents=True, exist_ok=True)
    settings.attachments_dir.write_bytes(b"")  # the store's directory is a file: every write fails

    answer = upload(client, token, case_id, camera_jpeg())

    assert answer.status_code == 503, answer.text
    assert answer.json()["key"] == "photo_store_down" and "nothing was kept" in answer.json()["detail"]
    assert int(answer.headers["Retry-After"]) > 0
    assert rows() == []
    # The phone's retry, once the store is back, goes through.
    settings.attachments_dir.unlink()
    again = upload(client, token, case_id, camera_jpeg())
    assert again.status_code == 201, again.text
    assert len(rows()) == 1
