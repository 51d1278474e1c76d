"""A camera case's blurred snapshot, fetched on demand from the gateway's real snapshot endpoint
(edge/camera/http.py with its SnapshotStore, started here with a generated frame): shown to users in
scope, 404 outside it, bounded by a timeout and a size limit, and a clear message when the gateway cannot
deliver. Each test runs on SQLite and on a real PostgreSQL."""

from __future__ import annotations

import json
import re
import socket
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry
from sqlalchemy import select
from sqlalchemy.orm import Session

from alerts.engine import AlertEngine
from alerts.intake import CaseBook
from alerts.rules import load_rules
from api.settings import ApiSettings
from cases.models import Case
from cases.policy import CasePolicy
from common.db import make_engine
from contract.catalog import load_catalog
from contract.messages import Event
from edge.camera.config import SnapshotConfig
from edge.camera.http import GatewayHttp
from edge.camera.lifecycle import Transition
from edge.camera.snapshot import SnapshotStore
from edge.camera.synthetic import background
from tests.api.conftest import auth, console_login
from tests.edge.camera.test_snapshot import drawn_face
from tests.platform import CONFIG_DIR

pytestmark = pytest.mark.integration
TOKEN = "gateway-snapshot-secret"


@pytest.fixture
def settings(tmp_path: Path, api_database_url: str) -> ApiSettings:
    """The API's settings of tests/api/conftest.py, with the attachment store in the test's directory."""
    return ApiSettings(
        database_url=api_database_url,
        series_url=f"sqlite:///{tmp_path}/series.db",
        config_dir=CONFIG_DIR,
        mqtt_port=1,
        attachments_dir=tmp_path / "attachments",
    )


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[tuple[GatewayHttp, SnapshotStore, str]]:
    """The gateway's own HTTP server and snapshot store, with one blurred snapshot of a generated frame."""
    store = SnapshotStore(SnapshotConfig(enabled=True, directory=tmp_path / "snapshots"))
    frame = background()
    face = drawn_face()
    frame[:, :] = face[: frame.shape[0], : frame.shape[1]]
    reference = store("cam-01", Transition(uuid.uuid4(), "start", 1.0, 1.0, 0.5), frame)["snapshot"]
    http = GatewayHttp(
        "127.0.0.1", 0, registry=CollectorRegistry(), health=dict, snapshots={"cam-01": store}, token=TOKEN
    )
    http.start()
    yield http, store, reference
    http.stop()


def camera_case(settings: ApiSettings, reference: str) -> int:
    """A fire-lane case opened by cam-01's motion event (g-north), through the engine and the intake."""
    policy = CasePolicy.load(CONFIG_DIR)
    db = make_engine(settings.database_url)
    book = CaseBook(db, policy, timedelta(hours=1))
    alerts = AlertEngine(load_rules(CONFIG_DIR, policy.categories), load_catalog(CONFIG_DIR))
    now = datetime.now(UTC)
    event = Event(
        device="cam-01",
        ts=int(now.timestamp() * 1000),
        id=uuid.uuid4(),
        kind="camera.motion",
        phase="start",
        attrs={"zone": "fire-lane", "score": 0.81, "snapshot": reference},
    )
    book.apply(alerts.on_event("zhuganxiang", "gw-01", event), now=now)
    with Session(db) as session:
        case_id = session.scalars(select(Case.id).where(Case.category == "fire_lane_blocked")).first()
    db.dispose()
    assert case_id is not None
    return case_id


def point_at(monkeypatch: pytest.MonkeyPatch, port: int, token: str = TOKEN, **extra: str) -> None:
    monkeypatch.setenv("YIWANG_GATEWAY_HTTP", json.dumps({"zhuganxiang/gw-01": f"http://127.0.0.1:{port}"}))
    monkeypatch.setenv("YIWANG_GATEWAY_SNAPSHOT_TOKEN", token)
    for name, value in extra.items():
        monkeypatch.setenv(f"YIWANG_{name.upper()}", value)


def test_users_in_scope_see_the_snapshot_others_get_404(
    client: TestClient,
    token: str,
    login: object,
    settings: ApiSettings,
    gateway: tuple[GatewayHttp, SnapshotStore, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    http, store, reference = gateway
    case_id = camera_case(settings, reference)
    point_at(monkeypatch, http.port)
    url = f"/api/v1/cases/{case_id}/snapshot?ref={reference}"
    shown = client.get(url, headers=auth(token))
    assert shown.status_code == 200, shown.text
    assert shown.headers["content-type"] == "image/jpeg"
    assert shown.headers["cache-control"].startswith("private")
    on_gateway = store.path_of(reference)
    assert on_gateway is not None and shown.content == on_gateway.read_bytes()  # the blurred file itself

    assert callable(login)
    north = login("li.north", "grid_worker", community="zhuganxiang", grid="g-north")
    south = login("li.south", "grid_worker", community="zhuganxiang", grid="g-south")
    assert client.get(url, headers=auth(north)).status_code == 200
    outside = client.get(url, headers=auth(south))
    assert outside.status_code == 404 and "no snapshot" in outside.json()["detail"]
    not_evidence = f"/api/v1/cases/{case_id}/snapshot?ref=cam-01/{uuid.uuid4()}.jpg"
    assert client.get(not_evidence, headers=auth(token)).status_code == 404
    bad_name = f"/api/v1/cases/{case_id}/snapshot?ref=cam-01/../../etc/passwd"
    assert client.get(bad_name, headers=auth(token)).status_code == 422

    # The case page links to it; the console twin relays it to the signed-in operator.
    assert console_login(client).status_code in (200, 303)
    page = client.get(f"/console/cases/{case_id}").text
    assert f'href="/console/cases/{case_id}/snapshot?ref={reference}"' in page
    assert "查看快照（人脸已模糊）" in page
    console = client.get(f"/console/cases/{case_id}/snapshot?ref={reference}")
    assert console.status_code == 200 and console.content == shown.content

    # Nothing is kept centrally until an operator keeps it: then it is one of the case's photos.
    keep = f"/api/v1/cases/{case_id}/snapshot/attach?ref={reference}"
    assert client.post(keep, headers=auth(north)).status_code == 403  # a grid worker views, does not keep
    kept = client.post(keep, headers=auth(token))
    assert kept.status_code == 201, kept.text
    photo_id = kept.json()["id"]
    assert client.post(keep, headers=auth(token)).json()["id"] == photo_id  # kept once
    assert client.get(f"/attachments/{photo_id}", headers=auth(token)).content[:3] == b"\xff\xd8\xff"
    assert client.get(f"/attachments/{photo_id}", headers=auth(south)).status_code == 404
    events = client.get(f"/api/v1/cases/{case_id}", headers=auth(token)).json()["events"]
    assert [e["data"] for e in events if e["action"] == "snapshot_attached"] == [
        {"attachments": [photo_id], "snapshot": reference}
    ]
    page = client.get(f"/console/cases/{case_id}").text
    assert 'class="snapshot-keep"' in page and "存入案件照片" in page
    assert f'<a href="/attachments/{photo_id}"' in page and "保存现场快照" in page and "处置前" in page
    csrf = re.search(r'name="csrf" value="([^"]+)"', page)
    assert csrf is not None
    form = f"/console/cases/{case_id}/snapshot/attach"
    again = client.post(form, data={"csrf": csrf.group(1), "ref": reference}, follow_redirects=False)
    assert again.status_code == 303 and again.headers["location"].endswith("#timeline")
    forged = client.post(form, data={"csrf": csrf.group(1), "ref": "../../etc/passwd"})
    assert forged.status_code == 422 and "找不到这张快照" in forged.text


def test_a_gateway_that_cannot_deliver_is_a_clear_answer(
    client: TestClient,
    token: str,
    settings: ApiSettings,
    gateway: tuple[GatewayHttp, SnapshotStore, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    http, store, reference = gateway
    case_id = camera_case(settings, reference)
    url = f"/api/v1/cases/{case_id}/snapshot?ref={reference}"

    unconfigured = client.get(url, headers=auth(token))
    assert unconfigured.status_code == 503 and "YIWANG_GATEWAY_HTTP" in unconfigured.json()["detail"]

    point_at(monkeypatch, http.port, token="not-the-token")
    refused = client.get(url, headers=auth(token))
    assert refused.status_code == 502 and "refused the snapshot token" in refused.json()["detail"]

    point_at(monkeypatch, http.port, gateway_snapshot_max_bytes="1024")
    too_big = client.get(url, headers=auth(token))
    assert too_big.status_code == 502 and "no JPEG within 1024 bytes" in too_big.json()["detail"]

    point_at(monkeypatch, http.port)
    path = store.path_of(reference)
    assert path is not None
    path.unlink()  # past the gateway's retention
    gone = client.get(url, headers=auth(token))
    assert gone.status_code == 404 and "no longer has this snapshot" in gone.json()["detail"]

    # A gateway that accepts the connection and never answers: the timeout bounds the wait.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(4)
        point_at(monkeypatch, silent.getsockname()[1], gateway_snapshot_timeout_s="0.5")
        slow = client.get(url, headers=auth(token))
    assert slow.status_code == 504 and "did not answer in time" in slow.json()["detail"]

    port = http.port
    http.stop()  # the gateway is offline
    point_at(monkeypatch, port)
    down = client.get(url, headers=auth(token))
    assert down.status_code == 502 and "cannot be reached" in down.json()["detail"]
    assert console_login(client).status_code in (200, 303)
    told = client.get(f"/console/cases/{case_id}/snapshot?ref={reference}&lang=zh")
    assert told.status_code == 502
    assert re.fullmatch(r"暂时无法连接网关“北区网关”：快照仍保存在网关上，请稍后再试。", told.text), told.text
