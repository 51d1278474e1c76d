"""The attack target: a real ``python -m yiwang api`` process on fresh SQLite stores.

:func:`api_process` starts one (its database seeded first); :func:`real_api` is the shared module
fixture with a district and a town operator and their tokens.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from api import accounts
from common.db import make_engine
from tests.e2e.browser import api_env
from tests.e2e.browser import api_process as yiwang_api
from yiwang.schema import create_all


def rss_kb(pid: int) -> int:
    """A process's resident memory (VmRSS), in kB."""
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS:")))


@dataclass(frozen=True)
class Console:
    base: str
    database_url: str
    pid: int

    def rss_kb(self) -> int:
        return rss_kb(self.pid)


@contextmanager
def api_process(tmp: Path, env: dict[str, str], seed: Callable[[str], None]) -> Iterator[Console]:
    """A real ``python -m yiwang api`` on fresh SQLite stores; ``seed`` fills its database first."""
    database_url = f"sqlite:///{tmp}/yiwang.db"
    create_all(database_url)
    seed(database_url)
    service_env = api_env(database_url, tmp, YIWANG_MQTT_PORT="1", **env)  # no broker: the API needs none
    with yiwang_api(tmp, service_env) as api:
        yield Console(api.base, database_url, api.pid)


@dataclass(frozen=True)
class RealApi:
    base: str
    pid: int
    district_token: str  # a district operator's
    town_token: str  # the operator of town yuehe (community zhuganxiang)

    def rss_kb(self) -> int:
        return rss_kb(self.pid)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture(scope="module")
def real_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RealApi]:
    tokens: list[str] = []

    def seed(database_url: str) -> None:
        db = make_engine(database_url)
        district = accounts.create_user(db, "district", "district-pass", role="district_operator")
        town = accounts.create_user(db, "wang.wei", "town-pass", role="town_operator", town="yuehe")
        tokens.extend((accounts.issue_token(db, district), accounts.issue_token(db, town)))
        db.dispose()

    with api_process(tmp_path_factory.mktemp("api"), {}, seed) as api:
        yield RealApi(api.base, api.pid, *tokens)
