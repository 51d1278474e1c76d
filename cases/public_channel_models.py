"""Tables for public reporting channels: per-channel keys (#22)."""

from __future__ import annotations

from common.db import Base

# Every model declared here, for cases/schema.py (tables are created from this list).
MODELS: tuple[type[Base], ...] = ()
