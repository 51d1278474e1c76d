"""Tables for return visits (回访) and in-app notifications (#22)."""

from __future__ import annotations

from common.db import Base

# Every model declared here, for cases/schema.py (tables are created from this list).
MODELS: tuple[type[Base], ...] = ()
