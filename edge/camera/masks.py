"""Polygon rasterisation: privacy masks (blacked out before anything else) and zone masks."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

Image = npt.NDArray[np.integer[Any] | np.floating[Any]]
"""What OpenCV's stubs return; frames are uint8 BGR or grey at run time."""
NormPolygon = Sequence[tuple[float, float]]


def polygon_mask(polygon: NormPolygon, width: int, height: int) -> Image:
    """A 0/255 mask of one normalised polygon at the given size."""
    mask = np.zeros((height, width), np.uint8)
    points = np.array([[round(x * (width - 1)), round(y * (height - 1))] for x, y in polygon], np.int32)
    cv2.fillPoly(mask, [points], 255)
    return mask


class PrivacyMask:
    """Blacks out configured polygons in place; built once per frame size (streams may change size)."""

    def __init__(self, polygons: Sequence[NormPolygon]) -> None:
        self._polygons = list(polygons)
        self._hidden: npt.NDArray[np.bool_] | None = None

    def apply(self, frame: Image) -> Image:
        if not self._polygons:
            return frame
        height, width = frame.shape[:2]
        if self._hidden is None or self._hidden.shape != (height, width):
            hidden: Image = np.zeros((height, width), np.uint8)
            for polygon in self._polygons:
                hidden = cv2.bitwise_or(hidden, polygon_mask(polygon, width, height))
            self._hidden = hidden > 0
        # In place (a masked cv2.bitwise_and would leave the masked pixels untouched): no copy of the
        # hidden pixels survives this call in our code.
        frame[self._hidden] = 0
        return frame


def visible_mask(polygons: Sequence[NormPolygon], width: int, height: int, margin: int = 3) -> Image | None:
    """0/255 mask of the pixels *not* hidden, shrunk by ``margin`` so the mask's own edge is no edge."""
    if not polygons:
        return None
    hidden: Image = np.zeros((height, width), np.uint8)
    for polygon in polygons:
        hidden = cv2.bitwise_or(hidden, polygon_mask(polygon, width, height))
    kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (2 * margin + 1, 2 * margin + 1))
    visible: Image = cv2.erode(cv2.bitwise_not(hidden), kernel)
    return visible
