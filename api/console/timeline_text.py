"""A case event's note in the user's language.

People's notes are shown as written. The system's notes are stored in English for the logs
("flooding-water-level fired on wl-01"); the console rebuilds them from the event's action, its data
and the ids in the note, in words from the catalogue — and shows no note rather than an English one
it cannot read.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from api.console.names import Names

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
