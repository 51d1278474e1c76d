"""Signed releases for the upgrade tests, made the way `yiwang release add` makes them."""

from __future__ import annotations

from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from yiwang.cli.release import add_release


def wheel_dir(directory: Path, version: str, extra: dict[str, bytes] | None = None) -> Path:
    """A directory with a (fake) yiwang wheel of ``version`` and dependency wheels."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / f"yiwang-{version}-py3-none-any.whl").write_bytes(f"wheel {version} ".encode() * 5000)
    for name, data in (extra or {"paho_mqtt-2.2.0-py3-none-any.whl": b"dependency " * 3000}).items():
        (directory / name).write_bytes(data)
    return directory


def make_release(store: Path, version: str, key: Ed25519PrivateKey, work: Path) -> Path:
    add_release(wheel_dir(work / f"dist-{version}", version), key, store)
    return store / version
