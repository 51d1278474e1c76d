"""Secret files (passwords, tokens, credentials) written whole and readable by their owner only."""

from __future__ import annotations

from pathlib import Path

from common.atomic_files import replace_file


def write_private(path: Path, text: str) -> None:
    """Replace ``path`` atomically with ``text``, readable by its owner only (mode 0600) from birth."""
    # A half-written password file would lock every gateway out at Mosquitto's next reload; the
    # temporary file replace_file writes is born 0600, so the secret is never readable by others.
    replace_file(path, text.encode("utf-8"))
