"""Tables as CSV and XLSX files: one header row of words, then typed cells.

CSV: UTF-8 with a byte-order mark (so a spreadsheet opens the Chinese right); a text cell a spreadsheet
would read as a formula (= + - @, or a tab or carriage return first) is prefixed with ``'``. XLSX:
numbers are numbers, times are local times with a date format, rates carry a percent format, and every
text is written as text, never as a formula.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Literal

import xlsxwriter  # type: ignore[import-untyped]

Cell = str | int | float | datetime | None
Kind = Literal["text", "int", "rate", "number", "time"]
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True, slots=True)
class Column:
    header: str
    kind: Kind = "text"


@dataclass(frozen=True, slots=True)
class Table:
    title: str  # the sheet's name
    columns: Sequence[Column]
    rows: Iterable[Sequence[Cell]]


def guard(text: str) -> str:
    """A text a spreadsheet will not run as a formula."""
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def _text(value: Cell, tz: tzinfo) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, str):
        return guard(value)
    return str(value)


def to_csv(table: Table, tz: tzinfo) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([guard(c.header) for c in table.columns])
    for row in table.rows:
        writer.writerow([_text(value, tz) for value in row])
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def to_xlsx(table: Table, tz: tzinfo) -> bytes:
    out = io.BytesIO()
    # in_memory: no temporary files; strings_to_formulas off as a second lock on the formula door.
    book = xlsxwriter.Workbook(
        out, {"in_memory": True, "strings_to_formulas": False, "strings_to_urls": False}
    )
    sheet = book.add_worksheet(table.title[:31])
    bold = book.add_format({"bold": True, "bg_color": "#EEF3F8", "border": 1})
    formats = {
        "time": book.add_format({"num_format": "yyyy-mm-dd hh:mm:ss"}),
        "rate": book.add_format({"num_format": "0.0%"}),
        "number": book.add_format({"num_format": "0.00"}),
    }
    for col, column in enumerate(table.columns):
        sheet.write_string(0, col, column.header, bold)
        sheet.set_column(col, col, 20 if column.kind == "time" else max(10, min(40, len(column.header) * 2)))
    sheet.freeze_panes(1, 0)
    for r, row in enumerate(table.rows, start=1):
        for col, (column, value) in enumerate(zip(table.columns, row, strict=True)):
            if value is None:
                sheet.write_blank(r, col, None)
            elif isinstance(value, datetime):
                local = value.astimezone(tz).replace(tzinfo=None)
                sheet.write_datetime(r, col, local, formats["time"])
            elif isinstance(value, int | float) and not isinstance(value, bool):
                sheet.write_number(r, col, value, formats.get(column.kind))
            else:
                sheet.write_string(r, col, str(value))
    book.close()
    return out.getvalue()
