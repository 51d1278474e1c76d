"""Strategies shared by the fuzz tests: JSON-like values, valid wire messages, and one-field mutations.

Pure random input rarely gets past a parser's first check, so most tests start from a *valid* document
and change one thing in it (:func:`mutated`): a value replaced by anything, a key dropped or added.
"""

from __future__ import annotations

import copy
import uuid
from typing import Any

from hypothesis import strategies as st

_LOWER = "abcdefghijklmnopqrstuvwxyz"
_DIGITS = "0123456789"


def _word(first: str, rest: str, max_rest: int) -> st.SearchStrategy[str]:
    """``[first][rest]{0,max_rest}`` without ``from_regex``, which is several times slower to draw."""
    return st.builds(str.__add__, st.sampled_from(first), st.text(alphabet=rest, max_size=max_rest))


ID = st.text(alphabet=_LOWER + _DIGITS + "-", min_size=1, max_size=64)
FIELD = _word(_LOWER, _LOWER + _DIGITS + "_", 63)
_PART = _word(_LOWER, _LOWER + _DIGITS + "_", 8)
SENSOR_TYPE = st.builds(
    lambda parts, version: ".".join(parts) + f"@{version}",
    st.lists(_PART, min_size=1, max_size=3),
    st.integers(1, 9999),
)
EVENT_KIND = st.lists(_PART, min_size=2, max_size=4).map(".".join)
TS_MS = st.integers(min_value=1_000_000_000_000, max_value=9_999_999_999_999)
SEQ = st.integers(min_value=0, max_value=2**63 - 1)

SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
JSON = st.recursive(
    SCALARS,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)
"""Any JSON document (finite numbers; NaN is tested apart, as JSON has no spelling for it)."""

VALUE = (
    st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=256)
)
"""A reading value the contract accepts."""


@st.composite
def readings(draw: st.DrawFn) -> dict[str, Any]:
    return {
        "device": draw(ID),
        "ts": draw(TS_MS),
        "values": draw(st.dictionaries(FIELD, VALUE, min_size=1, max_size=5)),
    }


@st.composite
def telemetry(draw: st.DrawFn) -> dict[str, Any]:
    return {"seq": draw(SEQ), "readings": draw(st.lists(readings(), min_size=1, max_size=4))}


@st.composite
def events(draw: st.DrawFn) -> dict[str, Any]:
    return {
        "seq": draw(SEQ),
        "events": [
            {
                "device": draw(ID),
                "ts": draw(TS_MS),
                "id": str(uuid.UUID(int=draw(st.integers(0, 2**128 - 1)))),
                "kind": draw(EVENT_KIND),
                "phase": draw(st.sampled_from(["start", "update", "end", "instant"])),
                "attrs": draw(st.dictionaries(FIELD, VALUE, max_size=4)),
            }
            for _ in range(draw(st.integers(1, 3)))
        ],
    }


COUNT = st.integers(min_value=0, max_value=2**40)
FINITE = st.floats(allow_nan=False, allow_infinity=False)


@st.composite
def states(draw: st.DrawFn) -> dict[str, Any]:
    doc: dict[str, Any] = {"online": draw(st.booleans())}
    if draw(st.booleans()):
        doc["ts"] = draw(TS_MS)
    if draw(st.booleans()):
        doc["agent"] = draw(st.text(max_size=256))
    if draw(st.booleans()):
        doc["spool"] = {"depth": draw(COUNT), "oldest_ts": draw(st.none() | TS_MS)}
        if draw(st.booleans()):
            doc["spool"]["bytes"] = draw(COUNT)
        if draw(st.booleans()):
            doc["spool"]["dropped"] = draw(COUNT)
    if draw(st.booleans()):
        doc["modem"] = {"rsrp": draw(st.none() | FINITE), "sinr": draw(st.none() | FINITE)}
    if draw(st.booleans()):
        non_negative = st.floats(min_value=0, allow_nan=False, allow_infinity=False)
        doc["cameras"] = draw(
            st.dictionaries(
                ID,
                st.fixed_dictionaries(
                    {
                        "fps": non_negative,
                        "frames": COUNT,
                        "dropped": COUNT,
                        "reconnects": COUNT,
                        "connected": st.booleans(),
                    },
                    optional={"last_frame_age_s": st.none() | non_negative},
                ),
                max_size=3,
            )
        )
    if draw(st.booleans()):
        doc["upgrade"] = draw(upgrade_reports())
    return doc


AGENT_VERSION = st.from_regex(r"\A[0-9A-Za-z][0-9A-Za-z.+_-]{0,63}\Z")
OUTCOMES = (
    "downloading",
    "installing",
    "installed",
    "switching",
    "switched",
    "confirmed",
    "rolled_back",
    "failed",
)


def upgrade_reports() -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {"attempt": AGENT_VERSION, "outcome": st.sampled_from(OUTCOMES)},
        optional={"reason": st.none() | st.text(min_size=1, max_size=60), "ts": st.none() | TS_MS},
    )


@st.composite
def desired_versions(draw: st.DrawFn) -> dict[str, Any]:
    doc: dict[str, Any] = {"version": draw(AGENT_VERSION)}
    if draw(st.booleans()):
        doc["rollout"] = draw(st.none() | st.integers(min_value=1, max_value=2**31))
    return doc


@st.composite
def device_lists(draw: st.DrawFn) -> dict[str, Any]:
    entries = st.fixed_dictionaries({"device": ID, "type": SENSOR_TYPE})
    return {"ts": draw(TS_MS), "devices": draw(st.lists(entries, max_size=4))}


@st.composite
def configs(draw: st.DrawFn) -> dict[str, Any]:
    return {
        "hash": draw(st.from_regex(r"\A[0-9a-f]{16,128}\Z")),
        "config": draw(st.dictionaries(st.text(max_size=10), JSON, max_size=4)),
    }


def _paths(doc: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place in a JSON-like document: dict keys and list indexes, the root included."""
    out = [prefix]
    if isinstance(doc, dict):
        for key, value in doc.items():
            out += _paths(value, (*prefix, key))
    elif isinstance(doc, list):
        for index, value in enumerate(doc):
            out += _paths(value, (*prefix, index))
    return out


@st.composite
def mutated(draw: st.DrawFn, valid: st.SearchStrategy[Any], values: st.SearchStrategy[Any] = JSON) -> Any:
    """A valid document with one change: a value replaced, a key deleted, or an unknown key added."""
    doc = copy.deepcopy(draw(valid))
    path = draw(st.sampled_from(_paths(doc)))
    if not path:
        return draw(values)
    parent = doc
    for step in path[:-1]:
        parent = parent[step]
    action = draw(st.sampled_from(["replace", "delete", "add"]))
    if action == "replace" or not isinstance(parent, dict):
        parent[path[-1]] = draw(values)
    elif action == "delete":
        del parent[path[-1]]
    else:
        parent[draw(st.text(max_size=10))] = draw(values)
    return doc
