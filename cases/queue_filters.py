"""What an operator narrows the case queue to: filters, a search and a sort, read from a query string.

Pure values and checks, no SQL (that is :mod:`cases.queue`): the console and its live row endpoint
parse the same view, so a shared link and a live update agree on what the list holds. Every value is
size-checked before it is looked at; a bad one raises :class:`BadFilter` naming the field to fix.
"""

from __future__ import annotations

import threading
import time
from collections import Counter, OrderedDict
from collections.abc import Callable, Hashable, Iterable, Mapping
from dataclasses import dataclass, fields, replace
from typing import Literal
from urllib.parse import urlencode

from cases.models import OPEN_STATES, CaseState

Facet = Literal["category", "grid", "state", "sla", "source", "assignee"]
FACETS: tuple[Facet, ...] = ("category", "grid", "state", "sla", "source", "assignee")
Sort = Literal["due", "newest", "severity"]
SORTS: tuple[Sort, ...] = ("due", "newest", "severity")
# paused: suspended, its clocks stopped; overdue: the deadline or the running stage's due time passed;
# warning: the SLA monitor found 80 % of the stage's working time used (cases.sla.WARN_AT).
QueueSla = Literal["on_time", "warning", "overdue", "paused"]
QUEUE_SLA: tuple[QueueSla, ...] = ("overdue", "warning", "on_time", "paused")
OPEN_STATE_ORDER: tuple[str, ...] = tuple(s.value for s in CaseState if s in OPEN_STATES)
NO_ASSIGNEE = "-"  # the assignee filter's value for "nobody yet" (a username never is a dash)

MAX_VALUE = 64  # the longest id or code a filter takes (the columns are String(64))
MAX_SEARCH = 100
MAX_IDS = 200  # rows one live update may ask for; a bigger burst refreshes the whole list
MAX_IDS_TEXT = MAX_IDS * 12
MAX_QUERY = 2_000  # a whole query string: checked before anything is parsed


class BadFilter(ValueError):
    """A query-string value the queue cannot use; ``field`` is the parameter to fix and ``kind`` what
    is wrong with it (choice: not one of the listed values; length; chars: control characters)."""

    def __init__(self, field: str, reason: str, kind: str = "choice") -> None:
        super().__init__(f"{field}: {reason}")
        self.field, self.reason, self.kind = field, reason, kind


@dataclass(frozen=True, slots=True)
class QueueView:
    """One view of the open-case queue; an empty field does not narrow."""

    category: str = ""
    grid: str = ""
    state: str = ""
    sla: str = ""
    source: str = ""
    assignee: str = ""
    q: str = ""
    sort: str = "due"  # one of SORTS (parse_view checks)

    def value(self, facet: Facet) -> str:
        return str(getattr(self, facet))

    def without(self, facet: Facet | None) -> QueueView:
        """The same view with one facet cleared: its counts are taken within the other filters."""
        return self if facet is None else replace(self, **{facet: ""})

    @property
    def active(self) -> list[Facet]:
        return [f for f in FACETS if self.value(f)]

    @property
    def narrowed(self) -> bool:
        return bool(self.active or self.q)

    def query(self, **changes: str) -> str:
        """This view as a query string (defaults left out), with ``changes`` applied."""
        view = replace(self, **changes) if changes else self
        pairs = [(f.name, str(getattr(view, f.name))) for f in fields(view)]
        return urlencode([(k, v) for k, v in pairs if v and not (k == "sort" and v == "due")])


def _one(params: Mapping[str, str], name: str, limit: int) -> str:
    value = params.get(name, "").strip()
    if len(value) > limit:
        raise BadFilter(name, f"at most {limit} characters", "length")
    if any(ord(ch) < 32 for ch in value):
        raise BadFilter(name, "control characters are not allowed", "chars")
    return value


def parse_view(params: Mapping[str, str]) -> QueueView:
    """The view a query string asks for; unknown states, SLA states and sorts are refused by name.
    Category, grid, source and assignee are matched as given: an unknown one simply finds nothing."""
    values = {name: _one(params, name, MAX_VALUE) for name in (*FACETS, "sort")}
    q = _one(params, "q", MAX_SEARCH)
    if values["state"] and values["state"] not in OPEN_STATE_ORDER:
        raise BadFilter("state", f"one of {', '.join(OPEN_STATE_ORDER)}")
    if values["sla"] and values["sla"] not in QUEUE_SLA:
        raise BadFilter("sla", f"one of {', '.join(QUEUE_SLA)}")
    sort = values.pop("sort") or "due"
    if sort not in SORTS:
        raise BadFilter("sort", f"one of {', '.join(SORTS)}")
    return QueueView(**values, q=q, sort=sort)


def parse_ids(text: str) -> list[int]:
    """The case numbers of a live update (``ids=3,17,42``): at most MAX_IDS, in the given order."""
    if len(text) > MAX_IDS_TEXT:
        raise BadFilter("ids", f"at most {MAX_IDS} case numbers", "length")
    parts = [p for p in text.split(",") if p.strip()]
    if len(parts) > MAX_IDS:
        raise BadFilter("ids", f"at most {MAX_IDS} case numbers", "length")
    ids: list[int] = []
    for part in parts:
        if not part.strip().isdigit() or len(part.strip()) > 12:
            raise BadFilter("ids", "comma-separated case numbers, such as 3,17,42")
        ids.append(int(part))
    return list(dict.fromkeys(ids))


@dataclass(frozen=True, slots=True)
class FacetGroup:
    """How many open cases share one combination of facet values (a row of the grouped count)."""

    values: tuple[str, str, str, str, str, str]  # in FACETS order; "" for no assignee
    cases: int


@dataclass(frozen=True, slots=True)
class FacetCounts:
    """Per facet, the cases each value would show within the other active filters; ``total`` is the
    cases that pass every filter (the list itself is capped, the total is not)."""

    by_facet: dict[Facet, Counter[str]]
    total: int


def _passes(group: FacetGroup, view: QueueView, skip: Facet | None) -> bool:
    for index, facet in enumerate(FACETS):
        wanted = view.value(facet)
        if not wanted or facet == skip:
            continue
        have = group.values[index] or (NO_ASSIGNEE if facet == "assignee" else "")
        if have != wanted:
            return False
    return True


def count_facets(groups: Iterable[FacetGroup], view: QueueView) -> FacetCounts:
    """The counts beside every filter value, from one grouped pass over the open cases (already
    narrowed by the search): for a facet, the other facets' filters apply and its own does not."""
    groups = list(groups)
    by_facet: dict[Facet, Counter[str]] = {f: Counter() for f in FACETS}
    total = 0
    for group in groups:
        if _passes(group, view, None):
            total += group.cases
        for index, facet in enumerate(FACETS):
            if _passes(group, view, facet):
                key = group.values[index] or (NO_ASSIGNEE if facet == "assignee" else "")
                by_facet[facet][key] += group.cases
    return FacetCounts(by_facet=by_facet, total=total)


def parse_view_leniently(params: Mapping[str, str]) -> tuple[QueueView, list[BadFilter]]:
    """The view with every bad value left out (the page shows the rest and says what it ignored)."""
    kept = {k: v for k, v in params.items() if k in (*FACETS, "q", "sort")}
    refused: list[BadFilter] = []
    for _ in range(len(FACETS) + 2):
        try:
            return parse_view(kept), refused
        except BadFilter as bad:
            refused.append(bad)
            kept.pop(bad.field, None)
    return QueueView(), refused


class GroupCache:
    """The grouped counts of recent views, shared by everyone with the same jurisdiction and search.

    An entry is keyed by the newest case event too, so any change to a case makes a fresh count; it
    also lives at most ``ttl_s`` (SLA states move with the clock alone). Bounded: the least recently
    used entry goes first.
    """

    def __init__(self, size: int = 64, ttl_s: float = 15.0) -> None:
        self._size, self._ttl = size, ttl_s
        self._entries: OrderedDict[Hashable, tuple[float, list[FacetGroup]]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable, count: Callable[[], list[FacetGroup]]) -> list[FacetGroup]:
        now = time.monotonic()
        with self._lock:
            found = self._entries.get(key)
            if found is not None and now - found[0] < self._ttl:
                self._entries.move_to_end(key)
                return found[1]
        groups = count()  # outside the lock: two threads may count the same view once each
        with self._lock:
            self._entries[key] = (now, groups)
            self._entries.move_to_end(key)
            while len(self._entries) > self._size:
                self._entries.popitem(last=False)
        return groups
