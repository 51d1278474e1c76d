"""Make the running broker reread the accounts after a change, so nobody sends it a signal by hand.

Mosquitto rereads ``password_file`` and ``acl_file`` on SIGHUP and never by itself. The Mosquitto to
signal is found the way an operator would: a ``mosquitto`` process on this machine whose configuration
(``-c FILE``, and the files of its ``include_dir``) names this password file. That covers ``yiwang
up``, ``yiwang broker`` and a Mosquitto started by systemd, without a pid file each would have to
agree on. The embedded broker needs nothing: it reads the password file at every login.

A broker in a container or on another host is not visible here; :class:`Reload` says so, and what to
run instead.
"""

from __future__ import annotations

import os
import signal
from dataclasses import dataclass, field
from pathlib import Path

PROC = Path("/proc")
MAX_CONFIG_BYTES = 1 << 20  # a Mosquitto configuration is a few kilobytes; refuse to read a huge file


@dataclass(frozen=True, slots=True)
class Reload:
    """What happened to the brokers reading one password file."""

    signalled: list[int] = field(default_factory=list)
    """Mosquitto processes sent SIGHUP."""
    refused: list[int] = field(default_factory=list)
    """Mosquitto processes reading the file that this user may not signal (another user's broker)."""

    def describe(self, password_file: Path) -> str:
        if self.refused:
            pids = ", ".join(map(str, self.refused))
            return (
                f"Mosquitto (pid {pids}) reads {password_file} but runs as another user: "
                "reload it yourself (sudo systemctl reload mosquitto)"
            )
        if self.signalled:
            pids = ", ".join(map(str, self.signalled))
            return f"Mosquitto (pid {pids}) reloaded its accounts"
        return (
            f"no Mosquitto on this machine reads {password_file}: the embedded broker reads it at every "
            "login; a broker elsewhere needs a reload (docker compose kill -s SIGHUP mosquitto)"
        )


def _config_lines(path: Path) -> list[str]:
    try:
        if path.stat().st_size > MAX_CONFIG_BYTES:
            return []
        return path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return []


def password_files(config: Path, cwd: Path) -> set[Path]:
    """The password files a Mosquitto configuration names (relative paths as Mosquitto resolves them)."""
    found: set[Path] = set()
    files, seen = [config], set()
    while files:
        current = files.pop()
        if current in seen:
            continue
        seen.add(current)
        for line in _config_lines(current):
            key, _, value = line.strip().partition(" ")
            value = value.strip()
            if key == "password_file" and value:
                found.add((cwd / value).resolve())
            elif key == "include_dir" and value:
                with_dir = cwd / value
                if with_dir.is_dir():
                    files += sorted(with_dir.glob("*.conf"))
    return found


def _config_of(argv: list[str]) -> str | None:
    for flag in ("-c", "--config-file"):
        if flag in argv[:-1]:
            return argv[argv.index(flag) + 1]
    return None


def mosquitto_readers(password_file: Path) -> list[int]:
    """Pids of the Mosquitto processes of this machine whose configuration names ``password_file``."""
    target = password_file.resolve()
    pids = []
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = [a.decode(errors="replace") for a in (entry / "cmdline").read_bytes().split(b"\0") if a]
            if not argv or Path(argv[0]).name != "mosquitto":
                continue
            config = _config_of(argv)
        except OSError:  # gone meanwhile
            continue
        try:
            cwd = Path(os.readlink(entry / "cwd"))
        except OSError:  # another user's broker: its absolute paths still say which file it reads
            cwd = Path("/")
        if config is not None and target in password_files(cwd / config, cwd):
            pids.append(int(entry.name))
    return pids


def reload_brokers(password_file: Path) -> Reload:
    """SIGHUP to every Mosquitto of this machine reading ``password_file``."""
    done = Reload()
    for pid in mosquitto_readers(password_file):
        try:
            os.kill(pid, signal.SIGHUP)
        except PermissionError:
            done.refused.append(pid)
        except ProcessLookupError:
            continue
        else:
            done.signalled.append(pid)
    return done
