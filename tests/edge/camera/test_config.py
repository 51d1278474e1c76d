"""Camera YAML fails at load, naming the file and the field, never at the first frame."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge.camera.config import CameraConfigError, load_config

ZONE = "{id: fire-lane, polygon: [[0.1, 0.1], [0.9, 0.1], [0.9, 0.9]]}"


@pytest.mark.parametrize(
    ("camera", "message"),
    [
        ("{id: cam-01, source: x, zonez: []}", "zonez"),
        (f"{{id: cam-01, source: x, zones: [{ZONE}, {ZONE}]}}", "duplicate zone id(s): fire-lane"),
        ("{id: cam-01, source: x, zones: [{id: a, polygon: [[0, 0], [1, 1]]}]}", "at least 3"),
        (
            "{id: cam-01, source: x, zones: [{id: a, polygon: [[0, 0], [1.5, 1], [0, 1]]}]}",
            "less than or equal to 1",
        ),
        ("{id: Cam_01, source: x}", "pattern"),
        ("{id: cam-01, source: x, snapshots: {retention_days: 0}}", "greater than 0"),
    ],
    ids=["typo", "duplicate-zone", "two-corners", "outside-frame", "bad-id", "zero-retention"],
)
def test_invalid_camera_config_names_file_and_field(tmp_path: Path, camera: str, message: str) -> None:
    path = tmp_path / "cams.yaml"
    path.write_text(f"community: c\ngateway: g\ncameras: [{camera}]\n")
    with pytest.raises(CameraConfigError) as err:
        load_config(path)
    assert str(path) in str(err.value)
    assert message in str(err.value)


def test_defaults_are_privacy_preserving(tmp_path: Path) -> None:
    path = tmp_path / "cams.yaml"
    path.write_text("community: c\ngateway: g\ncameras: [{id: cam-01, source: 0}]\n")
    config = load_config(path)
    camera = config.cameras[0]
    assert camera.source == 0  # a V4L2 index stays an int
    assert camera.snapshots.enabled is False
    assert config.http.host == "127.0.0.1"
    assert config.http.snapshot_token is None
