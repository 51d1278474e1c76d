"""The camera benchmark's scoring: one-to-one matching by kind, attribute and start time, and its sets.

A matcher that counted events per clip would score a late detection, a wrong reason or a duplicate as
correct; each test here is one such case.
"""

from __future__ import annotations

from dataclasses import fields

import pytest

from edge.camera.synthetic import BY_NAME, Truth
from yiwang.bench.camera import clip_detections
from yiwang.bench.camera_clips import DEVELOPMENT, HELD_OUT, held_out_clips
from yiwang.bench.camera_match import Detection, match, percentile_ms, summarise

TOL = 1.0
COVERED = Truth("camera.tamper", "covered", 4.0)
ZONE = Truth("camera.motion", "fire-lane", 3.6)


def det(kind: str, attr: str, start_s: float) -> Detection:
    return Detection(kind, attr, start_s, start_s + 2.0)


def counts(truths: list[Truth], detections: list[Detection]) -> tuple[int, int, int]:
    result = match(truths, detections, TOL)
    return len(result.matches), len(result.false_positives), len(result.misses)


def test_a_detection_at_the_truth_is_a_true_positive() -> None:
    assert counts([COVERED], [det("camera.tamper", "covered", 4.3)]) == (1, 0, 0)


def test_a_late_detection_is_a_false_positive_and_a_miss() -> None:
    assert counts([COVERED], [det("camera.tamper", "covered", 5.2)]) == (0, 1, 1)
    assert counts([COVERED], [det("camera.tamper", "covered", 2.9)]) == (0, 1, 1)  # early, likewise


def test_the_tolerance_is_inclusive() -> None:
    assert counts([COVERED], [det("camera.tamper", "covered", 5.0)]) == (1, 0, 0)


def test_a_wrong_attribute_is_a_false_positive_and_a_miss() -> None:
    assert counts([COVERED], [det("camera.tamper", "blurred", 4.0)]) == (0, 1, 1)
    assert counts([ZONE], [det("camera.motion", "car-park", 3.6)]) == (0, 1, 1)


def test_a_wrong_kind_is_a_false_positive_and_a_miss() -> None:
    assert counts([Truth("camera.haze", "", 5.0)], [det("camera.tamper", "covered", 5.0)]) == (0, 1, 1)


def test_twoclip_detections_of_one_truth_are_one_hit_and_one_false_positive() -> None:
    detections = [det("camera.tamper", "covered", 4.1), det("camera.tamper", "covered", 4.6)]
    result = match([COVERED], detections, TOL)
    assert (len(result.matches), len(result.false_positives), len(result.misses)) == (1, 1, 0)
    assert result.matches[0].detection.start_s == 4.1


def test_one_detection_cannot_serve_two_truths() -> None:
    truths = [ZONE, Truth("camera.motion", "fire-lane", 4.2)]
    assert counts(truths, [det("camera.motion", "fire-lane", 3.9)]) == (1, 0, 1)


def test_matching_finds_every_pair_a_greedy_nearest_would_lose() -> None:
    # Nearest-first would give the 0.9 detection to the 1.5 truth and leave the 0.0 truth without one.
    truths = [Truth("camera.motion", "z", 0.0), Truth("camera.motion", "z", 1.5)]
    detections = [det("camera.motion", "z", 0.9), det("camera.motion", "z", 2.4)]
    assert counts(truths, detections) == (2, 0, 0)


def test_nothing_on_a_quiet_clip_scores_perfectly_and_a_false_event_does_not() -> None:
    assert counts([], []) == (0, 0, 0)
    assert counts([], [det("camera.motion", "fire-lane", 6.0)]) == (0, 1, 0)


def test_summary_scores_each_kind_and_times_the_matches() -> None:
    results = [
        match([COVERED], [det("camera.tamper", "covered", 4.2)], TOL),
        match([ZONE], [det("camera.motion", "fire-lane", 3.7)], TOL),
        match([ZONE], [det("camera.motion", "fire-lane", 6.0)], TOL),  # late: FP + FN
        match([], [det("camera.tamper", "moved", 8.0)], TOL),
    ]
    summary = summarise(results, TOL)
    assert summary["match_tolerance_ms"] == 1000
    assert (summary["tp"], summary["fp"], summary["fn"]) == (2, 2, 1)
    assert summary["precision"] == 0.5
    assert summary["recall"] == pytest.approx(0.6667)
    assert summary["f1"] == pytest.approx(2 * 0.5 * (2 / 3) / (0.5 + 2 / 3), abs=1e-4)
    per_kind = summary["per_kind"]
    assert isinstance(per_kind, dict)
    assert per_kind["camera.motion"] == {
        "precision": 0.5,
        "recall": 0.5,
        "f1": 0.5,
        "tp": 1,
        "fp": 1,
        "fn": 1,
    }
    assert per_kind["camera.haze"]["tp"] == 0
    assert summary["timing_error_ms"] == {"p50": 100.0, "p95": 200.0, "max": 200.0}


def test_percentiles_are_nearest_rank() -> None:
    assert percentile_ms([], 50) is None
    assert percentile_ms([0.1, 0.2, 0.3, 0.4], 50) == 200.0
    assert percentile_ms([x / 100 for x in range(1, 101)], 95) == 950.0


def test_the_bench_matches_the_onset_the_event_asserts_not_when_it_was_sent() -> None:
    # The cover starts at 4 s; the start event goes out after tamper.min_duration_s (2 s) and says so.
    (detection,) = clip_detections(BY_NAME["lens-covered"], 1)
    assert detection.start_s == pytest.approx(4.0, abs=0.25)
    assert detection.emitted_s - detection.start_s == pytest.approx(2.0, abs=0.15)


def _spans(value: object) -> list[tuple[float, float]]:
    if isinstance(value, tuple) and all(isinstance(v, (int, float)) for v in value):
        return [(float(value[0]), float(value[1]))]
    assert isinstance(value, list)
    return [(float(low), float(high)) for low, high in value]


@pytest.mark.parametrize("name", [f.name for f in fields(HELD_OUT)])
def test_every_held_out_range_lies_outside_development(name: str) -> None:
    held, dev = getattr(HELD_OUT, name), getattr(DEVELOPMENT, name)
    if name == "shapes":
        assert not set(held) & set(dev)
        return
    for low, high in _spans(held):
        for d_low, d_high in _spans(dev):
            assert high < d_low or low > d_high, (
                f"{name}: held-out {low}..{high} meets development {d_low}..{d_high}"
            )


def test_held_out_clips_are_reproducible_and_carry_their_truth() -> None:
    first, again = held_out_clips(1), held_out_clips(1)
    assert [(s.name, seed, s.truth()) for s, seed in first] == [
        (s.name, seed, s.truth()) for s, seed in again
    ]
    by_name = {s.name: s.truth() for s, _ in first}
    assert [t.kind for t in by_name["visit"]] == ["camera.motion"]
    assert by_name["stroll-outside"] == by_name["small-animal"] == by_name["lighting"] == []
    assert [t.attr for t in by_name["blur"]] == ["blurred"]
    assert all(int(HELD_OUT.seeds[0]) <= seed <= int(HELD_OUT.seeds[1]) for _, seed in first)
