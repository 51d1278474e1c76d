"""Files replaced whole: a reader (or a restart after a crash) sees the old file or the new one, never
half of either."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def replace_file(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` atomically: written and fsynced under a temporary name in the same
    directory, then renamed over it. The temporary file is new (O_EXCL, a random name, mode 0600
    whatever the umask), so a leftover or planted file or symlink of that name can neither widen its
    mode nor redirect the write; on any failure it is removed and ``path`` is left as it was."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
