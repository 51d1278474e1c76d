"""The console names a category created at run time by its own names, in 简体中文 and English (#28): the
case queue, and the rules page of a rule that names it (loaded at start, the category already stored)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from fastapi.testclient import TestClient

from api import accounts
from api.app import create_app
from api.settings import ApiSettings
from cases.categories import Category
from cases.policy import CasePolicy
from common.db import make_engine
from tests.api.conftest import CONFIG, auth, console_login
from yiwang.schema import create_all

CO2 = Category(code="air_co2_high", name_zh="二氧化碳超标", name_en="CO₂ too high", sla_hours=12)
RULE = """rules:
  - {id: basement-air, version: 1, scope: {type: water.level@1}, severity: warning,
     category: air_co2_high, threshold: {field: level_cm, op: ">=", value: 50}}
"""


def cells(html: str) -> list[str]:
    return [re.sub(r"<[^>]+>", "", cell).strip() for cell in re.findall(r"<td[^>]*>(.*?)</td>", html, re.S)]


def test_the_console_names_a_run_time_category_in_both_languages(
    settings: ApiSettings, tmp_path: Path
) -> None:
    config = tmp_path / "config"
    shutil.copytree(CONFIG, config)
    (config / "rules" / "air.yaml").write_text(RULE)
    create_all(settings.database_url)  # as `yiwang db upgrade` leaves it (PostgreSQL: already there)
    db = make_engine(settings.database_url)
    stored = CasePolicy.load(config, db)
    assert stored.category_store is not None
    departments = {d.id: list(d.categories) for d in stored.organisation.departments}
    stored.category_store.create(CO2, department="housing", departments=departments, author="op")
    operator = accounts.create_user(db, "op", "correct horse", role="district_operator")
    token = accounts.issue_token(db, operator)
    db.dispose()

    with TestClient(create_app(settings.model_copy(update={"config_dir": config}))) as client:
        body = {"community": "zhuganxiang", "grid": "g-north", "category": "air_co2_high", "description": "x"}
        assert client.post("/api/v1/cases", json=body, headers=auth(token)).status_code == 201
        assert console_login(client).status_code in (200, 303)
        for lang, name in (("zh", "二氧化碳超标"), ("en", "CO₂ too high")):
            queue = client.get(f"/console?lang={lang}")
            assert queue.status_code == 200
            assert name in cells(queue.text) and "air_co2_high" not in cells(queue.text)
            rules = client.get(f"/console/rules?lang={lang}")
            assert rules.status_code == 200, rules.text[:500]
            assert name in cells(rules.text) and "air_co2_high" not in " ".join(cells(rules.text))
