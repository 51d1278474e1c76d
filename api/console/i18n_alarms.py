"""Alarms (acknowledge, history, silences form, rules in words) and cases opened by hand: words in
简体中文 and English, merged into the console's catalogue
(``api/console/i18n.py``)."""

from __future__ import annotations

ALARM_TEXT: dict[str, dict[str, str]] = {
    "zh": {},
    "en": {},
}
