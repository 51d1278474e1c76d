"""The case page's live timeline, conflicts explained and camera evidence: words in 简体中文 and
English, merged into the console's catalogue
(``api/console/i18n.py``)."""

from __future__ import annotations

CASE_PAGE_TEXT: dict[str, dict[str, str]] = {
    "zh": {},
    "en": {},
}
