"""Event snapshots, off by default: faces blurred, written on the gateway, referenced by path + sha256.

The frame given here already has the privacy masks applied. Faces are *detected* only to be blurred
(OpenCV's bundled Haar cascade); nothing is recognised, compared or kept about them. The JPEG is
complete on disk (written to a temporary name, then renamed) before the event that references it is
emitted — Frigate's users see events whose snapshot does not exist yet; ours cannot.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import time
from pathlib import Path

import cv2

from edge.camera.config import SnapshotConfig
from edge.camera.lifecycle import Transition
from edge.camera.masks import Image

log = logging.getLogger(__name__)

_CASCADE = "haarcascade_frontalface_default.xml"
_CASCADE_DIR = Path(cv2.data.haarcascades)  # type: ignore[attr-defined]  # cv2.data has no stub
_UUID = "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
_REFERENCE_RE = re.compile(rf"[a-z0-9-]{{1,64}}/{_UUID}\.jpg")


def blur_faces(image: Image, classifier: cv2.CascadeClassifier) -> int:
    """Blur every detected face in place; returns how many were blurred."""
    grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    faces = classifier.detectMultiScale(grey, scaleFactor=1.1, minNeighbors=4, minSize=(16, 16))
    for x, y, w, h in faces:
        # Grow the box a little: the detector's box is tight and hair or ears identify people too.
        x0, y0 = max(0, x - w // 5), max(0, y - h // 5)
        x1, y1 = min(image.shape[1], x + w + w // 5), min(image.shape[0], y + h + h // 5)
        roi = image[y0:y1, x0:x1]
        k = max(3, (max(w, h) // 2) | 1)
        # Pixelate, then blur: no recoverable detail remains, whatever the face size.
        coarse = cv2.resize(cv2.resize(roi, (8, 8)), (roi.shape[1], roi.shape[0]))
        image[y0:y1, x0:x1] = cv2.GaussianBlur(coarse, (k, k), 0)
    return len(faces)


class SnapshotStore:
    def __init__(self, config: SnapshotConfig) -> None:
        self.config = config
        self.directory = config.directory
        self._classifier: cv2.CascadeClassifier | None = None
        if config.blur_faces:
            self._classifier = cv2.CascadeClassifier(str(_CASCADE_DIR / _CASCADE))
            if self._classifier.empty():
                raise RuntimeError(f"OpenCV's face cascade {_CASCADE} is missing; cannot blur faces")

    def path_of(self, reference: str) -> Path | None:
        """The file of a reference such as ``cam-01/<uuid>.jpg``, or None if it is not one of ours."""
        # Only names we generate (camera id / uuid.jpg): no "..", no absolute paths, no other files.
        if not _REFERENCE_RE.fullmatch(reference):
            return None
        path = self.directory / reference
        return path if path.is_file() else None

    def __call__(self, camera: str, step: Transition, image: Image) -> dict[str, str]:
        picture = image.copy()
        if self._classifier is not None:
            blurred = blur_faces(picture, self._classifier)
            if blurred:
                log.info("camera %s: blurred %d face(s) in snapshot of %s", camera, blurred, step.id)
        ok, jpeg = cv2.imencode(".jpg", picture, [cv2.IMWRITE_JPEG_QUALITY, self.config.jpeg_quality])
        if not ok:
            log.error("camera %s: JPEG encoding failed; event %s goes without snapshot", camera, step.id)
            return {}
        data = jpeg.tobytes()
        folder = self.directory / camera
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / f"{step.id}.jpg"
        temporary = target.with_suffix(".tmp")
        try:
            temporary.write_bytes(data)
            os.replace(temporary, target)
        except OSError as err:
            log.error("camera %s: cannot write snapshot %s: %s", camera, target, err)
            return {}
        return {"snapshot": f"{camera}/{target.name}", "snapshot_sha256": hashlib.sha256(data).hexdigest()}

    def purge(self, now: float | None = None) -> int:
        """Delete snapshots older than the retention; returns how many went."""
        cutoff = (now if now is not None else time.time()) - self.config.retention_days * 86400
        removed = 0
        if not self.directory.is_dir():
            return 0
        for path in self.directory.glob("*/*.jpg"):
            try:
                if path.stat().st_mtime < cutoff:
                    path.unlink()
                    removed += 1
            except OSError as err:
                log.warning("camera %s: cannot purge %s: %s", path.parent.name, path, err)
        return removed
