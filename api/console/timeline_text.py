"""A case event's note in the user's language, its photos labelled before/after, and a stale action's
conflict told as who did what, when.

People's notes are shown as written. The system's notes are stored in English for the logs
("flooding-water-level fired on wl-01"); the console rebuilds them from the event's action, its data
and the ids in the note, in words from the catalogue — and shows no note rather than an English one
it cannot read.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import tzinfo
from typing import Any

from api.console.i18n import ACTION_NAMES, STATE_NAMES
from api.console.names import Names
from cases.actions import VersionConflict

# The notes alerts/intake.py, cases/actions.py and cases/sla.py write, by action.
_RULE_ON = r"(?P<rule>[a-z0-9][a-z0-9_.-]*) (?:fired|fired again|cleared) on (?P<subject>\S+)"
_PATTERNS: dict[str, re.Pattern[str]] = {
    "opened": re.compile(_RULE_ON),
    "alert_joined": re.compile(_RULE_ON),
    "alert_recurred": re.compile(_RULE_ON),
    "reopen": re.compile(_RULE_ON),
    "alert_resolved": re.compile(_RULE_ON + r"(?P<self> before anyone acted)?"),
    "alert_data_back": re.compile(r"data from (?P<subject>\S+) is back"),
    "alert_unknown": re.compile(r"data stopped: (?P<rule>\S+) on (?P<subject>\S+)"),
    "alert_flapping": re.compile(r"(?P<rule>\S+) on (?P<subject>\S+) is flapping"),
    "merge": re.compile(r"same grid and category as case (?P<case>\d+)"),
    "report_merged": re.compile(r"case (?P<case>\d+) reported by a resident"),
    "supervise": re.compile(r"(?P<stage>\S+) overdue: 督办 level (?P<level>\d+) to (?P<to>.+)$"),
    "sla_warning": re.compile(r"(?P<stage>[a-z_]+): 80 %"),
    "pass": re.compile(r"auto check$"),
}
_TEMPLATES = {
    "opened": "note_fired",
    "alert_joined": "note_fired",
    "alert_recurred": "note_fired_again",
    "reopen": "note_fired_again",
    "alert_resolved": "note_cleared",
    "alert_data_back": "note_data_back",
    "alert_unknown": "note_unknown",
    "alert_flapping": "note_flapping",
    "merge": "note_merged_into",
    "report_merged": "note_report_merged",
    "supervise": "note_supervise",
    "sla_warning": "note_sla_warning",
    "pass": "note_autocheck",
}


def event_note(
    action: str, actor: str, note: str, data: Mapping[str, Any], community: str, names: Names
) -> str:
    """The note of one timeline event as the user should read it."""
    if not actor.startswith("system:"):
        return note  # a person's own words
    pattern, template = _PATTERNS.get(action), _TEMPLATES.get(action)
    found = pattern.search(note) if pattern else None
    if found is None or template is None:
        return ""  # a system note the console has no words for: the action's name says enough
    parts = found.groupdict()
    words = names.words
    fields = {
        "rule": names.rule(parts.get("rule")),
        "subject": names.subject(parts["subject"], community) if parts.get("subject") else "",
        "case": parts.get("case") or data.get("case", ""),
        "stage": names.stage(str(data.get("stage") or parts.get("stage") or "")),
        "level": data.get("level") or parts.get("level") or "",
        "to": names.person(parts["to"]) if parts.get("to") else names.unit(str(data.get("unit", ""))),
    }
    text = words[template].format(**fields)
    if parts.get("self"):
        text += words["note_self_recovered"]
    return text


MAX_PHOTOS_SHOWN = 12  # per event: a payload is data, and a page is not a gallery


@dataclass(frozen=True, slots=True)
class PhotoSet:
    """An event's photos and whether they show the problem (before) or the work done (after)."""

    label: str  # a catalogue key: cp_photo_before | cp_photo_after
    ids: tuple[int, ...]

    @property
    def when(self) -> str:
        """before | after, for the page's data attribute."""
        return self.label.removeprefix("cp_photo_")


def photo_ids(data: Mapping[str, Any]) -> tuple[int, ...]:
    """The attachment ids of an event's payload (``attachments: [ids]``); anything else is ignored."""
    found = data.get("attachments")
    if not isinstance(found, list):
        return ()
    ids = [i for i in found if isinstance(i, int) and not isinstance(i, bool) and i > 0]
    return tuple(ids[:MAX_PHOTOS_SHOWN])


def photo_sets(events: Sequence[Any]) -> list[PhotoSet | None]:
    """Per event (same order), its photos labelled: the first photos of the case (the report's, or
    the first feedback's when the report had none) show it before; later feedback and visits after."""
    sets: list[PhotoSet | None] = []
    seen_before = False
    for event in events:
        ids = photo_ids(event.data or {})
        if not ids:
            sets.append(None)
            continue
        sets.append(PhotoSet("cp_photo_after" if seen_before else "cp_photo_before", ids))
        seen_before = True
    return sets


def conflict_text(conflict: VersionConflict, names: Names, zone: tzinfo) -> str:
    """Why an action was refused as stale, in the user's language: who did what, when, and what now."""
    words = names.words
    actions = ACTION_NAMES[names.lang]
    states = STATE_NAMES[names.lang]
    told = []
    for change in conflict.changes:
        state = states.get(change.to_state or "", "")
        told.append(
            words["cp_conflict_change"].format(
                who=names.person(change.actor),
                what=actions.get(change.action, words["cp_conflict_some_action"]),
                when=change.at.astimezone(zone).strftime("%m-%d %H:%M:%S"),
            )
            + (words["cp_conflict_now"].format(state=state) if state else "")
        )
    if not told:
        return words["cp_conflict_unknown"]
    return words["cp_conflict_intro"] + words["list_sep"].join(told) + words["cp_conflict_reload"]
