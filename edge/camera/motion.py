"""Motion in named zones: MOG2 background subtraction on a small, gain-normalised grey frame.

Why each step: the frame is shrunk (Frigate does the same; motion does not need detail, and MOG2 cost
grows with pixels); its brightness is normalised to a fixed mean so a lighting ramp does not look like
motion; MOG2 marks shadows as 127, which we drop by thresholding at 200; a morphological opening
removes sensor-noise speckles; and when most of the frame changes at once (lights switched, camera
covered or moved) the frame counts as a global change, not as motion in any zone.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2

from edge.camera.config import MotionConfig, ZoneConfig
from edge.camera.masks import Image, polygon_mask

_TARGET_MEAN = 128.0
_WARMUP_FRAMES = 30  # frames learned at MOG2's own fast rate after a (re)start (~3 s at 10 fps)
_MIN_MEAN = 8.0  # below this the frame is black; scaling it up would only amplify noise


@dataclass(frozen=True, slots=True)
class MotionResult:
    zone_scores: dict[str, float]
    """Fraction of each zone in motion (0..1)."""
    global_fraction: float
    global_change: bool


def small_grey(frame: Image, width: int) -> Image:
    """The analysis frame: grey, ``width`` pixels wide, aspect kept."""
    grey = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY) if frame.ndim == 3 else frame
    height = max(1, round(grey.shape[0] * width / grey.shape[1]))
    if grey.shape[1] == width:
        return grey
    small: Image = cv2.resize(grey, (width, height), interpolation=cv2.INTER_AREA)
    return small


class MotionDetector:
    def __init__(self, config: MotionConfig, zones: list[ZoneConfig]) -> None:
        self.config = config
        self.zones = zones
        self._mog = cv2.createBackgroundSubtractorMOG2(
            history=config.history, varThreshold=config.var_threshold, detectShadows=True
        )
        self._kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (3, 3))
        self._zone_masks: list[tuple[str, Image, int]] = []
        self._shape: tuple[int, int] | None = None
        self._learned = 0
        self._last_t: float | None = None

    def _build(self, height: int, width: int) -> None:
        self._zone_masks = []
        for zone in self.zones:
            mask = polygon_mask(zone.polygon, width, height)
            self._zone_masks.append((zone.id, mask, max(1, cv2.countNonZero(mask))))
        self._shape = (height, width)

    def reset(self) -> None:
        """Forget the background (after a tamper the old background describes a different view)."""
        self._mog = cv2.createBackgroundSubtractorMOG2(
            history=self.config.history, varThreshold=self.config.var_threshold, detectShadows=True
        )
        self._learned = 0
        self._last_t = None

    def _learning_rate(self, t: float) -> float:
        # MOG2's own rate (1/frames seen) absorbs a parked car within a second; we learn fast only
        # while the model is new, then at a rate set in seconds: a new mode becomes background once
        # its weight passes 1 - backgroundRatio (0.1), i.e. after 0.1 / rate frames.
        dt = 0.1 if self._last_t is None else min(max(t - self._last_t, 0.0), 5.0)
        self._last_t = t
        self._learned += 1
        steady = 0.1 * dt / self.config.absorb_s
        return max(steady, 1.0 / self._learned) if self._learned <= _WARMUP_FRAMES else steady

    def apply(self, grey: Image, t: float) -> MotionResult:
        """Motion of one analysis frame taken at ``t`` seconds."""
        if self._shape != grey.shape[:2]:
            self._build(grey.shape[0], grey.shape[1])
            self.reset()
        mean = float(grey.mean())
        norm = grey
        if mean >= _MIN_MEAN:
            norm = cv2.convertScaleAbs(grey, alpha=_TARGET_MEAN / mean)
        # A light blur takes the edge off sensor noise; a wider one (5×5) eats the rim of a small object
        # and shrinks its area below the zone's min_area, so a person far away went unseen.
        norm = cv2.GaussianBlur(norm, (3, 3), 0)
        fg = self._mog.apply(norm, learningRate=self._learning_rate(t))
        _, fg = cv2.threshold(fg, 200, 255, cv2.THRESH_BINARY)
        fg = cv2.morphologyEx(fg, cv2.MORPH_OPEN, self._kernel)
        fraction = cv2.countNonZero(fg) / fg.size
        scores: dict[str, float] = {}
        for zone_id, mask, area in self._zone_masks:
            scores[zone_id] = cv2.countNonZero(cv2.bitwise_and(fg, mask)) / area
        return MotionResult(scores, fraction, fraction >= self.config.global_change)
