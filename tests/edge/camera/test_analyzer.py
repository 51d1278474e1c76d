"""The analyser on synthetic clips written with OpenCV's VideoWriter and read back with VideoCapture.

Each scenario asserts the exact sequence of (kind, phase, discriminator) it must produce, so a missed
incident, a duplicate event, a missing end or a false event on a noise/lighting clip all fail.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest

from contract.messages import Event, EventMessage
from edge.camera.analyzer import CameraAnalyzer, Frame
from edge.camera.config import CameraConfig, ZoneConfig
from edge.camera.masks import Image
from edge.camera.synthetic import BY_NAME, FIRE_LANE, FPS, PRIVACY, SCENARIOS, Scenario, walk_in

T0_MS = 1_764_183_600_000
SIZE = (160, 120)  # small frames keep the suite fast; the benchmark runs the same clips at 320×240

# Per scenario: the events in order, as (kind, phase, zone or reason).
EXPECTED: dict[str, list[tuple[str, str, str]]] = {
    "enter-leave": [("camera.motion", "start", "fire-lane"), ("camera.motion", "end", "fire-lane")],
    "two-visits": [
        ("camera.motion", "start", "fire-lane"),
        ("camera.motion", "end", "fire-lane"),
        ("camera.motion", "start", "fire-lane"),
        ("camera.motion", "end", "fire-lane"),
    ],
    # Back within the cool-down: one incident.
    "re-entry-in-cooldown": [("camera.motion", "start", "fire-lane"), ("camera.motion", "end", "fire-lane")],
    # Standing still for 25 s is still one incident, with updates every 10 s while it stays.
    "parked-car": [
        ("camera.motion", "start", "fire-lane"),
        ("camera.motion", "update", "fire-lane"),
        ("camera.motion", "update", "fire-lane"),
        ("camera.motion", "end", "fire-lane"),
    ],
    "outside-zone": [],
    "tiny-object": [],
    "brief-crossing": [],
    "noise-only": [],
    "lighting-ramp": [],
    "lens-covered": [("camera.tamper", "start", "covered"), ("camera.tamper", "end", "covered")],
    "lens-papered": [("camera.tamper", "start", "covered"), ("camera.tamper", "end", "covered")],
    "blur-ramp": [("camera.tamper", "start", "blurred"), ("camera.tamper", "end", "blurred")],
    "camera-shift": [("camera.tamper", "start", "moved"), ("camera.tamper", "end", "moved")],
    "haze": [("camera.haze", "start", ""), ("camera.haze", "end", "")],
}


def camera_config(**overrides: object) -> CameraConfig:
    base: dict[str, object] = {
        "id": "cam-01",
        "source": "unused",
        "zones": [ZoneConfig(id="fire-lane", polygon=FIRE_LANE)],
        "privacy_masks": [PRIVACY],
    }
    return CameraConfig.model_validate(base | overrides)


def read_clip(path: Path) -> Iterator[Frame]:
    """Frames of a file with the file's own clock, so the replay is exact whatever the machine speed."""
    capture = cv2.VideoCapture(str(path))
    try:
        assert capture.isOpened(), f"cannot read {path}"
        index = 0
        while True:
            ok, image = capture.read()
            if not ok:
                return
            t = index / FPS
            yield Frame(image, t, T0_MS + round(t * 1000))
            index += 1
    finally:
        capture.release()


def analyse(config: CameraConfig, frames: Iterator[Frame]) -> list[Event]:
    analyzer = CameraAnalyzer(config)
    return [event for frame in frames for event in analyzer.process(frame)]


def summary(events: list[Event]) -> list[tuple[str, str, str]]:
    return [(e.kind, e.phase, str(e.attrs.get("zone", e.attrs.get("reason", "")))) for e in events]


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.name)
def test_scenario_gives_exactly_the_expected_events(scenario: Scenario, tmp_path: Path) -> None:
    clip = scenario.write(tmp_path / f"{scenario.name}.avi", size=SIZE)
    events = analyse(camera_config(), read_clip(clip))

    assert summary(events) == EXPECTED[scenario.name]
    # One incident, one id: every start has exactly one end with the same id, and nothing is left open.
    starts = [e.id for e in events if e.phase == "start"]
    ends = [e.id for e in events if e.phase == "end"]
    assert starts == ends
    assert len(set(starts)) == len(starts)
    for event in events:
        assert event.device == "cam-01"
        assert isinstance(event.attrs["duration_s"], float)
        assert 0.0 <= float(event.attrs["score"]) <= 1.0
    if events:
        # The whole batch is a valid contract message (attr keys and values included).
        EventMessage.model_validate_json(EventMessage(seq=1, events=events).model_dump_json())


def test_motion_event_carries_zone_score_and_duration(tmp_path: Path) -> None:
    clip = SCENARIOS[0].write(tmp_path / "clip.avi", size=SIZE)
    start, end = analyse(camera_config(), read_clip(clip))
    assert start.attrs["zone"] == end.attrs["zone"] == "fire-lane"
    assert start.attrs["duration_s"] == pytest.approx(1.0, abs=0.15)  # min_duration_s
    # The shape is in the zone from t=4 s and gone shortly after t=8 s.
    assert 3.5 <= float(end.attrs["duration_s"]) <= 6.0
    assert float(end.attrs["score"]) > 0.02
    assert end.ts - start.ts >= 5_000  # ends only after the 5 s cool-down


def test_motion_under_a_privacy_mask_is_never_seen() -> None:
    # A zone inside the privacy mask: the shape walking there is blacked out before analysis.
    hidden = [(0.0, 0.0), (0.5, 0.0), (0.5, 1.0), (0.0, 1.0)]
    left = [(0.05, 0.5), (0.45, 0.5), (0.45, 0.9), (0.05, 0.9)]
    zone = ZoneConfig(id="left", polygon=left, cooldown_s=2.0)
    # It first appears at 4 s, after the background is learned (a shape present during the first
    # seconds is partly learned as background, which would hide it when it comes back).
    walk = Scenario("left-walk", 18.0, walk_in([(6.0, 10.0)]))

    def frames(mask: list[list[tuple[float, float]]]) -> list[Event]:
        config = camera_config(zones=[zone], privacy_masks=mask)
        return analyse(config, (Frame(img, t, T0_MS) for t, img in walk.frames(size=SIZE)))

    # Unmasked, the shape crosses the left zone on its way in (4-6 s) and out (10-12 s): two incidents.
    crossing = [("camera.motion", "start", "left"), ("camera.motion", "end", "left")]
    assert summary(frames([])) == crossing * 2
    assert frames([hidden]) == []


def test_privacy_mask_blacks_out_pixels_in_place() -> None:
    from edge.camera.masks import PrivacyMask

    image: Image = np.full((100, 200, 3), 200, np.uint8)
    out = PrivacyMask([[(0.0, 0.0), (0.5, 0.0), (0.5, 0.5), (0.0, 0.5)]]).apply(image)
    assert out is image
    assert int(image[:45, :95].max()) == 0
    assert int(image[60:, 110:].min()) == 200


def test_rate_limit_bounds_a_busy_scene() -> None:
    # Ten zones all crossed at once: with burst 3 and 6/min, only three incidents get out, each whole.
    zones = [ZoneConfig(id=f"z{i}", polygon=FIRE_LANE, min_duration_s=0.5, cooldown_s=1.0) for i in range(10)]
    config = camera_config(zones=zones, rate_limit={"events_per_minute": 6, "burst": 3})
    scenario = Scenario("busy", 12.0, walk_in([(3.0, 6.0)]))
    analyzer = CameraAnalyzer(config)
    events = [e for t, img in scenario.frames(size=SIZE) for e in analyzer.process(Frame(img, t, T0_MS))]
    starts = [e for e in events if e.phase == "start"]
    ends = [e for e in events if e.phase == "end"]
    assert len(starts) == 3
    assert sorted(e.id for e in ends) == sorted(e.id for e in starts)
    assert analyzer.rate_limited == 7 * 2  # the seven suppressed incidents' start and end


def test_close_ends_open_incidents() -> None:
    scenario = Scenario("stays", 8.0, walk_in([(3.0, 100.0)]))
    analyzer = CameraAnalyzer(camera_config())
    events = [e for t, img in scenario.frames(size=SIZE) for e in analyzer.process(Frame(img, t, T0_MS))]
    assert summary(events) == [("camera.motion", "start", "fire-lane")]
    closing = analyzer.close(9.0, T0_MS + 9000)
    assert summary(closing) == [("camera.motion", "end", "fire-lane")]
    assert closing[0].id == events[0].id
    assert analyzer.close(10.0, T0_MS) == []


@pytest.mark.parametrize(
    ("name", "loosened"),
    [("tiny-object", {"min_area": 0.002}), ("brief-crossing", {"min_duration_s": 0.2})],
)
def test_quiet_clips_are_quiet_because_of_the_threshold(name: str, loosened: dict[str, float]) -> None:
    # The negative scenarios do show motion in the zone: only min_area / min_duration_s keep them out.
    zone = ZoneConfig.model_validate({"id": "fire-lane", "polygon": FIRE_LANE} | loosened)
    clip = BY_NAME[name]
    events = analyse(camera_config(zones=[zone]), (Frame(img, t, T0_MS) for t, img in clip.frames(size=SIZE)))
    assert summary(events) == [("camera.motion", "start", "fire-lane"), ("camera.motion", "end", "fire-lane")]
