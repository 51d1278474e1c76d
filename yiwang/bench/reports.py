"""The monthly report at district scale: one month of 10,000 cases, each with its whole life in the log.

Cases are bulk-inserted into PostgreSQL (SQLite only when asked for) over June 2026, each with the
events a KPI, a department figure or the 通报 reads: reported → accept → verify → assign → sign →
(one in ten called up to a department: resolved, or returned; rated 1–5) → feedback → check → pass
(one in eight late) → visit; one in twenty gets a supervision order. The cases are counted in the
database after loading. The API runs as its own process; we time the report as HTML and as PDF, as a
client gets them. ``measure`` times an API already running (``yiwang bench api`` can call it).
"""

from __future__ import annotations

import random
import statistics
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
from sqlalchemy import Engine, func, insert, select, text
from sqlalchemy.orm import Session

from api.accounts import ensure_demo_operator
from cases.models import Case, CaseEvent, SupervisionOrder
from cases.policy import CasePolicy
from common.db import make_engine
from yiwang.bench.api import api_process, relational_store
from yiwang.bench.case_rows import case_row, event_row
from yiwang.schema import create_all

MONTH = "2026-06"
CST = ZoneInfo("Asia/Shanghai")
FIRST = datetime(2026, 6, 1, tzinfo=CST)


class BenchError(RuntimeError):
    """The benchmark cannot give the figure asked for; the message says why."""


def _life(
    rng: random.Random, case_id: int, opened: datetime, departments: list[str]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """One case's events and supervision orders."""
    events, orders = [], []
    at = opened
    for action in ("reported", "accept", "verify", "assign", "sign"):
        events.append(event_row(case_id, at, action))
        at += timedelta(minutes=5)
    if case_id % 10 == 0:
        department = rng.choice(departments)
        events.append(event_row(case_id, at, "call_up", {"department": department, "approved_by": "bench"}))
        returned = rng.random() < 0.2
        at += timedelta(hours=rng.choice([1, 1, 1, 100]))
        events.append(event_row(case_id, at, "call_return" if returned else "call_resolve"))
        events.append(event_row(case_id, at, "rate_call", {"rating": rng.randint(1, 5)}))
    if case_id % 20 == 0:
        unit = "yuehe"
        events.append(event_row(case_id, at, "supervise", {"stage": "handle", "level": 1, "unit": unit}))
        orders.append(
            {
                "case_id": case_id,
                "issued_at": at,
                "stage": "handle",
                "level": 1,
                "addressed_to": "li.na",
                "unit": unit,
            }
        )
    done = at + (timedelta(days=5) if case_id % 8 == 0 else timedelta(minutes=30))
    for action in ("feedback", "check", "pass"):
        events.append(event_row(case_id, done, action))
    events.append(
        event_row(case_id, done, "visit", {"outcome": rng.choice(["satisfied"] * 9 + ["unsatisfied"])})
    )
    return events, orders


def populate_month(db: Engine, policy: CasePolicy, cases: int) -> None:
    rng = random.Random(7)
    grids = ["g-north", "g-middle", "g-south"]
    categories = list(policy.categories)
    departments = [d.id for d in policy.organisation.departments] or ["water"]
    spacing = timedelta(days=29) / cases  # all inside June, local time
    batch = 2_000
    with db.begin() as conn:
        for first in range(1, cases + 1, batch):
            rows, events, orders = [], [], []
            for case_id in range(first, min(first + batch, cases + 1)):
                opened = FIRST + spacing * case_id
                category = rng.choice(categories)
                rows.append(
                    case_row(  # keyword order is draw order: the same seed gives the same cases
                        case_id,
                        opened=opened,
                        grid=rng.choice(grids),
                        category=category,
                        state="RETURN_VISIT",
                        source=rng.choice(["sensor", "report"]),
                        stage="done",
                        reporter_phone="13800000000",
                    )
                )
                life, supervised = _life(rng, case_id, opened, departments)
                events += life
                orders += supervised
            conn.execute(insert(Case), rows)
            conn.execute(insert(CaseEvent), events)
            if orders:
                conn.execute(insert(SupervisionOrder), orders)


def measure(http: httpx.Client, month: str = MONTH, repeats: int = 3) -> dict[str, float]:
    """The district's monthly report as HTML and as PDF, median of ``repeats`` after one warm-up each."""
    figures = {}
    for key, params in (("report_month_ms", {}), ("report_pdf_ms", {"format": "pdf"})):
        query = {"month": month, **params}
        http.get("/api/v1/reports/monthly", params=query).raise_for_status()
        samples = []
        for _ in range(repeats):
            started = time.perf_counter()
            http.get("/api/v1/reports/monthly", params=query).raise_for_status()
            samples.append((time.perf_counter() - started) * 1000)
        figures[key] = round(statistics.median(samples), 1)
    return figures


def run(config_dir: Path, *, cases: int = 10_000, allow_sqlite: bool = False) -> dict[str, Any]:
    policy = CasePolicy.load(config_dir)
    with relational_store(allow_sqlite, "report") as (url, kind), tempfile.TemporaryDirectory() as tmp:
        create_all(url)
        db = make_engine(url)
        try:
            populate_month(db, policy, cases)
            with Session(db) as session:
                loaded = session.scalar(select(func.count()).select_from(Case)) or 0
                events = session.scalar(select(func.count()).select_from(CaseEvent)) or 0
            if loaded != cases:
                raise BenchError(f"{loaded} cases in the database after loading {cases}")
            if kind == "postgresql":
                with db.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                    conn.execute(text("ANALYZE"))
            token = ensure_demo_operator(db, Path(tmp) / "credentials.json")["token"]
            with (
                api_process(url, config_dir, Path(tmp)) as base,
                httpx.Client(
                    base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=120
                ) as http,
            ):
                figures = measure(http)
        finally:
            db.dispose()
    return {"area": "reports", "store": kind, "cases_in_month": loaded, "case_events": events, **figures}
