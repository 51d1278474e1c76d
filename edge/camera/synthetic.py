"""Synthetic camera clips with known ground truth, for tests, the benchmark and a pilot's self-check.

Each scenario renders a textured street-like scene with sensor noise and one kind of happening: a
shape entering and leaving the fire-lane zone, noise or lighting only, a covered lens, a blur ramp, a
camera shift, a haze wash-out. ``Scenario.truth`` lists the incidents a correct analyser reports, with
the time each starts: tamper and haze starts are declared with the clip; zone starts are measured from
the clip's own ``objects`` layer (see ``zone_truth``), so a new path or shape needs no hand-counted time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import cv2
import numpy as np

from edge.camera.config import ZoneConfig
from edge.camera.masks import Image, polygon_mask

FPS = 10.0
WIDTH, HEIGHT = 320, 240
FIRE_LANE = [(0.55, 0.45), (0.95, 0.45), (0.95, 0.95), (0.55, 0.95)]
"""The fire-lane zone of every scenario, in normalised coordinates."""
PRIVACY = [(0.0, 0.0), (0.2, 0.0), (0.2, 0.25), (0.0, 0.25)]
"""A privacy mask over the top-left corner (say, a neighbour's window)."""

ZONE = "fire-lane"
Renderer = Callable[[Image, float], Image]
"""(scene copy, t in seconds) -> frame before noise."""


class Truth(NamedTuple):
    """One incident a correct analyser reports: its kind, discriminating attribute and start."""

    kind: str
    attr: str
    """Zone id (camera.motion), reason (camera.tamper), or "" (camera.haze)."""
    start_s: float


def tamper(reason: str, start_s: float) -> Truth:
    return Truth("camera.tamper", reason, start_s)


def haze(start_s: float) -> Truth:
    return Truth("camera.haze", "", start_s)


def zone_truth(objects: Renderer, seconds: float, zone: ZoneConfig) -> list[Truth]:
    """The zone incidents of a clip, measured on its objects layer drawn alone on a black frame.

    An object is present while it covers at least ``min_area`` of the zone; presences closer than
    ``cooldown_s`` are one incident, and one shorter than ``min_duration_s`` is none — the zone's own
    rules, applied to what is really there rather than to what a detector saw.
    """
    mask = polygon_mask(zone.polygon, WIDTH, HEIGHT) > 0
    area = int(mask.sum())
    black = np.zeros((HEIGHT, WIDTH, 3), np.uint8)
    runs: list[tuple[float, float]] = []  # (first, last) frame time of each unbroken presence
    step = 1.0 / FPS
    for i in range(round(seconds * FPS)):
        t = i / FPS
        drawn = objects(black.copy(), t).max(axis=2) > 0
        if int((drawn & mask).sum()) < zone.min_area * area:
            continue
        if runs and t - runs[-1][1] <= step * 1.5:
            runs[-1] = (runs[-1][0], t)
        else:
            runs.append((t, t))
    truths: list[Truth] = []
    last_seen: float | None = None
    for first, last in runs:
        if last_seen is not None and first - last_seen < zone.cooldown_s:
            last_seen = last  # back within the cool-down: the same incident goes on
        elif last - first >= zone.min_duration_s - 1e-9:
            truths.append(Truth("camera.motion", zone.id, first))
            last_seen = last
        else:
            last_seen = None
    return truths


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
    render: Renderer
    expected: list[Truth] = field(default_factory=list)
    """Tamper and haze incidents, declared with the clip."""
    noise: float = 3.0
    objects: Renderer | None = None
    """The moving objects alone (no lighting, blur or shake), from which zone incidents are measured."""

    def truth(self, zone: ZoneConfig | None = None) -> list[Truth]:
        """Every incident of the clip, in order of start."""
        zone = zone or ZoneConfig(id=ZONE, polygon=FIRE_LANE)
        moving = zone_truth(self.objects, self.seconds, zone) if self.objects is not None else []
        return sorted([*self.expected, *moving], key=lambda truth: truth.start_s)

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


def draw_shape(
    img: Image, shape: str, cx: float, cy: float, size: float, colour: tuple[int, int, int]
) -> Image:
    """Draw a filled ``box``, ``ellipse``, ``triangle`` or ``person`` (tall, narrow) centred at (cx, cy).

    ``size`` is in pixels of a 320-pixel-wide frame and scales with the frame.
    """
    h, w = img.shape[:2]
    x, y, s = cx * w, cy * h, size * w / WIDTH
    if shape == "box":
        cv2.rectangle(img, (int(x - s / 2), int(y - s / 2)), (int(x + s / 2), int(y + s / 2)), colour, -1)
    elif shape == "ellipse":
        cv2.ellipse(
            img, (int(x), int(y)), (max(1, int(s * 0.65)), max(1, int(s * 0.4))), 0, 0, 360, colour, -1
        )
    elif shape == "triangle":
        points = np.array(
            [[x, y - s * 0.6], [x - s * 0.6, y + s * 0.45], [x + s * 0.6, y + s * 0.45]], np.int32
        )
        cv2.fillPoly(img, [points], colour)
    elif shape == "person":
        cv2.rectangle(
            img, (int(x - s * 0.22), int(y - s * 0.8)), (int(x + s * 0.22), int(y + s * 0.8)), colour, -1
        )
        cv2.circle(img, (int(x), int(y - s * 0.95)), max(1, int(s * 0.18)), colour, -1)
    else:
        raise ValueError(f"unknown shape {shape!r}")
    return img


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


def _moving(name: str, seconds: float, render: Renderer) -> Scenario:
    return Scenario(name, seconds, render, objects=render)


SCENARIOS = [
    _moving("enter-leave", 16.0, walk_in([(4.0, 8.0)])),
    _moving("two-visits", 30.0, walk_in([(4.0, 7.0), (17.0, 20.0)])),
    _moving("re-entry-in-cooldown", 20.0, walk_in([(4.0, 6.0), (9.0, 11.0)])),
    _moving("parked-car", 40.0, _parked),
    _moving("outside-zone", 16.0, _outside),
    _moving("tiny-object", 16.0, _tiny),
    _moving("brief-crossing", 12.0, _dash),
    Scenario("noise-only", 12.0, lambda img, _t: img, noise=12.0),
    Scenario("lighting-ramp", 16.0, _lighting),
    Scenario("lens-covered", 16.0, _black, [tamper("covered", 4.0)]),
    Scenario("lens-papered", 16.0, _paper, [tamper("covered", 4.0)]),
    # The blur is visible from the ramp's second step (a 3-pixel kernel at 4.25 s).
    Scenario("blur-ramp", 16.0, _blur, [tamper("blurred", 4.25)]),
    Scenario("camera-shift", 16.0, _shift, [tamper("moved", 4.0)]),
    # The veil passes half the light at 5.25 s: from there the view has lost half its contrast.
    Scenario("haze", 24.0, _haze, [haze(5.25)]),
]
BY_NAME = {s.name: s for s in SCENARIOS}
