"""A field worker's requests (#22) as the pages show them: what waits for an approver, and each
request and answer of the timeline in words of the user's language, never a code."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from api.accounts import User
from api.console.i18n import ACTION_NAMES
from api.console.names import Names
from api.schemas import CaseEventOut
from api.scope import may_answer_request
from cases.workflow import REQUESTS, RETURN_REASONS, pending_requests


@dataclass(frozen=True, slots=True)
class PendingRequest:
    kind: str  # request_extension | request_return: the form's hidden value, never shown
    asks_for: str  # the action an approval takes: extend | return
    what: str  # the request, named
    who: str
    at: datetime
    detail: str  # "24 more hours: waiting for parts", in words
    note: str  # the worker's own words
    may_answer: bool
    own: bool  # the user asked it: someone else answers


def reason_words(reason: object, names: Names) -> str:
    """A return reason chosen on the phone by its name; anything else (typed) as written."""
    text = str(reason or "")
    return names.words[f"fld_return_{text}"] if text in RETURN_REASONS else text


def hours_text(hours: object) -> str:
    return f"{hours:g}" if isinstance(hours, int | float) and not isinstance(hours, bool) else ""


def request_words(action: str, data: Mapping[str, Any], names: Names) -> str:
    """What a request, or an answer to one, asked or decided: '' for every other event."""
    words, hours = names.words, hours_text(data.get("hours"))
    reason = reason_words(data.get("reason"), names)
    asker = names.person(str(data.get("requested_by") or "")) if data.get("requested_by") else ""
    if action == "request_extension":
        return words["fld_req_extension_detail"].format(hours=hours, reason=reason)
    if action == "request_return":
        return words["fld_req_return_detail"].format(reason=reason)
    if action == "refuse_request":
        asked = ACTION_NAMES[names.lang].get(str(data.get("request")), "")
        return words["fld_req_refused_detail"].format(what=asked, who=asker, reason=reason)
    if action == "extend" and asker:
        return words["fld_req_extended_detail"].format(who=asker, hours=hours)
    if action == "return" and asker:
        return words["fld_req_returned_detail"].format(who=asker, reason=reason)
    return ""


def pending_view(user: User, events: Sequence[CaseEventOut], names: Names) -> list[PendingRequest]:
    """The requests of the case still waiting, oldest first, and whether ``user`` may answer each."""
    found = sorted(pending_requests(events).items(), key=lambda item: item[1].at)
    return [
        PendingRequest(
            kind=kind,
            asks_for=REQUESTS[kind],
            what=ACTION_NAMES[names.lang][kind],
            who=names.person(event.actor),
            at=event.at,
            detail=request_words(kind, event.data, names),
            note=event.note,
            may_answer=may_answer_request(user, kind, event.actor),
            own=event.actor == user.username,
        )
        for kind, event in found
    ]
