"""`kill -HUP` on `yiwang up` reaches the services that re-read their configuration (the API reads
config/ into the definitions store, and ingest and alerts follow it): the supervisor passes SIGHUP on to
the children marked for it and to no other — a child without a handler would die of it."""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.platform import wait_for
from yiwang.supervisor import Child, Supervisor

# A child that writes "hup" to a file on SIGHUP and otherwise sleeps; the default SIGHUP action (die)
# is kept in the other child, so a wrongly forwarded signal shows as a dead process.
RELOADS = (
    "import pathlib, signal, sys, time\n"
    "out = pathlib.Path(sys.argv[1])\n"
    "signal.signal(signal.SIGHUP, lambda *_: out.write_text(out.read_text() + 'hup\\n'))\n"
    "out.write_text('')\n"
    "while True: time.sleep(0.05)\n"
)
PLAIN = "import time\nwhile True: time.sleep(0.05)\n"


@pytest.fixture
def supervisor() -> Iterator[Supervisor]:
    handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    running = Supervisor(dict(os.environ))
    try:
        yield running
    finally:
        running.stop_all()
        for signum, handler in handlers.items():
            signal.signal(signum, handler)


def test_sighup_reaches_the_reloading_child_only(supervisor: Supervisor, tmp_path: Path) -> None:
    seen = tmp_path / "hups"
    supervisor.start(Child("api", [sys.executable, "-c", RELOADS, str(seen)], reloads_on_hup=True))
    supervisor.start(Child("ingest", [sys.executable, "-c", PLAIN]))
    wait_for(seen.exists, 10, "the reloading child to install its handler")
    supervisor.install_signal_handlers()

    os.kill(os.getpid(), signal.SIGHUP)
    wait_for(lambda: seen.read_text() == "hup\n", 10, "the child to receive SIGHUP")
    os.kill(os.getpid(), signal.SIGHUP)
    wait_for(lambda: seen.read_text() == "hup\nhup\n", 10, "a second SIGHUP to arrive too")

    plain = supervisor.children[1].proc
    assert plain is not None and plain.poll() is None, "SIGHUP reached a child not marked for it"
    assert [c.name for c in supervisor.hangup_children()] == ["api"]
