"""The queue page's words and rows: filter options with their counts, the sentence saying what is
filtered, and each row's SLA state and sort key. Names only, never the codes the data uses."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime

from api.console.names import Names
from cases.models import Case, CaseState
from cases.queue_filters import (
    FACETS,
    NO_ASSIGNEE,
    OPEN_STATE_ORDER,
    QUEUE_SLA,
    SORTS,
    BadFilter,
    Facet,
    FacetCounts,
    QueueView,
)

# Source channels the catalogue names; any other value reads as "other", never as its code.
KNOWN_SOURCES = ("sensor", "report", "hotline", "12345", "console", "resident", "public", "wechat", "app")
_SEVERITY_RANK = {"critical": 0, "warning": 1, "info": 2}
_KEY_DIGITS = 12


@dataclass(frozen=True, slots=True)
class Option:
    value: str
    label: str
    count: int
    chosen: bool


@dataclass(frozen=True, slots=True)
class FacetChoice:
    facet: Facet
    label: str
    options: list[Option]


@dataclass(frozen=True, slots=True)
class QueueRow:
    """One row as the page shows it: the case, its names, SLA state and where it sorts (ascending)."""

    case: Case
    sla: str
    key: str
    labels: dict[Facet, str]


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def row_sla(case: Case, now: datetime) -> str:
    """The SLA state of one case: the same judgement as cases.queue.queue_sla makes in SQL."""
    if case.state == CaseState.SUSPENDED.value:
        return "paused"
    if any(_aware(d) <= now for d in (case.deadline, case.stage_due) if d is not None):
        return "overdue"
    return "warning" if case.stage_warned else "on_time"


def _number(value: int) -> str:
    return str(max(value, 0)).zfill(_KEY_DIGITS + 6)


def sort_key(case: Case, sort: str) -> str:
    """A string that sorts rows as the database did (cases.queue._sorted), so the page can place a
    row that a live update brings without asking for the whole list again."""
    due = _aware(case.stage_due or case.deadline)
    due_us = int(due.timestamp() * 1_000_000)
    if sort == "newest":
        opened_us = int(_aware(case.opened_at).timestamp() * 1_000_000)
        return _number(10**17 - opened_us) + _number(10**12 - case.id)
    rank = str(_SEVERITY_RANK.get(case.severity, 3)) if sort == "severity" else ""
    return rank + _number(due_us) + _number(case.id)


def rows(
    cases: list[Case], sort: str, now: datetime, names: Names, state_names: dict[str, str]
) -> list[QueueRow]:
    """The rows with their names looked up once per distinct value (a page repeats a few hundred)."""
    known: dict[tuple[Facet, str], str] = {}

    def label(facet: Facet, value: str) -> str:
        if (facet, value) not in known:
            known[facet, value] = value_label(names, state_names, facet, value)
        return known[facet, value]

    found = []
    for c in cases:
        sla = row_sla(c, now)
        values: dict[Facet, str] = {
            "category": c.category,
            "grid": c.grid,
            "state": c.state,
            "sla": sla,
            "source": c.source,
            "assignee": c.assignee or NO_ASSIGNEE,
        }
        labels = {facet: label(facet, value) for facet, value in values.items()}
        found.append(QueueRow(case=c, sla=sla, key=sort_key(c, sort), labels=labels))
    return found


def source_label(names: Names, source: str) -> str:
    words = names.words
    return words[f"queue_source_{source}"] if source in KNOWN_SOURCES else words["queue_source_other"]


def value_label(names: Names, state_names: dict[str, str], facet: Facet, value: str) -> str:
    """A filter value in words (a category's, grid's or person's name; a state's; an SLA state's)."""
    words = names.words
    if facet == "category":
        return names.category(value)
    if facet == "grid":
        return names.grid(value)
    if facet == "state":
        return state_names.get(value, words["dash"])
    if facet == "sla":
        return words.get(f"queue_sla_{value}", words["dash"])
    if facet == "source":
        return source_label(names, value)
    return words["queue_unassigned"] if value == NO_ASSIGNEE else names.person(value)


# Channels offered even with no open case from them: a filter can wait for the first one.
BASE_SOURCES = ("sensor", "report")


def _values(facet: Facet, counted: Counter[str], chosen: str, categories: list[str]) -> list[str]:
    """Which values a facet offers: every open state, SLA state, category and base channel; of the
    others, those with cases within the other filters (and the chosen one, even at none, so it can
    be seen and undone)."""
    if facet == "state":
        return list(OPEN_STATE_ORDER)
    if facet == "sla":
        return list(QUEUE_SLA)
    values = [v for v, n in counted.most_common() if n > 0]
    always = {"category": categories, "source": list(BASE_SOURCES)}.get(facet, [])
    values += [v for v in (*always, chosen) if v and v not in values]
    return values


def choices(
    names: Names, state_names: dict[str, str], view: QueueView, counts: FacetCounts
) -> list[FacetChoice]:
    words = names.words
    categories = list(names.resources.categories)
    found = []
    for facet in FACETS:
        counted, chosen = counts.by_facet[facet], view.value(facet)
        options = [
            Option(v, value_label(names, state_names, facet, v), counted.get(v, 0), v == chosen)
            for v in _values(facet, counted, chosen, categories)
        ]
        found.append(FacetChoice(facet, words[f"queue_facet_{facet}"], options))
    return found


def sort_options(names: Names, view: QueueView) -> list[Option]:
    return [Option(s, names.words[f"queue_sort_{s}"], 0, s == view.sort) for s in SORTS]


def summary(names: Names, state_names: dict[str, str], view: QueueView) -> str:
    """What the list is narrowed to, in a sentence: "类别：积水内涝；搜索：“竹竿巷”"."""
    words = names.words
    parts = [
        words["queue_summary_part"].format(
            facet=words[f"queue_facet_{f}"], value=value_label(names, state_names, f, view.value(f))
        )
        for f in view.active
    ]
    if view.q:
        parts.append(words["queue_summary_search"].format(q=view.q))
    return words["queue_summary_sep"].join(parts)


def counts_json(counts: FacetCounts) -> dict[str, dict[str, int]]:
    """The counts for the page's script, by facet and value (the values are the options' own)."""
    return {facet: dict(counted) for facet, counted in counts.by_facet.items()}


def refusal(names: Names, bad: BadFilter) -> str:
    """A refused filter value in a sentence naming the control to fix and how."""
    words = names.words
    field = {"q": words["queue_search"], "sort": words["queue_sort"]}.get(
        bad.field, words.get(f"queue_facet_{bad.field}", words["queue_filters"])
    )
    hint = words[f"queue_hint_{bad.field}"] if bad.kind == "choice" else words[f"queue_hint_{bad.kind}"]
    return words["queue_bad_filter"].format(field=field, hint=hint)
