"""Test data made through the real code paths (alert engine → case book), not inserted by hand."""

from __future__ import annotations

from datetime import datetime, timedelta

from alerts.engine import AlertEngine
from alerts.intake import CaseBook
from alerts.rules import load_rules
from cases.policy import CasePolicy
from common.db import make_engine
from contract import Reading
from contract.catalog import load_catalog
from tests.platform import CONFIG_DIR


def open_flooding_cases(
    database_url: str, at: list[datetime], device: str = "wl-01", gateway: str = "gw-01"
) -> None:
    """One flooding case per moment in the device's grid: the water rises to 70 cm, then drains."""
    db = make_engine(database_url)
    policy = CasePolicy.load(CONFIG_DIR)
    book = CaseBook(db, policy, timedelta(minutes=1))
    alert_engine = AlertEngine(load_rules(CONFIG_DIR, policy.categories), load_catalog(CONFIG_DIR))
    for moment in at:
        ms = int(moment.timestamp() * 1000)
        for offset, level in ((0, 70), (1, 1)):
            reading = Reading(device=device, ts=ms + offset, values={"level_cm": level})
            book.apply(alert_engine.on_reading("zhuganxiang", gateway, reading), now=moment)
    db.dispose()
