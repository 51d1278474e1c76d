"""Scene checks against a learned reference: tamper (covered, blurred, moved) and the haze heuristic.

All measures are chosen to be blind to lighting: sharpness is the Laplacian variance *divided by* the
grey variance (a gain change scales both alike), and blind to sensor noise: the noise's share of both
variances, estimated per frame, is taken out first (noise is fine detail to a Laplacian, so a noisy
blurred view would otherwise still look sharp). The scene comparison is a zero-mean normalised
correlation plus a phase-correlation shift, and contrast is the coefficient of variation (std/mean).

Haze is a heuristic, not a smoke detector: smoke, fog, steam, a dirty or fogged lens and heavy rain
all lower contrast and edges while leaving the image bright; so does a dusk sky in some scenes. It
says "the view is washing out", to be checked by a person.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import cv2
import numpy as np
import numpy.typing as npt

from edge.camera.config import HazeConfig, TamperConfig
from edge.camera.masks import Image

TamperReason = Literal["covered", "blurred", "moved"]
_CLEAR = 0.8  # contrast ratio above which the view counts as clear
_WASHED_OUT = 0.5  # contrast ratio below which so little signal is left that sharpness means nothing
_NOISE_KERNEL = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], np.float32)
"""Immerkær's noise estimator: blind to flat areas and ramps; its response to noise of std σ has std 6σ."""
_LAPLACIAN_NOISE_GAIN = 20.0  # sum of squares of the 3×3 Laplacian kernel: noise variance × this
_Float = npt.NDArray[np.integer[Any] | np.floating[Any]]


@dataclass(frozen=True, slots=True)
class SceneResult:
    tamper: TamperReason | None
    haze: bool
    sharpness_ratio: float
    contrast_ratio: float
    edge_ratio: float
    shift_px: float
    correlation: float

    @property
    def clear(self) -> bool:
        """False once the view has lost a fifth of its contrast: it is washing out (haze, fog, a
        fogging lens) before the haze indicator is sure, and what changes in it is the wash-out."""
        return self.contrast_ratio >= _CLEAR


@dataclass(slots=True)
class _Reference:
    grey: _Float
    sharpness: float
    contrast: float
    edges: float


def noise_sigma(grey: Image, visible: Image | None = None) -> float:
    """Standard deviation of the sensor noise of one grey frame (Immerkær 1996, median-based).

    The median of the filter's response, not its mean, so the scene's edges do not count as noise.
    """
    response = np.abs(cv2.filter2D(grey.astype(np.float32), -1, _NOISE_KERNEL))[1:-1, 1:-1]
    if visible is not None:
        response = response[visible[1:-1, 1:-1] > 0]
    return float(1.4826 * np.median(response) / 6.0) if response.size else 0.0


def _measures(grey: Image, visible: Image | None) -> tuple[float, float, float, float]:
    """(mean, std, sharpness, edge density) of the visible part of one grey frame.

    Privacy-masked pixels are left out: a black mask would otherwise add contrast and a sharp edge
    that no blur, haze or cover can remove.
    """
    mean, std = cv2.meanStdDev(grey, mask=visible)
    m, s = float(mean[0, 0]), float(std[0, 0])
    _, lap_std = cv2.meanStdDev(cv2.Laplacian(grey, cv2.CV_32F), mask=visible)
    noise = noise_sigma(grey, visible) ** 2
    detail = max(float(lap_std[0, 0]) ** 2 - _LAPLACIAN_NOISE_GAIN * noise, 0.0)
    sharpness = detail / max(s * s - noise, 1.0)
    gx = cv2.Sobel(grey, cv2.CV_32F, 1, 0)
    gy = cv2.Sobel(grey, cv2.CV_32F, 0, 1)
    edges = float(cv2.mean(cv2.magnitude(gx, gy), mask=visible)[0]) / max(m, 1.0)
    return m, s, sharpness, edges


class SceneChecker:
    """Learns the reference during warm-up, then classifies each frame; refreshes only on a calm view."""

    def __init__(self, tamper: TamperConfig, haze: HazeConfig) -> None:
        self.tamper_config = tamper
        self.haze_config = haze
        self._ref: _Reference | None = None
        self._warm: list[tuple[_Float, float, float, float]] = []
        self._warm_start: float | None = None
        self._window: _Float | None = None
        self._clear_t = 0.0
        self._flat_sudden: bool | None = None

    @property
    def ready(self) -> bool:
        return self._ref is not None

    def _learn(self, t: float, grey: Image, sharpness: float, contrast: float, edges: float) -> None:
        if self._warm_start is None:
            self._warm_start = t
        self._warm.append((grey.astype(np.float32), sharpness, contrast, edges))
        if t - self._warm_start >= self.tamper_config.warmup_s and len(self._warm) >= 3:
            stack = np.stack([w[0] for w in self._warm])
            self._ref = _Reference(
                grey=np.median(stack, axis=0).astype(np.float32),
                sharpness=float(np.median([w[1] for w in self._warm])),
                contrast=float(np.median([w[2] for w in self._warm])),
                edges=float(np.median([w[3] for w in self._warm])),
            )
            self._warm = []

    def check(self, t: float, grey: Image, visible: Image | None = None) -> SceneResult | None:
        """Classify one analysis frame; None while the reference is still being learned.

        ``visible`` is the 0/255 mask of pixels outside the privacy masks (None: all visible).
        """
        mean, std, sharpness, edges = _measures(grey, visible)
        contrast = std / max(mean, 1.0)
        if self._ref is None:
            self._learn(t, grey, sharpness, contrast, edges)
            return None
        ref = self._ref
        if self._window is None or self._window.shape != grey.shape:
            self._window = cv2.createHanningWindow((grey.shape[1], grey.shape[0]), cv2.CV_32F)
        current = grey.astype(np.float32)
        # Copies: with a window, OpenCV's phaseCorrelate multiplies its inputs in place.
        (dx, dy), _response = cv2.phaseCorrelate(ref.grey.copy(), current.copy(), self._window)
        shift = float(np.hypot(dx, dy))
        correlation = float(cv2.matchTemplate(current, ref.grey, cv2.TM_CCOEFF_NORMED)[0, 0])
        sharp_ratio = sharpness / max(ref.sharpness, 1e-6)
        contrast_ratio = contrast / max(ref.contrast, 1e-6)
        edge_ratio = edges / max(ref.edges, 1e-6)
        c = self.tamper_config
        tamper: TamperReason | None = None
        if contrast_ratio >= _CLEAR:
            self._clear_t = t
        flat = mean >= c.dark_level and std < c.flat_std
        if not flat:
            self._flat_sudden = None
        elif self._flat_sudden is None:
            # A bright, flat view is a cover when it came at once (a hand, a sheet of paper) and a
            # wash-out (haze) when contrast faded over more than `sudden_s`; latched per episode.
            self._flat_sudden = t - self._clear_t <= c.sudden_s
        if c.enabled:
            if mean < c.dark_level or (flat and self._flat_sudden):
                tamper = "covered"
            elif flat:
                pass  # faded to flat: left to the haze indicator
            elif sharp_ratio < c.blur_ratio and contrast_ratio >= _WASHED_OUT:
                tamper = "blurred"
            elif shift >= c.move_px or correlation < c.min_scene_corr:
                tamper = "moved"
        h = self.haze_config
        haze = (
            h.enabled
            and tamper is None
            and contrast_ratio < h.ratio
            and edge_ratio < h.ratio
            and mean >= c.dark_level
        )
        if tamper is None and not haze and correlation > 0.9 and shift < 1.0 and 0.8 < sharp_ratio < 1.25:
            # A calm, matching view: follow slow drift (seasons, lamps) without absorbing a tamper.
            ref.grey = cv2.addWeighted(ref.grey, 0.98, current, 0.02, 0.0)
        return SceneResult(tamper, haze, sharp_ratio, contrast_ratio, edge_ratio, shift, correlation)
