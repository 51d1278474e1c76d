"""One camera's analysis: frame in, contract events out. Pure and synchronous, so a clip replays exactly.

Order matters for privacy: the privacy mask is applied to the full frame first, so neither motion,
scene checks nor a snapshot ever see the masked pixels.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from contract.messages import Event
from edge.camera.config import CameraConfig
from edge.camera.lifecycle import IncidentTracker, RateLimiter, Transition
from edge.camera.masks import Image, PrivacyMask, visible_mask
from edge.camera.motion import MotionDetector, small_grey
from edge.camera.scene import SceneChecker, SceneResult

log = logging.getLogger(__name__)

SnapshotHook = Callable[[str, Transition, Image], dict[str, str]]
"""(camera id, start transition, masked frame) -> event attrs referencing the stored snapshot."""

_TAMPER_REASONS = ("covered", "blurred", "moved")


@dataclass(frozen=True, slots=True)
class Frame:
    image: Image
    t: float
    """Seconds on the source's clock (file position, or monotonic capture time for live streams)."""
    wall_ms: int
    """Epoch milliseconds of capture, stamped on events."""


class CameraAnalyzer:
    def __init__(self, config: CameraConfig, *, snapshot: SnapshotHook | None = None) -> None:
        self.config = config
        self.camera = config.id
        self._privacy = PrivacyMask(config.privacy_masks)
        self._motion = MotionDetector(config.motion, config.zones)
        self._scene = SceneChecker(config.tamper, config.haze)
        self._snapshot = snapshot
        every = config.update_interval_s
        self._zones = {
            z.id: IncidentTracker(
                min_duration_s=z.min_duration_s, cooldown_s=z.cooldown_s, update_interval_s=every
            )
            for z in config.zones
        }
        t, h = config.tamper, config.haze
        self._tamper = {
            reason: IncidentTracker(
                min_duration_s=t.min_duration_s, cooldown_s=t.cooldown_s, update_interval_s=every
            )
            for reason in _TAMPER_REASONS
        }
        self._haze = IncidentTracker(
            min_duration_s=h.min_duration_s, cooldown_s=h.cooldown_s, update_interval_s=every
        )
        # A stream is lost once no frame came for stream_timeout_s; it ends with the first new frame.
        self._lost = IncidentTracker(min_duration_s=0.0, cooldown_s=0.0, update_interval_s=every)
        self._limiter = RateLimiter(
            per_minute=config.rate_limit.events_per_minute, burst=config.rate_limit.burst
        )
        self.last_scene: SceneResult | None = None
        self._visible: Image | None = None
        self._visible_shape: tuple[int, ...] = ()

    @property
    def rate_limited(self) -> int:
        """Events dropped by the per-camera rate limit so far."""
        return self._limiter.dropped

    def process(self, frame: Frame) -> list[Event]:
        """Analyse one frame; returns the events it caused (possibly none)."""
        events: list[Event] = []
        lost = self._lost.observe(frame.t, False)
        if lost is not None:
            events += self._emit("camera.stream_lost", lost, frame.wall_ms, {})
        image = self._privacy.apply(frame.image)
        grey = small_grey(image, self.config.motion.width)
        if self._visible_shape != grey.shape:
            self._visible = visible_mask(self.config.privacy_masks, grey.shape[1], grey.shape[0])
            self._visible_shape = grey.shape
        scene = self._scene.check(frame.t, grey, self._visible)
        self.last_scene = scene
        motion = self._motion.apply(grey, frame.t)
        disturbed = (
            motion.global_change or scene is None or scene.tamper is not None or scene.haze or not scene.clear
        )
        for reason, tracker in self._tamper.items():
            hit = scene is not None and scene.tamper == reason
            step = tracker.observe(frame.t, hit, 1.0 if hit else 0.0)
            if step is not None:
                events += self._emit("camera.tamper", step, frame.wall_ms, {"reason": reason}, image)
        haze_hit = scene is not None and scene.haze
        haze_score = 1.0 - scene.contrast_ratio if scene is not None else 0.0
        step = self._haze.observe(frame.t, haze_hit, max(0.0, haze_score))
        if step is not None:
            events += self._emit("camera.haze", step, frame.wall_ms, {}, image)
        incident = self._haze.active or any(tracker.active for tracker in self._tamper.values())
        if motion.global_change or incident:
            # The background learned before or during a cover, blur, shift or wash-out describes
            # another view, and learning is slow (motion.absorb_s): start afresh once it is over.
            self._motion.reset()
        disturbed = disturbed or incident
        for zone in self.config.zones:
            score = motion.zone_scores.get(zone.id, 0.0)
            hit = not disturbed and score >= zone.min_area
            step = self._zones[zone.id].observe(frame.t, hit, score if hit else 0.0)
            if step is not None:
                events += self._emit("camera.motion", step, frame.wall_ms, {"zone": zone.id}, image)
        return events

    def idle(self, t: float, wall_ms: int, last_frame_t: float) -> list[Event]:
        """Called when no frame arrived for a while; starts ``camera.stream_lost`` after the timeout.

        ``last_frame_t`` is the last frame's time, or the start of the camera if none came yet.
        """
        silent = t - last_frame_t >= self.config.stream_timeout_s
        step = self._lost.observe(t, silent)
        return self._emit("camera.stream_lost", step, wall_ms, {}) if step is not None else []

    def close(self, t: float, wall_ms: int) -> list[Event]:
        """End every open incident (shutdown), so no start is left without its end."""
        events: list[Event] = []
        trackers = [
            *(("camera.motion", tr, {"zone": z}) for z, tr in self._zones.items()),
            *(("camera.tamper", tr, {"reason": r}) for r, tr in self._tamper.items()),
            ("camera.haze", self._haze, {}),
            ("camera.stream_lost", self._lost, {}),
        ]
        for kind, tracker, attrs in trackers:
            step = tracker.close(t)
            if step is not None:
                events += self._emit(kind, step, wall_ms, dict(attrs))
        return events

    def _emit(
        self, kind: str, step: Transition, wall_ms: int, attrs: dict[str, str], image: Image | None = None
    ) -> list[Event]:
        if not self._limiter.allow(step):
            log.warning(
                "camera %s: %s %s %s dropped by the rate limit", self.camera, kind, step.phase, step.id
            )
            return []
        values: dict[str, str | float] = dict(attrs)
        values["duration_s"] = round(step.duration_s, 2)
        if kind != "camera.stream_lost":
            values["score"] = round(min(1.0, step.score), 3)
        if step.phase == "start" and image is not None and self._snapshot is not None:
            # Written before the event is emitted: the reference in the event always resolves.
            values.update(self._snapshot(self.camera, step, image))
        log.info("camera %s: %s %s %s %s", self.camera, kind, step.phase, step.id, attrs)
        return [Event(device=self.camera, ts=wall_ms, id=step.id, kind=kind, phase=step.phase, attrs=values)]
