"""The monthly report as HTML (print CSS: A4, page numbers, tables that do not split a row) and as PDF
through WeasyPrint. Charts are inline SVG markup — no script, so the console's CSP holds.

The PDF's text is Chinese as well as Latin: the stylesheet names the Noto CJK fonts (the image installs
them); WeasyPrint embeds the subset it uses.
"""

from __future__ import annotations

from datetime import tzinfo
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape

from api.console.i18n import catalogue
from api.reports.monthly import MonthlyReport

TEMPLATES = Path(__file__).resolve().parent / "templates"
_env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html"]))


def percent(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.1f}%"


def change(now: float | None, before: float | None) -> str:
    """The change in percentage points, signed; a dash when either side has no figure."""
    if now is None or before is None:
        return "—"
    return f"{(now - before) * 100:+.1f} pp"


def rating(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}"


_env.filters.update(percent=percent, rating=rating)
_env.globals.update(change=change)


def report_html(report: MonthlyReport, lang: str, tz: tzinfo) -> str:
    context: dict[str, Any] = {**catalogue(lang), "lang": lang, "r": report, "tz": tz}
    return _env.get_template("monthly.html").render(context)


def report_pdf(html: str) -> bytes:
    """The HTML as a PDF. WeasyPrint is imported here: it loads pango at import, and only this needs it."""
    from weasyprint import HTML  # type: ignore[import-untyped]  # pango loads at import: only the PDF needs it

    pdf: bytes = HTML(string=html, url_fetcher=_fetch_nothing).write_pdf()
    return pdf


def _fetch_nothing(url: str) -> dict[str, Any]:
    """The report is self-contained: it never makes the server fetch a URL (or read a file) for it."""
    raise ValueError(f"the report fetches nothing ({url[:80]})")
