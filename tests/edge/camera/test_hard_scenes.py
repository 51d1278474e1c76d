"""Scenes the development clips never had, which the analyser once got wrong (found by the held-out set).

A noisy sensor hid a defocused lens (noise is fine detail to a sharpness measure); a small dark
figure walking into the zone stayed below min_area because the motion pre-blur ate its rim; and a slow
wash-out by a dim veil looked like a visitor in the zone before it was clearly haze. Clips are
rendered at the benchmark's 320×240, where both happened.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from contract.messages import Event
from edge.camera.analyzer import CameraAnalyzer, Frame
from edge.camera.config import CameraConfig, ZoneConfig
from edge.camera.masks import Image
from edge.camera.scene import noise_sigma
from edge.camera.synthetic import FIRE_LANE, PRIVACY, Scenario, background, draw_shape

T0_MS = 1_764_183_600_000


def analyse(scenario: Scenario, seed: int = 3) -> list[tuple[str, str, str, float]]:
    config = CameraConfig(
        id="cam-01",
        source="unused",
        zones=[ZoneConfig(id="fire-lane", polygon=FIRE_LANE)],
        privacy_masks=[PRIVACY],
    )
    analyzer = CameraAnalyzer(config)
    events: list[Event] = []
    for t, image in scenario.frames(seed):
        events += analyzer.process(Frame(image, t, T0_MS + round(t * 1000)))
    return [
        (
            e.kind,
            e.phase,
            str(e.attrs.get("zone", e.attrs.get("reason", ""))),
            (e.ts - T0_MS) / 1000 - float(e.attrs["duration_s"]),
        )
        for e in events
    ]


def _defocus(img: Image, t: float) -> Image:
    return cv2.GaussianBlur(img, (11, 11), 0) if 4.0 <= t < 11.0 else img


def test_a_defocused_lens_on_a_noisy_sensor_is_blurred() -> None:
    events = analyse(Scenario("noisy-defocus", 16.0, _defocus, noise=12.0))
    assert [e[:3] for e in events] == [
        ("camera.tamper", "start", "blurred"),
        ("camera.tamper", "end", "blurred"),
    ]
    assert events[0][3] == pytest.approx(4.0, abs=0.5)


def test_a_noisy_sensor_alone_is_not_blurred() -> None:
    assert analyse(Scenario("noisy", 12.0, lambda img, _t: img, noise=16.0)) == []


def _small_dark_figure(img: Image, t: float) -> Image:
    # A 26-pixel triangle (2.8 % of the zone, min_area is 2 %) in near-black on the grey road.
    if 2.0 <= t < 6.0:
        return draw_shape(img, "triangle", 0.76 * (t - 2.0) / 4.0, 0.72, 26.0, (25, 25, 30))
    if 6.0 <= t < 14.0:
        return draw_shape(img, "triangle", 0.76 + 0.03 * np.sin(2.0 * t), 0.72, 26.0, (25, 25, 30))
    return img


def test_a_small_dark_figure_in_the_zone_is_seen_when_it_arrives() -> None:
    scenario = Scenario("small-figure", 20.0, _small_dark_figure, noise=6.0, objects=_small_dark_figure)
    (truth,) = scenario.truth()
    events = analyse(scenario, seed=5)
    assert [e[:3] for e in events] == [
        ("camera.motion", "start", "fire-lane"),
        ("camera.motion", "end", "fire-lane"),
    ]
    assert events[0][3] == pytest.approx(truth.start_s, abs=1.0)


def _slow_dim_haze(img: Image, t: float) -> Image:
    level = min(0.87, max(0.0, t - 5.6) * 0.25) if t < 17.0 else 0.0
    return cv2.addWeighted(img, 1.0 - level, np.full_like(img, 176), level, 0.0)


def test_a_slow_wash_out_is_haze_and_never_a_visitor() -> None:
    events = analyse(Scenario("slow-haze", 26.0, _slow_dim_haze, noise=6.0), seed=163)
    assert [e[:3] for e in events] == [("camera.haze", "start", ""), ("camera.haze", "end", "")]
    assert events[0][3] == pytest.approx(5.6 + 0.5 / 0.25, abs=1.0)  # the veil passes half the light


@pytest.mark.parametrize("sigma", [2.0, 5.0, 10.0])
def test_noise_is_estimated_apart_from_the_scene_edges(sigma: float) -> None:
    grey = cv2.cvtColor(background(seed=11), cv2.COLOR_BGR2GRAY).astype(np.float32)
    noisy = np.clip(grey + np.random.default_rng(1).standard_normal(grey.shape) * sigma, 0, 255)
    assert noise_sigma(noisy.astype(np.uint8)) == pytest.approx(sigma, rel=0.2)
