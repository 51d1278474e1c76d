"""Synthetic camera clips with known ground truth, for tests, the benchmark and a pilot's self-check.

Each scenario renders a textured street-like scene with sensor noise and one kind of happening: a
shape entering and leaving the fire-lane zone, noise or lighting only, a covered lens, a blur ramp, a
camera shift, a haze wash-out. ``expected`` lists the incidents a correct analyser reports, as
(kind, discriminating attribute) pairs, in order of start.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from edge.camera.masks import Image

FPS = 10.0
WIDTH, HEIGHT = 320, 240
FIRE_LANE = [(0.55, 0.45), (0.95, 0.45), (0.95, 0.95), (0.55, 0.95)]
"""The fire-lane zone of every scenario, in normalised coordinates."""
PRIVACY = [(0.0, 0.0), (0.2, 0.0), (0.2, 0.25), (0.0, 0.25)]
"""A privacy mask over the top-left corner (say, a neighbour's window)."""

Expected = tuple[str, str]
MOTION: Expected = ("camera.motion", "fire-lane")


def background(seed: int = 7, width: int = WIDTH, height: int = HEIGHT) -> Image:
    """A fixed textured scene: gradient sky, blocks of 'buildings', a road with markings."""
    rng = np.random.default_rng(seed)
    img = np.zeros((height, width, 3), np.uint8)
    for y in range(height):
        img[y, :] = (90 + y * 60 // height, 100 + y * 40 // height, 110)
    for _ in range(14):
        x, y = int(rng.integers(0, width - 30)), int(rng.integers(0, height // 2))
        w, h = int(rng.integers(15, 60)), int(rng.integers(20, 90))
        colour = tuple(int(c) for c in rng.integers(30, 220, 3))
        cv2.rectangle(img, (x, y), (x + w, y + h), colour, -1)
    cv2.rectangle(img, (0, height * 3 // 5), (width, height), (70, 70, 75), -1)
    for x in range(0, width, 40):
        cv2.rectangle(img, (x, height * 4 // 5), (x + 20, height * 4 // 5 + 4), (230, 230, 230), -1)
    return img


@dataclass(frozen=True)
class Scenario:
    name: str
    seconds: float
    render: Callable[[Image, float], Image]
    """(scene copy, t in seconds) -> frame before noise."""
    expected: list[Expected] = field(default_factory=list)
    noise: float = 3.0

    def frames(self, seed: int = 1, size: tuple[int, int] = (WIDTH, HEIGHT)) -> Iterator[tuple[float, Image]]:
        rng = np.random.default_rng(seed)
        # The seed varies the scene as well as the noise, so the suite is not one street seen ten times.
        base = background(seed=6 + seed, width=size[0], height=size[1])
        for i in range(round(self.seconds * FPS)):
            t = i / FPS
            frame = self.render(base.copy(), t).astype(np.float32)
            frame += rng.standard_normal(frame.shape, dtype=np.float32) * np.float32(self.noise)
            yield t, np.clip(frame, 0, 255).astype(np.uint8)

    def write(self, path: Path, seed: int = 1, size: tuple[int, int] = (WIDTH, HEIGHT)) -> Path:
        """Encode the clip as MJPEG in AVI (OpenCV's own writer, no codec packs needed)."""
        writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), FPS, size)
        try:
            if not writer.isOpened():
                raise RuntimeError(f"cannot write {path}")
            for _t, frame in self.frames(seed, size):
                writer.write(frame)
        finally:
            writer.release()
        return path


def _box(img: Image, cx: float, cy: float, size: int = 36) -> Image:
    h, w = img.shape[:2]
    x, y = int(cx * w), int(cy * h)
    s = size * w // WIDTH
    cv2.rectangle(img, (x - s // 2, y - s // 2), (x + s // 2, y + s // 2), (20, 200, 240), -1)
    return img


def _path(t: float, visits: list[tuple[float, float]]) -> tuple[float, float] | None:
    """Position of a shape that walks in from the left, wanders in the zone and walks out again."""
    for enter, leave in visits:
        if enter - 2.0 <= t < enter:  # approaching along the road, outside the zone
            return 0.1 + 0.55 * (t - enter + 2.0) / 2.0, 0.7
        if enter <= t < leave:  # inside the zone, wandering
            return 0.72 + 0.08 * np.sin(3.0 * (t - enter)), 0.7 + 0.06 * np.cos(2.0 * (t - enter))
        if leave <= t < leave + 2.0:  # leaving to the left
            return 0.65 - 0.55 * (t - leave) / 2.0, 0.7
    return None


def walk_in(visits: list[tuple[float, float]]) -> Callable[[Image, float], Image]:
    """A renderer of a shape that walks into the fire lane at each ``enter`` and out at ``leave``."""

    def render(img: Image, t: float) -> Image:
        pos = _path(t, visits)
        return _box(img, *pos) if pos is not None else img

    return render


def _parked(img: Image, t: float) -> Image:
    # Drives in, stands still in the fire lane for 25 s, drives off: motion alone would lose it.
    if 2.0 <= t < 4.0:
        return _box(img, 0.1 + 0.65 * (t - 2.0) / 2.0, 0.7, size=48)
    if 4.0 <= t < 29.0:
        return _box(img, 0.75, 0.7, size=48)
    if 29.0 <= t < 31.0:
        return _box(img, 0.75 - 0.65 * (t - 29.0) / 2.0, 0.7, size=48)
    return img


def _outside(img: Image, t: float) -> Image:
    # Walks back and forth on the left half only.
    return _box(img, 0.1 + 0.3 * abs(np.sin(t / 2.0)), 0.7) if 2.0 <= t < 12.0 else img


def _tiny(img: Image, t: float) -> Image:
    # A cat-sized shape wandering in the fire lane: below the zone's min_area, so not an incident.
    if 3.0 <= t < 9.0:
        return _box(img, 0.75 + 0.1 * np.sin(t), 0.7, size=10)
    return img


def _dash(img: Image, t: float) -> Image:
    # A bird-fast crossing of the fire lane in 0.6 s: shorter than min_duration_s.
    if 5.0 <= t < 5.6:
        return _box(img, 0.5 + (t - 5.0) / 0.6 * 0.5, 0.7)
    return img


def _lighting(img: Image, t: float) -> Image:
    gain = 1.0 - 0.55 * np.sin(np.pi * min(t, 14.0) / 14.0)  # dusk and back over 14 s
    return cv2.convertScaleAbs(img, alpha=gain)


def _black(img: Image, t: float) -> Image:
    return np.zeros_like(img) if 4.0 <= t < 10.0 else img


def _paper(img: Image, t: float) -> Image:
    # A sheet of paper held over the lens: bright and flat at once, unlike haze.
    return np.full_like(img, 215) if 4.0 <= t < 10.0 else img


def _blur(img: Image, t: float) -> Image:
    if 4.0 <= t < 11.0:
        k = 1 + 2 * min(7, int((t - 4.0) * 4))  # ramps to a 15-pixel kernel in 2 s
        return cv2.GaussianBlur(img, (k, k), 0)
    return img


def _shift(img: Image, t: float) -> Image:
    if 4.0 <= t < 10.0:
        m = np.array([[1, 0, 24], [0, 1, 10]], np.float32)
        return cv2.warpAffine(img, m, (img.shape[1], img.shape[0]), borderMode=cv2.BORDER_REFLECT)
    return img


def _haze(img: Image, t: float) -> Image:
    level = 0.0
    if 4.0 <= t < 14.0:
        level = min(0.8, (t - 4.0) * 0.4)
    elif 14.0 <= t < 16.0:
        level = 0.8 * (16.0 - t) / 2.0
    return cv2.addWeighted(img, 1.0 - level, np.full_like(img, 200), level, 0.0)


SCENARIOS = [
    Scenario("enter-leave", 16.0, walk_in([(4.0, 8.0)]), [MOTION]),
    Scenario("two-visits", 30.0, walk_in([(4.0, 7.0), (17.0, 20.0)]), [MOTION, MOTION]),
    Scenario("re-entry-in-cooldown", 20.0, walk_in([(4.0, 6.0), (9.0, 11.0)]), [MOTION]),
    Scenario("parked-car", 40.0, _parked, [MOTION]),
    Scenario("outside-zone", 16.0, _outside),
    Scenario("tiny-object", 16.0, _tiny),
    Scenario("brief-crossing", 12.0, _dash),
    Scenario("noise-only", 12.0, lambda img, _t: img, noise=12.0),
    Scenario("lighting-ramp", 16.0, _lighting),
    Scenario("lens-covered", 16.0, _black, [("camera.tamper", "covered")]),
    Scenario("lens-papered", 16.0, _paper, [("camera.tamper", "covered")]),
    Scenario("blur-ramp", 16.0, _blur, [("camera.tamper", "blurred")]),
    Scenario("camera-shift", 16.0, _shift, [("camera.tamper", "moved")]),
    Scenario("haze", 24.0, _haze, [("camera.haze", "")]),
]
BY_NAME = {s.name: s for s in SCENARIOS}
