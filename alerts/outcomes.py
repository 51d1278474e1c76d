"""Rule outcomes, so operators can see which rules are noisy and tune them from results.

Everything is counted from the append-only alert history and the cases, so it can be recomputed.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Engine, Integer, and_, func, select, true
from sqlalchemy.orm import InstrumentedAttribute, Session

from alerts.models import AlertHistory
from cases.models import Case, CaseState, Evidence


@dataclass(frozen=True, slots=True)
class RuleOutcome:
    rule_id: str
    fired: int = 0  # firing transitions that reached the case book unmuted
    silenced: int = 0
    inhibited: int = 0
    flapping: int = 0
    cases_opened: int = 0
    cases_voided: int = 0  # cases this rule contributed to that were voided (false alarms)
    self_recovered: int = 0  # resolved before anyone acted on the case


def _count(condition: ColumnElement[bool] | InstrumentedAttribute[bool]) -> Any:
    return func.coalesce(func.sum(condition.cast(Integer)), 0)


def rule_outcomes(db: Engine, since: datetime | None = None) -> dict[str, RuleOutcome]:
    h = AlertHistory
    firing = h.kind == "firing"
    query = select(
        h.rule_id,
        _count(and_(firing, ~h.silenced, ~h.inhibited)),
        _count(and_(firing, h.silenced)),
        _count(and_(firing, h.inhibited)),
        _count(h.kind == "flapping"),
        _count(h.opened_case),
        _count(h.self_recovered),
    ).where(h.at >= since if since is not None else true())
    voided = (
        select(Evidence.rule_id, func.count(func.distinct(Evidence.case_id)))
        .join(Case)
        .where(Case.state == CaseState.VOID.value, Case.opened_at >= since if since is not None else true())
    )
    out: dict[str, RuleOutcome] = {}
    with Session(db) as session:
        for rule_id, *counts in session.execute(query.group_by(h.rule_id)):
            fired, silenced, inhibited, flapping, opened, recovered = (int(c) for c in counts)
            out[rule_id] = RuleOutcome(rule_id, fired, silenced, inhibited, flapping, opened, 0, recovered)
        for rule_id, count in session.execute(voided.group_by(Evidence.rule_id)):
            out[rule_id] = dataclasses.replace(out.get(rule_id, RuleOutcome(rule_id)), cases_voided=count)
    return out
