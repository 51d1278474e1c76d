"""The console's live-update stream against the real API process: it tells a user about their own
jurisdiction's cases only, a user holds a few streams at most, and an ended session streams nothing."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime

import httpx
import pytest

from api import accounts
from common.db import make_engine
from tests.factories import open_flooding_cases
from tests.platform import wait_for
from tests.security.conftest import Console, api_process
from tests.security.test_sessions import copy_of, sign_in

pytestmark = pytest.mark.e2e
STREAM = "/console/stream"


def _seed(database_url: str) -> None:
    db = make_engine(database_url)
    accounts.create_user(db, "wang.wei", "yuehe-pass", role="town_operator", town="yuehe")
    # The operator of another town: 竹竿巷 (zhuganxiang) is not theirs.
    accounts.create_user(db, "zhao.lei", "xinhe-pass", role="town_operator", town="xinhe")
    accounts.create_user(db, "tabs", "tabs-pass", role="district_operator")
    accounts.create_user(db, "leaver", "leaver-pass", role="district_operator")
    db.dispose()


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    with api_process(tmp_path_factory.mktemp("streams"), {}, _seed) as console:
        yield console


@contextmanager
def signed_in(console: Console, username: str, password: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=console.base, timeout=httpx.Timeout(10, read=90)) as client:
        assert sign_in(client, username, password).status_code == 303
        yield client


class Listener:
    """Reads one stream in the background and keeps every line it sends."""

    def __init__(self, client: httpx.Client) -> None:
        self.lines: list[str] = []
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._read, args=(client,), daemon=True)
        self._thread.start()
        assert self._ready.wait(10), "the stream did not open"

    def _read(self, client: httpx.Client) -> None:
        try:
            with client.stream("GET", STREAM) as answer:
                if answer.status_code != 200:
                    return
                for line in answer.iter_lines():
                    self.lines.append(line)
                    self._ready.set()
        except httpx.HTTPError:
            return  # the test closed its client: the stream is over

    def changes(self) -> list[str]:
        return [line for line in self.lines if line.startswith("event: change")]


def test_a_town_operator_hears_nothing_of_another_towns_cases(console: Console) -> None:
    with (
        signed_in(console, "zhao.lei", "xinhe-pass") as other,
        signed_in(console, "wang.wei", "yuehe-pass") as own,
    ):
        stranger, owner = Listener(other), Listener(own)
        open_flooding_cases(console.database_url, [datetime.now(UTC)])  # in 竹竿巷, town yuehe
        wait_for(owner.changes, 10, "the owning town's stream to report the new case")
        time.sleep(3)  # the other town's stream polls every second: give it the same chance
        assert stranger.changes() == [], stranger.lines


def test_a_fifth_stream_of_one_user_is_refused(console: Console) -> None:
    with ExitStack() as tabs:
        client = tabs.enter_context(signed_in(console, "tabs", "tabs-pass"))
        opened = [tabs.enter_context(client.stream("GET", STREAM)) for _ in range(4)]
        assert [answer.status_code for answer in opened] == [200] * 4
        fifth = client.get(STREAM)
        assert fifth.status_code == 429, fifth.text[:200]
        assert "too many" in fifth.text
    # The tabs are closed: their slots come free once the server notices.
    with signed_in(console, "tabs", "tabs-pass") as client:

        def opens() -> bool:
            with client.stream("GET", STREAM) as answer:
                return answer.status_code == 200

        wait_for(opens, 10, "a stream to open again after the others closed", interval=0.5)


def test_an_ended_session_gets_no_stream(console: Console) -> None:
    with signed_in(console, "leaver", "leaver-pass") as leaver, copy_of(leaver) as thief:
        with thief.stream("GET", STREAM) as answer:
            assert answer.status_code == 200  # the copy streams while the session lives
        leaver.post("/console/logout")
        assert thief.get(STREAM).status_code == 401
