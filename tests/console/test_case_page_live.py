"""The case page's live stream, its refusals and its signature: a page knows what it shows (version,
events, evidence), the signature moves when an alert joins, and the stream is bounded and scoped like
/console/stream (the browser test tests/e2e/test_case_live_browser.py reads it for real). SQLite and
PostgreSQL."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from alerts.engine import AlertEngine
from alerts.intake import CaseBook
from alerts.rules import load_rules
from api import accounts
from api.console.case import case_signature
from api.settings import ApiSettings
from cases.models import Case
from cases.policy import CasePolicy
from common.db import make_engine
from contract import Reading
from contract.catalog import load_catalog
from tests.api.conftest import (  # noqa: F401 - fixtures: the app on each relational store, accounts
    api_database_url,
    client,
    console_login,
    login,
    settings,
    token,
)
from tests.factories import open_flooding_cases
from tests.platform import CONFIG_DIR

POLICY = CasePolicy.load(CONFIG_DIR)


def signature_on(page: str) -> str:
    found = re.search(r'id="case-live" data-case="\d+" data-signature="([0-9-]+)"', page)
    assert found is not None, page[:500]
    return found.group(1)


def test_the_signature_moves_when_an_alert_joins_and_the_stream_refuses_clearly(
    client: TestClient,  # noqa: F811
    token: str,  # noqa: F811
    login: Callable[..., str],  # noqa: F811
    settings: ApiSettings,  # noqa: F811
) -> None:
    open_flooding_cases(settings.database_url, [datetime.now(UTC)])
    db = make_engine(settings.database_url)
    with Session(db) as session:
        case_id = session.scalars(select(Case.id)).one()
    stream = f"/console/cases/{case_id}/stream"
    assert client.get(f"{stream}?seen=1-1-1").status_code == 401  # nobody signed in

    assert console_login(client).status_code in (200, 303)
    page = client.get(f"/console/cases/{case_id}")
    assert page.headers["cache-control"] == "no-store"
    first = signature_on(page.text)
    assert '<script src="/static/case.js" defer></script>' in page.text
    operator = accounts.find_user(db, "op")
    assert operator is not None and case_signature(client.app.state.resources, operator, case_id) == first  # type: ignore[attr-defined]

    book = CaseBook(db, POLICY, timedelta(hours=1))
    alerts = AlertEngine(load_rules(CONFIG_DIR, POLICY.categories), load_catalog(CONFIG_DIR))
    now = datetime.now(UTC)
    reading = Reading(device="wl-02", ts=int(now.timestamp() * 1000), values={"level_cm": 80})
    book.apply(alerts.on_reading("zhuganxiang", "gw-01", reading), now=now)
    second = signature_on(client.get(f"/console/cases/{case_id}").text)
    _, events, evidence = (int(x) for x in first.split("-"))
    assert second != first and second.endswith(f"-{events + 1}-{evidence + 1}")

    # Bad input is named; the stream's slots are the console's, bounded per user.
    missing = client.get(stream)
    assert missing.status_code == 422 and "seen" in missing.text
    forged = client.get(f"{stream}?seen=1-1-1%0Aevent:%20x")
    assert forged.status_code == 422 and "version-events-evidence" in forged.text
    assert client.get(f"/console/cases/{case_id + 99}/stream?seen={first}").status_code == 404
    slots = client.app.state.resources.streams  # type: ignore[attr-defined]
    held = [slots.acquire("op") for _ in range(4)]
    try:
        busy = client.get(f"{stream}?seen={first}")
        assert busy.status_code == 429 and busy.headers["retry-after"] == "60"
        assert "close a console tab" in busy.text
    finally:
        for slot in held:
            slots.release("op", slot)

    # A user of another grid gets a 404, not the case's signature.
    accounts.create_user(
        db, "li.south", "grid-pass-1", role="grid_worker", community="zhuganxiang", grid="g-south"
    )
    db.dispose()
    other = TestClient(client.app)
    assert console_login(other, "li.south", "grid-pass-1").status_code in (200, 303)
    assert other.get(f"{stream}?seen={first}").status_code == 404
