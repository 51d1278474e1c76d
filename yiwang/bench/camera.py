"""Camera analytics: throughput per core at 640×480 and detection quality on the synthetic suite.

Throughput: frames of the ``enter-leave`` scenario are rendered at 640×480 into memory first (so
rendering is not timed), then one ``CameraAnalyzer`` — privacy mask, downscale, MOG2 motion in zones,
tamper and haze checks, lifecycle — processes them on one thread (``cv2.setNumThreads(1)``). The
ceiling measured in the same run is the part no analysis can avoid: grey conversion and downscaling of
the same frames. Both are timed in CPU seconds of the analysing thread (``time.thread_time``), so a
busy machine does not deflate them; the wall-clock rate is reported too. A Raspberry Pi 4 core is
taken as 4× slower (REFERENCES.md); that figure is an estimate, not a measurement.

Quality: every clip of the development set (the synthetic scenarios the analyser was tuned on, with
``seeds`` noise seeds) and of the held-out set (generated from parameter ranges outside development,
``yiwang.bench.camera_clips``) is analysed; each ``start`` event is matched one-to-one to the clip's
ground-truth incidents by kind, attribute and start time (``camera_match``). The two sets are reported
separately, ``quality`` and ``quality_held_out``, with the same keys.
"""

from __future__ import annotations

import time
from dataclasses import asdict
from typing import Any

import cv2

from edge.camera.analyzer import CameraAnalyzer, Frame
from edge.camera.config import CameraConfig, ZoneConfig
from edge.camera.masks import Image
from edge.camera.synthetic import BY_NAME, FIRE_LANE, PRIVACY, ZONE, Scenario
from yiwang.bench.camera_clips import DEVELOPMENT, HELD_OUT, development_clips, held_out_clips
from yiwang.bench.camera_match import Detection, match, summarise

PI4_SLOWDOWN = 4.0
MATCH_TOLERANCE_S = 1.0
"""A detection counts only if the start it asserts is this close to the truth's start."""
T0_MS = 1_764_183_600_000


def _config() -> CameraConfig:
    return CameraConfig(
        id="cam-bench",
        source="synthetic",
        zones=[ZoneConfig(id=ZONE, polygon=FIRE_LANE)],
        privacy_masks=[PRIVACY],
    )


def _throughput(width: int, height: int, repeats: int) -> dict[str, Any]:
    frames: list[tuple[float, Image]] = list(BY_NAME["enter-leave"].frames(seed=1, size=(width, height)))
    threads = cv2.getNumThreads()
    cv2.setNumThreads(1)
    try:
        analyzer = CameraAnalyzer(_config())
        started, cpu_started = time.perf_counter(), time.thread_time()
        count = 0
        for r in range(repeats):
            offset = r * 20.0
            for t, image in frames:
                # Each frame is copied because the privacy mask works in place, as it does on a live frame.
                analyzer.process(Frame(image.copy(), offset + t, T0_MS))
                count += 1
        analysis_s = time.perf_counter() - started
        analysis_cpu_s = time.thread_time() - cpu_started
        started = time.thread_time()
        for _ in range(repeats):
            for _t, image in frames:
                grey = cv2.cvtColor(image.copy(), cv2.COLOR_BGR2GRAY)
                cv2.resize(grey, (160, 120), interpolation=cv2.INTER_AREA)
        ceiling_s = time.thread_time() - started
    finally:
        cv2.setNumThreads(threads)
    # Per core = per CPU-second of this thread (OpenCV runs in it with one thread): other load on the
    # machine stretches the wall time, not this figure. The wall-clock rate is reported beside it.
    fps = count / analysis_cpu_s
    return {
        "resolution": f"{width}x{height}",
        "frames": count,
        "fps_per_core": round(fps, 1),
        "fps_wall": round(count / analysis_s, 1),
        "ceiling_fps_grey_resize_only": round(count / ceiling_s, 1),
        "ratio_to_ceiling": round(fps / (count / ceiling_s), 3),
        "pi4_fps_per_core_estimate": round(fps / PI4_SLOWDOWN, 1),
        "motion_width": _config().motion.width,
    }


def clip_detections(scenario: Scenario, seed: int) -> list[Detection]:
    """The start events of one clip, analysed as the gateway would, with the clip's clock on them."""
    analyzer = CameraAnalyzer(_config())
    found: list[Detection] = []
    for t, image in scenario.frames(seed):
        for event in analyzer.process(Frame(image, t, T0_MS + round(t * 1000))):
            if event.phase != "start":
                continue
            attr = str(event.attrs.get("zone", event.attrs.get("reason", "")))
            emitted = (event.ts - T0_MS) / 1000.0
            found.append(Detection(event.kind, attr, emitted - float(event.attrs["duration_s"]), emitted))
    return found


def _quality(clips: list[tuple[Scenario, int]], tolerance_s: float) -> dict[str, Any]:
    results = []
    mismatches: list[str] = []
    for scenario, seed in clips:
        result = match(scenario.truth(), clip_detections(scenario, seed), tolerance_s)
        results.append(result)
        for d in result.false_positives:
            mismatches.append(f"{scenario.name}/seed{seed}: false {d.kind} {d.attr} at {d.start_s:.1f}s")
        for truth in result.misses:
            mismatches.append(
                f"{scenario.name}/seed{seed}: missed {truth.kind} {truth.attr} at {truth.start_s:.1f}s"
            )
    return {"clips": len(clips), **summarise(results, tolerance_s), "mismatches": mismatches}


def run(
    *,
    seeds: int = 3,
    repeats: int = 5,
    held_out_seeds: int | None = None,
    tolerance_s: float = MATCH_TOLERANCE_S,
) -> dict[str, Any]:
    """One JSON-ready object: throughput at 640×480 and 320×240, and detection quality on both sets.

    ``held_out_seeds`` (default: three times ``seeds``) is the number of held-out clips per family:
    the held-out estimate is the one that matters, so it gets the larger sample.
    """
    return {
        "area": "camera",
        "opencv": cv2.__version__,
        "method": (
            "single thread (cv2.setNumThreads(1)), timed in thread CPU seconds; frames pre-rendered "
            "in memory; full per-frame "
            "analysis (privacy mask, motion on a 160-px-wide grey frame with MOG2, tamper and haze "
            "checks, lifecycle); ceiling = grey conversion + downscale of the same frames; "
            "Pi 4 = measured / 4 (estimate)"
        ),
        "throughput_640x480": _throughput(640, 480, repeats),
        "throughput_320x240": _throughput(320, 240, repeats),
        "quality_method": (
            "each start event is matched one-to-one to a ground-truth incident of its clip with the same "
            "kind and attribute (zone, tamper reason) whose start is within match_tolerance_ms of the "
            "onset the event asserts (event time - duration_s); a late, duplicate or wrong-attribute "
            "event is a false positive and its truth a miss; timing_error_ms = |onset - truth start| "
            "over matches, alert_latency_ms = event time - truth start"
        ),
        "clip_sets": {"development": asdict(DEVELOPMENT), "held_out": asdict(HELD_OUT)},
        "quality": _quality(development_clips(seeds), tolerance_s),
        "quality_held_out": _quality(held_out_clips(held_out_seeds or 3 * seeds), tolerance_s),
    }
