"""The alert intake opens cases in a category created while it runs (#28), on SQLite and PostgreSQL.

The intake's policy is built before the category exists, as ``alerts.service`` builds it at start; the
category is stored by another process's store; a rule naming it validates against the policy's
categories, fires, and the case it opens carries the category's own name and its urgent SLA."""

from __future__ import annotations

import shutil
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from alerts.intake import CaseBook
from alerts.rules import load_rules
from cases.categories import Category
from cases.category_store import CategoryStore
from cases.models import Case
from cases.policy import CasePolicy
from contract.errors import ContractError
from tests.alerts.scenario import CONFIG, Scenario

CO2 = Category(
    code="air_co2_high",
    name_zh="二氧化碳超标",
    name_en="CO₂ too high",
    sla_hours=12,
    urgent_sla_hours=3,
    clock="continuous",
)
RULE = """rules:
  - {id: basement-air, version: 1, scope: {type: water.level@1}, severity: critical,
     category: air_co2_high, threshold: {field: level_cm, op: ">=", value: 50}}
"""


def config_with_rule(tmp_path: Path) -> Path:
    """The repository's config with one rule file, naming the new category."""
    config = tmp_path / "config"
    shutil.copytree(CONFIG, config, ignore=shutil.ignore_patterns("rules"))
    (config / "rules").mkdir()
    (config / "rules" / "air.yaml").write_text(RULE)
    return config


def test_the_intake_opens_a_case_in_a_category_created_while_it_runs(db: Engine, tmp_path: Path) -> None:
    config = config_with_rule(tmp_path)
    policy = CasePolicy.load(config, db)  # the alert service's, built at its start
    with pytest.raises(ContractError, match="unknown category 'air_co2_high'"):
        load_rules(config, policy.categories)

    elsewhere = CasePolicy.load(config, db)  # the API process
    departments = {d.id: list(d.categories) for d in elsewhere.organisation.departments}
    assert elsewhere.category_store is not None
    elsewhere.category_store.create(CO2, department="housing", departments=departments, author="op")
    assert isinstance(policy.category_store, CategoryStore)
    policy.category_store.invalidate()  # as if its poll interval (1 s) had passed

    rules = load_rules(config, policy.categories)
    assert [r.category for r in rules] == ["air_co2_high"]
    book = CaseBook(db, policy, timedelta(minutes=10))
    scenario = Scenario(rules)
    assert book.apply(scenario.reading(0, "wl-01", level_cm=70))
    with Session(db) as session:
        case = session.scalars(select(Case)).one()
    assert case.category == "air_co2_high" and case.title.startswith("二氧化碳超标：")
    assert case.urgency == "urgent" and case.deadline - case.opened_at == timedelta(hours=3)
