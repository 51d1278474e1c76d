"""The residents' reporting and status pages: words in 简体中文 and English,
merged into the console's catalogue (``api/console/i18n.py``)."""

from __future__ import annotations

PUBLIC_TEXT: dict[str, dict[str, str]] = {
    "zh": {},
    "en": {},
}
