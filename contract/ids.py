"""Identifier rules shared by topics, payloads and configuration."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import StringConstraints

MAX_ID_LENGTH = 64
"""Longest community, gateway, grid or device id: a cheap check before any pattern or lookup."""
ID_PATTERN = r"^[a-z0-9-]{1,64}$"
ID_RE = re.compile(ID_PATTERN)
FIELD_PATTERN = r"^[a-z][a-z0-9_]{0,63}$"
KIND_PATTERN = r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*){1,3}$"
SENSOR_TYPE_PATTERN = r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*@[1-9][0-9]{0,3}$"

Id = Annotated[str, StringConstraints(pattern=ID_PATTERN)]
"""Community, gateway, grid, building and device ids: lowercase letters, digits and dashes."""

FieldName = Annotated[str, StringConstraints(pattern=FIELD_PATTERN)]
SensorTypeRef = Annotated[str, StringConstraints(pattern=SENSOR_TYPE_PATTERN)]
"""A versioned sensor type such as ``env.th@1``."""
