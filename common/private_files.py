"""Secret files (passwords, tokens, credentials) written whole and readable by their owner only."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def write_private(path: Path, text: str) -> None:
    """Replace ``path`` atomically with ``text``, readable by its owner only (mode 0600) from birth."""
    # A half-written password file would lock every gateway out at Mosquitto's next reload. The
    # temporary file is new (O_EXCL, a random name, 0600 whatever the umask): a leftover or planted
    # file or symlink of that name can neither widen its mode nor redirect the secret.
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
