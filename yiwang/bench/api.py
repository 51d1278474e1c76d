"""The operator queue, KPIs, rankings and the monthly report at district scale.

By default 100,000 cases and 1,000,000 case events (a year of the pilot's grids and categories);
``--cases 1000000`` loads ten years of a district (10,000,000 events). Every case has ten events (the
usual accept → close life; one in eight is called up to a district department and rated by its town),
and the data ends with November 2026 whatever the count. The last 30 days' cases are in any state (half
of them open); older ones are closed, but one in a thousand that stays open for years. PostgreSQL — the
store this figure is about — is loaded with COPY; SQLite only when asked for (``allow_sqlite``), never
as a silent fallback. The cases are counted in the database after loading; a count other than the one
asked for fails the run. The API runs as its own process; we time, as a client sees them, the queue page
(open cases of one grid, newest first, 50 per page, with its total), the district KPIs of November, the
departments ranked over the third quarter and November's monthly report (HTML). The ceiling is the
database's own time for the same queue query, measured in the same run.
"""

from __future__ import annotations

import itertools
import json
import random
import re
import secrets
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import Engine, func, insert, select, text
from sqlalchemy.orm import Session

from api.accounts import create_user, ensure_demo_operator
from cases.models import OPEN_STATES, Case, CaseEvent
from cases.policy import CasePolicy
from common.db import make_engine
from yiwang.bench import BenchError
from yiwang.bench.case_rows import case_row, event_row
from yiwang.bench.photos import photo_ms
from yiwang.schema import create_all
from yiwang.servers import free_port, postgres_available, start_postgres
from yiwang.servers import postgres as postgres_server
from yiwang.supervisor import Child, Supervisor, env_with, self_command

LIFE = ["reported", "accept", "verify", "assign", "sign", "feedback", "check", "pass", "visit", "note"]
STATES = [
    "NEW",
    "VERIFYING",
    "HANDLING",
    "FEEDBACK",
    "CLOSED",
    "RETURN_VISIT",
    "RETURN_VISIT",
    "RETURN_VISIT",
]


# One case in eight is called up to a district department (镇呼区应) and rated by its town afterwards.
CALLED_LIFE = [
    "reported",
    "accept",
    "verify",
    "call_up",
    "respond",
    "call_resolve",
    "rate_call",
    "check",
    "pass",
    "visit",
]
# A district's queue holds the recent cases: older ones were closed long ago, but for the odd one in a
# thousand (a suspended or forgotten case) that stays open for years.
RECENT = timedelta(days=30)
STALE_OPEN_EVERY = 1_000
CLOSED_STATES = ["CLOSED", "RETURN_VISIT"]
CASE_EVERY = timedelta(minutes=5)  # 100,000 cases ≈ a year, 1,000,000 ≈ ten years of a district
DATA_ENDS = datetime(2026, 12, 1, tzinfo=UTC)
BATCH = 5_000


def _case_lives(
    policy: CasePolicy, cases: int, events_per_case: int
) -> Iterator[tuple[dict[str, Any], list[dict[str, Any]]]]:
    """Each case and its events: the data ends with November 2026, whatever the count."""
    rng = random.Random(5)
    grids, categories = ["g-north", "g-middle", "g-south"], list(policy.categories)
    departments = [d.id for d in policy.organisation.departments] or ["dept"]
    start = DATA_ENDS - CASE_EVERY * (cases + 1)
    for case_id in range(1, cases + 1):
        opened = start + CASE_EVERY * case_id + timedelta(minutes=rng.randint(0, 4))
        category = rng.choice(categories)
        called = case_id % 8 == 0
        department = rng.choice(departments) if called else None
        case = case_row(  # keyword order is draw order: the same seed gives the same cases
            case_id,
            opened=opened,
            grid=rng.choice(grids),
            category=category,
            state=_state(rng, case_id, DATA_ENDS - opened),
            source=rng.choice(["sensor", "report"]),
            stage="handle",
            urgency="normal",
            department=department,
            stage_due=opened + timedelta(hours=8),
        )
        life = CALLED_LIFE if called else LIFE
        events = []
        for n, action in enumerate(life[:events_per_case]):
            data: dict[str, Any] = {}
            if action == "visit":
                data = {"outcome": "satisfied"}
            elif action == "call_up":
                data = {"department": department}
            elif action == "rate_call":
                data = {"rating": rng.randint(3, 5)}
            events.append(event_row(case_id, opened + timedelta(minutes=10 * n), action, data))
        yield case, events


def _state(rng: random.Random, case_id: int, age: timedelta) -> str:
    if age <= RECENT:
        return rng.choice(STATES)
    return "HANDLING" if case_id % STALE_OPEN_EVERY == 0 else rng.choice(CLOSED_STATES)


def populate(db: Engine, policy: CasePolicy, cases: int, events_per_case: int = 10) -> None:
    """Bulk-load the cases: PostgreSQL's COPY (a million cases in minutes), inserts on SQLite."""
    if db.dialect.name == "postgresql":
        _copy(db, lambda: _case_lives(policy, cases, events_per_case))
        return
    lives = _case_lives(policy, cases, events_per_case)
    with db.begin() as conn:
        while batch := list(itertools.islice(lives, BATCH)):
            conn.execute(insert(Case), [case for case, _ in batch])
            conn.execute(insert(CaseEvent), [e for _, events in batch for e in events])


Lives = Iterator[tuple[dict[str, Any], list[dict[str, Any]]]]
_EVENT_COLUMNS = ["case_id", "at", "actor", "action", "from_state", "to_state", "note", "data"]


def _copy(db: Engine, lives: Callable[[], Lives]) -> None:
    """COPY every case, then every event (the same lives generated again: ten million events do not
    fit in memory as rows); ids of events come from their sequence."""
    raw = db.raw_connection()
    try:
        cursor = raw.cursor()
        with cursor.copy(_copy_sql("cases", _CASE_COLUMNS)) as copy:
            for case, _ in lives():
                copy.write_row([case[c] for c in _CASE_COLUMNS])
        with cursor.copy(_copy_sql("case_events", _EVENT_COLUMNS)) as copy:
            for _, events in lives():
                for e in events:
                    copy.write_row([json.dumps(e[c]) if c == "data" else e[c] for c in _EVENT_COLUMNS])
        raw.commit()
    finally:
        raw.close()
    with db.begin() as conn:  # COPY set explicit case ids: the sequence must move past them
        conn.execute(
            text("SELECT setval(pg_get_serial_sequence('cases', 'id'), (SELECT max(id) FROM cases))")
        )


_CASE_COLUMNS = [
    "id",
    "community",
    "grid",
    "category",
    "state",
    "title",
    "source",
    "severity",
    "urgency",
    "opened_at",
    "updated_at",
    "deadline",
    "version",
    "description",
    "owner_town",
    "department",
    "stage",
    "stage_due",
    "stage_warned",
    "breaches",
]


def _copy_sql(table: str, columns: list[str]) -> str:
    return f"COPY {table} ({', '.join(columns)}) FROM STDIN"


def percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "p50": round(statistics.median(ordered), 1),
        "p99": round(ordered[int(0.99 * (len(ordered) - 1))], 1),
    }


@contextmanager
def relational_store(allow_sqlite: bool, what: str = "API") -> Iterator[tuple[str, str]]:
    """A throw-away PostgreSQL (the production store these figures are about), or SQLite if allowed."""
    if postgres_available():
        server = start_postgres("bench")
        try:
            yield server.url, "postgresql"
        finally:
            server.stop()
    elif allow_sqlite:
        with tempfile.TemporaryDirectory() as tmp:
            yield f"sqlite:///{tmp}/bench.db", "sqlite"
    else:
        raise BenchError(
            f"the {what} benchmark needs PostgreSQL 15 (not found in {postgres_server.POSTGRES_BIN_DIR}); "
            "pass --allow-sqlite to measure on SQLite instead"
        )


@contextmanager
def api_process(url: str, config_dir: Path, work: Path) -> Iterator[str]:
    """`yiwang api` as its own process on ``url`` (series and photos in ``work``); yields its base URL."""
    port = free_port()
    env = env_with(
        {
            "YIWANG_DATABASE_URL": url,
            "YIWANG_SERIES_URL": f"sqlite:///{work}/series.db",
            "YIWANG_ATTACHMENTS_DIR": str(work / "attachments"),  # photos in the run's directory
            "YIWANG_CONFIG_DIR": str(config_dir.resolve()),
            "YIWANG_HTTP_PORT": str(port),
            "YIWANG_LOG_LEVEL": "WARNING",
        }
    )
    supervisor = Supervisor(env, log_path=work / "api.log")
    try:
        supervisor.start(Child("api", self_command("api"), port))
        yield f"http://127.0.0.1:{port}"
    finally:
        supervisor.stop_all()


def count_cases(db: Engine) -> int:
    """The cases in the database: what the figures were measured on."""
    with Session(db) as session:
        return session.scalar(select(func.count()).select_from(Case)) or 0


def run(
    config_dir: Path, *, cases: int = 100_000, requests: int = 200, allow_sqlite: bool = False
) -> dict[str, Any]:
    """Load ``cases`` and time the API on them; PostgreSQL unless ``allow_sqlite`` (BenchError)."""
    policy = CasePolicy.load(config_dir)
    with relational_store(allow_sqlite) as (url, kind), tempfile.TemporaryDirectory() as tmp:
        create_all(url)
        db = make_engine(url)
        try:
            loaded = time.perf_counter()
            populate(db, policy, cases)
            load_s = time.perf_counter() - loaded
            cases_loaded = count_cases(db)
            if cases_loaded != cases:
                raise BenchError(f"{cases_loaded} cases in the database after loading {cases}")
            if kind == "postgresql":
                with db.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                    conn.execute(text("ANALYZE"))  # as autovacuum would after a bulk load
            credentials = ensure_demo_operator(db, Path(tmp) / "credentials.json")
            worker = _grid_worker(db)
            token = credentials["token"]
            with Session(db) as session:
                event_count = session.scalar(select(func.count()).select_from(CaseEvent)) or 0
            with api_process(url, config_dir, Path(tmp)) as base:
                http = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=120)
                queue: dict[str, str | int] = {"open": "true", "grid": "g-north", "limit": 50}
                http.get("/api/v1/cases", params=queue).raise_for_status()  # warm caches
                queue_ms = []
                for _ in range(requests):
                    started = time.perf_counter()
                    http.get("/api/v1/cases", params=queue).raise_for_status()
                    queue_ms.append((time.perf_counter() - started) * 1000)
                month: dict[str, str] = {
                    "start": "2026-11-01T00:00:00+08:00",
                    "end": "2026-12-01T00:00:00+08:00",
                }
                kpi_ms = _timed(http, "/api/v1/kpis", month, 5)
                quarter = {"level": "department", "period": "quarter", "date": "2026-08-15"}
                ranking_ms = _timed(http, "/api/v1/kpis/rankings", quarter, 3)
                report_ms = _timed(http, "/api/v1/reports/monthly", {"month": "2026-11"}, 3)
                photos = photo_ms(http, _open_case(db))
                http.close()
                console_samples = console_ms(base, credentials)
                field_samples = console_ms(base, worker, loads=requests, path="/console/field")
            db_ms = _db_queue_ms(db)
        finally:
            db.dispose()
    queue_pct = percentiles(queue_ms)
    return {
        "area": "api",
        "store": kind,
        "cases_loaded": cases_loaded,
        "case_events": event_count,
        "load_s": round(load_s, 1),
        "queue_p50_ms": queue_pct["p50"],
        "queue_p99_ms": queue_pct["p99"],
        "ceiling_db_queue_p50_ms": percentiles(db_ms)["p50"],
        "kpi_ms": round(statistics.median(kpi_ms), 1),
        "department_ranking_quarter_ms": round(statistics.median(ranking_ms), 1),
        "monthly_report_html_ms": round(statistics.median(report_ms), 1),
        # The console's queue page as a signed-in district operator sees it (all open cases, 200 rows).
        "console_page_p99_ms": percentiles(console_samples)["p99"],
        # The phone's task list as a grid worker of g-north sees it (its open cases, due first).
        "field_tasks_p50_ms": percentiles(field_samples)["p50"],
        "field_tasks_p99_ms": percentiles(field_samples)["p99"],
        **photos,  # a 4 MB phone photo checked, re-encoded and stored (photo_ms)
    }


def _grid_worker(db: Engine) -> dict[str, str]:
    """A grid worker's console login (g-north of the loaded community)."""
    password = secrets.token_urlsafe(16)
    create_user(db, "bench.worker", password, "grid_worker", community="zhuganxiang", grid="g-north")
    return {"username": "bench.worker", "password": password}


def _open_case(db: Engine) -> int:
    """The newest open case: the one a worker's photo goes to."""
    with Session(db) as session:
        found = session.scalar(
            select(Case.id).where(Case.state.in_([s.value for s in OPEN_STATES])).order_by(Case.id.desc())
        )
    if found is None:
        raise BenchError("no open case to attach a photo to")
    return found


def _timed(http: httpx.Client, path: str, params: dict[str, str], times: int) -> list[float]:
    """Milliseconds per answer of ``times`` GETs, each checked for success."""
    samples = []
    for _ in range(times):
        started = time.perf_counter()
        http.get(path, params=params).raise_for_status()
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def console_ms(
    base_url: str, credentials: dict[str, str], loads: int = 20, path: str = "/console"
) -> list[float]:
    with httpx.Client(base_url=base_url, timeout=60) as browser:
        # The login form carries its CSRF token: sign in as a browser does, or every page is a redirect.
        form = browser.get("/console/login")
        form.raise_for_status()
        token = re.search(r'name="csrf" value="([^"]+)"', form.text)
        if token is None:
            raise BenchError("the console's login form has no CSRF token")
        signed_in = browser.post(
            "/console/login",
            data={"username": credentials["username"], "password": credentials["password"], "csrf": token[1]},
        )
        if signed_in.status_code != httpx.codes.SEE_OTHER:
            raise BenchError(f"console login failed: HTTP {signed_in.status_code}")
        samples = []
        for _ in range(loads):
            started = time.perf_counter()
            browser.get(path).raise_for_status()
            samples.append((time.perf_counter() - started) * 1000)
    return samples


def _db_queue_ms(db: Engine) -> list[float]:
    """The same queue query straight against the database: what the API adds is the rest."""
    states = [s.value for s in OPEN_STATES]
    query = select(Case).where(Case.state.in_(states), Case.grid == "g-north")
    samples = []
    with Session(db) as session:
        for _ in range(50):
            started = time.perf_counter()
            session.scalar(select(func.count()).select_from(query.subquery()))
            list(session.scalars(query.order_by(Case.opened_at.desc(), Case.id.desc()).limit(50)))
            samples.append((time.perf_counter() - started) * 1000)
    return samples
