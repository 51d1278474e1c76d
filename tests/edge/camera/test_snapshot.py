"""Snapshots: off by default, faces blurred before the JPEG exists, file referenced by path + sha256,
fetchable only with the operator token, purged after the retention."""

from __future__ import annotations

import hashlib
import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import cv2
import httpx
import numpy as np
import pytest
from prometheus_client import CollectorRegistry

from edge.camera.analyzer import CameraAnalyzer, Frame
from edge.camera.config import CameraConfig, SnapshotConfig, ZoneConfig
from edge.camera.http import GatewayHttp
from edge.camera.lifecycle import Transition
from edge.camera.masks import Image
from edge.camera.snapshot import SnapshotStore, blur_faces
from edge.camera.synthetic import FIRE_LANE, Scenario, walk_in

T0_MS = 1_764_183_600_000
TOKEN = "operator-secret-token"


def drawn_face() -> Image:
    """A drawn frontal face that OpenCV's bundled Haar cascade detects (checked at this exact size)."""
    img = np.full((240, 320, 3), 170, np.uint8)
    cx, cy, s = 160, 120, 80
    cv2.ellipse(img, (cx, cy), (int(s * 0.42), int(s * 0.55)), 0, 0, 360, (150, 170, 210), -1)
    for dx in (-1, 1):
        ex, ey = cx + dx * int(s * 0.18), cy - int(s * 0.1)
        cv2.ellipse(img, (ex, ey - int(s * 0.1)), (int(s * 0.13), int(s * 0.03)), 0, 0, 360, (40, 40, 40), -1)
        cv2.ellipse(img, (ex, ey), (int(s * 0.1), int(s * 0.05)), 0, 0, 360, (255, 255, 255), -1)
        cv2.circle(img, (ex, ey), int(s * 0.04), (30, 30, 30), -1)
    cv2.line(img, (cx, cy - int(s * 0.05)), (cx - int(s * 0.04), cy + int(s * 0.12)), (110, 120, 160), 3)
    cv2.ellipse(img, (cx, cy + int(s * 0.27)), (int(s * 0.15), int(s * 0.05)), 0, 0, 360, (60, 60, 150), -1)
    blurred: Image = cv2.GaussianBlur(img, (5, 5), 0)
    return blurred


def faces_in(image: Image) -> int:
    store = SnapshotStore(SnapshotConfig(enabled=True))
    assert store._classifier is not None
    grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    return len(store._classifier.detectMultiScale(grey, scaleFactor=1.1, minNeighbors=4, minSize=(16, 16)))


def start_of(ident: uuid.UUID | None = None) -> Transition:
    return Transition(ident or uuid.uuid4(), "start", 1.0, 1.0, 0.5)


def test_snapshots_are_off_by_default(tmp_path: Path) -> None:
    config = CameraConfig(id="cam-01", source="x", zones=[ZoneConfig(id="fire-lane", polygon=FIRE_LANE)])
    assert config.snapshots.enabled is False
    scenario = Scenario("walk", 12.0, walk_in([(3.0, 5.0)]))
    analyzer = CameraAnalyzer(config)  # the runtime passes no snapshot hook when disabled
    events = [e for t, img in scenario.frames() for e in analyzer.process(Frame(img, t, T0_MS))]
    assert [e.phase for e in events] == ["start", "end"]
    assert all("snapshot" not in e.attrs for e in events)


def test_faces_are_blurred_before_the_jpeg_is_written(tmp_path: Path) -> None:
    image = drawn_face()
    assert faces_in(image) == 1  # the fixture really is a face to the detector
    store = SnapshotStore(SnapshotConfig(enabled=True, directory=tmp_path))
    step = start_of()
    attrs = store("cam-01", step, image)

    path = tmp_path / "cam-01" / f"{step.id}.jpg"
    assert attrs == {
        "snapshot": f"cam-01/{step.id}.jpg",
        "snapshot_sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
    }
    written = cv2.imdecode(np.frombuffer(path.read_bytes(), np.uint8), cv2.IMREAD_COLOR)
    assert faces_in(written) == 0
    # The eyes are gone: the face region is smooth, not the original's dark-and-white detail.
    eyes = (slice(104, 120), slice(136, 184))
    assert float(written[eyes].std()) < 0.5 * float(image[eyes].std())
    assert faces_in(image) == 1  # the caller's frame is not modified
    assert list(tmp_path.glob("cam-01/*.tmp")) == []


def test_blur_faces_counts_what_it_blurs() -> None:
    store = SnapshotStore(SnapshotConfig(enabled=True))
    assert store._classifier is not None
    assert blur_faces(drawn_face(), store._classifier) == 1
    assert blur_faces(np.full((240, 320, 3), 170, np.uint8), store._classifier) == 0


def test_retention_purges_old_snapshots(tmp_path: Path) -> None:
    store = SnapshotStore(
        SnapshotConfig(enabled=True, directory=tmp_path, retention_days=2, blur_faces=False)
    )
    old, new = start_of(), start_of()
    store("cam-01", old, drawn_face())
    store("cam-01", new, drawn_face())
    three_days_ago = time.time() - 3 * 86400
    os.utime(tmp_path / "cam-01" / f"{old.id}.jpg", (three_days_ago, three_days_ago))
    assert store.purge() == 1
    assert [p.stem for p in (tmp_path / "cam-01").glob("*.jpg")] == [str(new.id)]


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[GatewayHttp, SnapshotStore, str]]:
    store = SnapshotStore(SnapshotConfig(enabled=True, directory=tmp_path))
    step = start_of()
    reference = store("cam-01", step, drawn_face())["snapshot"]
    http = GatewayHttp(
        "127.0.0.1",
        0,
        registry=CollectorRegistry(),
        health=lambda: {"cam-01": {"fps": 0.0}},
        snapshots={"cam-01": store},
        token=TOKEN,
    )
    http.start()
    yield http, store, reference
    http.stop()


@pytest.mark.integration
def test_snapshot_fetch_needs_the_operator_token(server: tuple[GatewayHttp, SnapshotStore, str]) -> None:
    http, store, reference = server
    base = f"http://127.0.0.1:{http.port}"
    with httpx.Client(base_url=base, timeout=5) as client:
        ok = client.get(f"/snapshots/{reference}", headers={"Authorization": f"Bearer {TOKEN}"})
        assert ok.status_code == 200
        assert ok.headers["content-type"] == "image/jpeg"
        path = store.path_of(reference)
        assert path is not None and ok.content == path.read_bytes()

        assert client.get(f"/snapshots/{reference}").status_code == 401
        wrong = client.get(f"/snapshots/{reference}", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 403
        missing = f"/snapshots/cam-01/{uuid.uuid4()}.jpg"
        assert client.get(missing, headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 404
        escape = "/snapshots/cam-01/..%2f..%2fetc%2fpasswd"
        assert client.get(escape, headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 404
        assert client.get("/health").json() == {"cam-01": {"fps": 0.0}}


@pytest.mark.integration
def test_without_a_configured_token_nobody_gets_snapshots(tmp_path: Path) -> None:
    store = SnapshotStore(SnapshotConfig(enabled=True, directory=tmp_path, blur_faces=False))
    reference = store("cam-01", start_of(), drawn_face())["snapshot"]
    http = GatewayHttp(
        "127.0.0.1", 0, registry=CollectorRegistry(), health=dict, snapshots={"cam-01": store}, token=None
    )
    http.start()
    try:
        response = httpx.get(
            f"http://127.0.0.1:{http.port}/snapshots/{reference}",
            headers={"Authorization": "Bearer anything"},
            timeout=5,
        )
        assert response.status_code == 403
    finally:
        http.stop()
