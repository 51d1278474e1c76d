"""The queue's cache of grouped counts stays bounded and fresh; the view parser names what to fix."""

from __future__ import annotations

import time

import pytest

from cases.queue_filters import (
    MAX_IDS,
    BadFilter,
    FacetGroup,
    GroupCache,
    QueueView,
    count_facets,
    parse_ids,
    parse_view,
)


def group(n: int) -> list[FacetGroup]:
    return [FacetGroup(("flooding", "g-north", "NEW", "on_time", "sensor", ""), n)]


def test_the_cache_keeps_at_most_its_size_and_drops_the_least_recently_used() -> None:
    cache = GroupCache(size=2, ttl_s=60)
    calls: list[str] = []

    def counter(key: str, n: int):  # type: ignore[no-untyped-def]
        def count() -> list[FacetGroup]:
            calls.append(key)
            return group(n)

        return count

    assert cache.get("a", counter("a", 1)) == group(1)
    assert cache.get("b", counter("b", 2)) == group(2)
    assert cache.get("a", counter("a", 9)) == group(1)  # a hit: not counted again
    cache.get("c", counter("c", 3))  # b was used least recently: it goes
    assert cache.get("b", counter("b", 4)) == group(4)
    assert calls == ["a", "b", "c", "b"]


def test_an_entry_expires_with_its_ttl() -> None:
    cache = GroupCache(size=4, ttl_s=0.05)
    cache.get("a", lambda: group(1))
    time.sleep(0.06)
    assert cache.get("a", lambda: group(2)) == group(2)


def test_counts_leave_out_their_own_facet_only() -> None:
    groups = [
        FacetGroup(("flooding", "g-north", "NEW", "on_time", "sensor", ""), 2),
        FacetGroup(("flooding", "g-south", "NEW", "overdue", "report", "li.na"), 1),
        FacetGroup(("gas_leak", "g-north", "ASSIGNED", "warning", "report", "li.na"), 3),
    ]
    counts = count_facets(groups, QueueView(grid="g-north", assignee="li.na"))
    assert counts.total == 3
    assert dict(counts.by_facet["grid"]) == {"g-north": 3, "g-south": 1}
    assert dict(counts.by_facet["assignee"]) == {"-": 2, "li.na": 3}
    assert dict(counts.by_facet["category"]) == {"gas_leak": 3}


@pytest.mark.parametrize(
    ("params", "field", "kind"),
    [
        ({"sort": "up"}, "sort", "choice"),
        ({"state": "CLOSED"}, "state", "choice"),
        ({"sla": "late"}, "sla", "choice"),
        ({"grid": "g" * 65}, "grid", "length"),
        ({"q": "x" * 101}, "q", "length"),
        ({"q": "a\x00b"}, "q", "chars"),
    ],
)
def test_a_bad_value_is_refused_by_name(params: dict[str, str], field: str, kind: str) -> None:
    with pytest.raises(BadFilter) as refused:
        parse_view(params)
    assert (refused.value.field, refused.value.kind) == (field, kind)


def test_ids_are_bounded_and_numeric() -> None:
    assert parse_ids("3, 17,3,42") == [3, 17, 42]
    with pytest.raises(BadFilter):
        parse_ids(",".join(["1"] * (MAX_IDS + 1)))
    with pytest.raises(BadFilter):
        parse_ids("1;DROP")
    assert parse_view({"grid": "g-north", "q": "竹竿巷"}).query(sort="newest") == (
        "grid=g-north&q=%E7%AB%B9%E7%AB%BF%E5%B7%B7&sort=newest"
    )
