"""Return visits and in-app notifications: words in 简体中文 and English, merged into the console's catalogue
(``api/console/i18n.py``)."""

from __future__ import annotations

VISIT_TEXT: dict[str, dict[str, str]] = {
    "zh": {},
    "en": {},
}
