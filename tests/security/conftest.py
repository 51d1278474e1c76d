"""The attack target: one real ``python -m yiwang api`` process per test module, on fresh SQLite stores."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from api import accounts
from common.db import make_engine
from tests.platform import CONFIG_DIR, Service, wait_for
from yiwang.schema import create_all
from yiwang.servers import free_port


@dataclass(frozen=True)
class RealApi:
    base: str
    pid: int
    district_token: str  # a district operator's
    town_token: str  # the operator of town yuehe (community zhuganxiang)

    def rss_kb(self) -> int:
        """The API process's resident memory (VmRSS), in kB."""
        status = Path(f"/proc/{self.pid}/status").read_text()
        return int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS:")))


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture(scope="module")
def real_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RealApi]:
    tmp = tmp_path_factory.mktemp("api")
    database_url = f"sqlite:///{tmp}/yiwang.db"
    create_all(database_url)
    db = make_engine(database_url)
    district = accounts.create_user(db, "district", "district-pass", role="district_operator")
    town = accounts.create_user(db, "wang.wei", "town-pass", role="town_operator", town="yuehe")
    tokens = accounts.issue_token(db, district), accounts.issue_token(db, town)
    db.dispose()
    port = free_port()
    env = {
        "YIWANG_DATABASE_URL": database_url,
        "YIWANG_SERIES_URL": f"sqlite:///{tmp}/series.db",
        "YIWANG_CONFIG_DIR": str(CONFIG_DIR),
        "YIWANG_HTTP_PORT": str(port),
        "YIWANG_MQTT_PORT": "1",  # no broker: the API does not need one
    }
    api = Service(["api"], env, tmp, tmp / "api.log").start()
    base = f"http://127.0.0.1:{port}"

    def up() -> bool:
        try:
            answer = httpx.get(f"{base}/api/v1/cases", headers=bearer(tokens[0]), timeout=2)
            return answer.status_code == 200
        except httpx.HTTPError:
            return False

    wait_for(up, 30, f"the API; log:\n{api.log()}")
    assert api.proc is not None
    yield RealApi(base, api.proc.pid, *tokens)
    assert api.stop() == 0, api.log()
