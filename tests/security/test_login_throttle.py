"""Login throttling against the real API process: a forged X-Forwarded-For buys an attacker nothing, a
trusted proxy's does not lock out everyone behind it, and each failure past the free ones doubles the wait."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator

import httpx
import pytest

from api import accounts
from common.db import make_engine
from tests.security.conftest import Console, api_process
from tests.security.test_sessions import sign_in

pytestmark = pytest.mark.e2e
PROXY = "127.0.0.1"  # the test's own connections come from here
BACKOFF_S = 1.0


def _seed(database_url: str) -> None:
    db = make_engine(database_url)
    for name in ("target", "neighbour", "typist"):
        accounts.create_user(db, name, f"{name}-pass", role="district_operator")
    db.dispose()


@pytest.fixture(scope="module")
def untrusting(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    """An API that trusts no proxy, with the default back-off (30 s, then doubling)."""
    with api_process(tmp_path_factory.mktemp("no-proxy"), {}, _seed) as console:
        yield console


@pytest.fixture(scope="module")
def behind_proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    """An API whose only client is a reverse proxy it is configured to trust."""
    env = {"YIWANG_TRUSTED_PROXIES": f'["{PROXY}"]', "YIWANG_LOGIN_BACKOFF_S": str(BACKOFF_S)}
    with api_process(tmp_path_factory.mktemp("proxy"), env, _seed) as console:
        yield console


def test_forged_forwarded_for_headers_do_not_escape_the_throttle(untrusting: Console) -> None:
    with httpx.Client(base_url=untrusting.base, timeout=10) as attacker:
        answers = Counter(
            sign_in(attacker, "target", f"guess-{i}", forwarded_for=f"198.51.100.{i}").status_code
            for i in range(50)
        )
        assert answers == {401: 5, 429: 45}  # only the free failures reached the password check
        # The throttle holds the real client address, whatever name or header comes next.
        other = sign_in(attacker, "neighbour", "neighbour-pass", forwarded_for="203.0.113.99")
        assert other.status_code == 429 and int(other.headers["Retry-After"]) >= 1


def test_one_account_attacked_behind_a_trusted_proxy_locks_out_nobody_else(behind_proxy: Console) -> None:
    with httpx.Client(base_url=behind_proxy.base, timeout=10) as proxy:
        # The attacker sends a header of their own; the proxy appends the address it saw.
        answers = Counter(
            sign_in(proxy, "target", f"guess-{i}", forwarded_for=f"10.{i}.0.1, 203.0.113.7").status_code
            for i in range(50)
        )
        assert answers == {401: 5, 429: 45}  # held on the attacker's address, not on the forged ones
        held = sign_in(proxy, "neighbour", "neighbour-pass", forwarded_for="203.0.113.7")
        assert held.status_code == 429
        # Another person behind the same proxy signs in to another account.
        colleague = sign_in(proxy, "neighbour", "neighbour-pass", forwarded_for="198.51.100.9")
        assert colleague.status_code == 303, colleague.text[:200]


def test_each_failure_past_the_free_ones_doubles_the_wait(behind_proxy: Console) -> None:
    with httpx.Client(base_url=behind_proxy.base, timeout=10) as client:

        def attempt() -> int:
            return sign_in(client, "typist", "typo", forwarded_for="192.0.2.50").status_code

        assert [attempt() for _ in range(5)] == [401] * 5
        assert attempt() == 429
        time.sleep(BACKOFF_S * 1.3)
        assert attempt() == 401  # the first back-off (1 s) is over; this failure doubles it
        time.sleep(BACKOFF_S * 1.3)
        assert attempt() == 429  # 1.3 s into a 2 s wait
        time.sleep(BACKOFF_S * 1.3)
        assert attempt() == 401
        refused = sign_in(client, "typist", "typo", forwarded_for="192.0.2.50")
        assert refused.status_code == 429 and int(refused.headers["Retry-After"]) in (4, 5)  # 4 s now
