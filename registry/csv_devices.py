"""Devices in bulk from a CSV file: one row per device, every bad row reported, nothing half-applied.

Columns (UTF-8, a header row; a BOM as Excel writes it is accepted):

- required: ``community``, ``id``, ``type`` (``env.th@1``), ``gateway``, ``grid``
- optional: ``building``, ``location``, ``lat``, ``lon`` (WGS-84 unless ``datum`` is ``gcj02``),
  ``datum``, ``installed`` (YYYY-MM-DD), ``state`` (planned, active, maintenance, retired; default active)

A row for a device that exists updates it; the community, gateway, grid and building must already be
in the registry. Errors name the line as a spreadsheet numbers it (the header is line 1).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Collection
from dataclasses import dataclass

from pydantic import ValidationError
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from contract.catalog import Device
from registry.changes import Change, apply, plan
from registry.rows import Key, Row, Rows, from_database

REQUIRED = ("community", "id", "type", "gateway", "grid")
OPTIONAL = ("building", "location", "lat", "lon", "datum", "installed", "state")
MAX_BYTES = 20 * 1024 * 1024  # 100,000 devices at ~200 bytes a row
MAX_ROWS = 100_000


class CsvImportError(ValueError):
    """The file cannot be applied; ``problems`` lists each bad line."""

    def __init__(self, problems: list[str]) -> None:
        more = f" (and {len(problems) - 20} more)" if len(problems) > 20 else ""
        super().__init__("; ".join(problems[:20]) + more)
        self.problems = problems


@dataclass(frozen=True, slots=True)
class CsvResult:
    changes: list[Change]
    version: int | None


def _parse(data: bytes) -> list[tuple[int, dict[str, str]]]:
    if len(data) > MAX_BYTES:
        raise CsvImportError([f"the file is {len(data):,} bytes; at most {MAX_BYTES:,}"])
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise CsvImportError([f"not UTF-8 text (byte {err.start}); save the sheet as CSV UTF-8"]) from err
    reader = csv.DictReader(io.StringIO(text, newline=""))
    header = [h.strip() for h in reader.fieldnames or []]
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        raise CsvImportError([f"line 1: missing column(s) {', '.join(missing)}"])
    unknown = [c for c in header if c not in REQUIRED + OPTIONAL]
    if unknown:
        raise CsvImportError([f"line 1: unknown column(s) {', '.join(unknown)}"])
    reader.fieldnames = header
    rows: list[tuple[int, dict[str, str]]] = []
    for row in reader:
        if len(rows) >= MAX_ROWS:
            raise CsvImportError([f"more than {MAX_ROWS:,} rows; split the file"])
        if None in row:
            rows.append((reader.line_num, {"__extra__": "1"}))
            continue
        rows.append((reader.line_num, {k: (v or "").strip() for k, v in row.items()}))
    return rows


@dataclass(frozen=True, slots=True)
class _Checked:
    key: Key
    values: Row


def _check_row(
    line: int, row: dict[str, str], known_types: Collection[str], stored: Rows
) -> tuple[_Checked | None, list[str]]:
    if "__extra__" in row:
        return None, [f"line {line}: more values than columns"]
    fields = {k: v for k, v in row.items() if v != "" and k in (*OPTIONAL, "id", "type", "grid")}
    try:
        device = Device.model_validate(fields)
    except ValidationError as err:
        return None, [
            f"line {line}: {'.'.join(str(p) for p in e['loc']) or 'row'}: "
            + e["msg"].removeprefix("Value error, ")
            for e in err.errors()
        ]
    community, gateway = row["community"], row["gateway"]
    problems = []
    if (community,) not in stored["community"]:
        problems.append(f"line {line}: community: {community!r} is not in the registry")
    elif (community, gateway) not in stored["gateway"]:
        problems.append(f"line {line}: gateway: {gateway!r} is not a gateway of community {community}")
    if (community, device.grid) not in stored["grid"] and (community,) in stored["community"]:
        problems.append(f"line {line}: grid: {device.grid!r} is not a grid of community {community}")
    if device.building is not None:
        building = stored["building"].get((community, device.building))
        if building is None or building["grid_id"] != device.grid:
            problems.append(f"line {line}: building: {device.building!r} is not in grid {device.grid!r}")
    if device.type not in known_types:
        problems.append(f"line {line}: type: unknown sensor type {device.type!r}")
    values = {
        "type": device.type,
        "gateway_id": gateway,
        "grid_id": device.grid,
        "building_id": device.building,
        "location": device.location,
        "lat": device.lat,
        "lon": device.lon,
        "installed": device.installed,
        "state": device.state.value,
    }
    return _Checked((community, device.id), values), problems


def import_devices_csv(
    db: Engine, data: bytes, known_types: Collection[str], *, dry_run: bool = False
) -> CsvResult:
    """Check every row, then add or update the devices in one transaction; CsvImportError otherwise."""
    parsed = _parse(data)
    with Session(db) as session, session.begin():
        stored = from_database(session, sorted({r.get("community", "") for _, r in parsed}))
        problems: list[str] = []
        desired: dict[Key, Row] = {}
        first_line: dict[Key, int] = {}
        for line, row in parsed:
            checked, row_problems = _check_row(line, row, known_types, stored)
            problems += row_problems
            if checked is None:
                continue
            key = checked.key
            if key in first_line:
                problems.append(
                    f"line {line}: id: device {key[1]} of {key[0]} is also on line {first_line[key]}"
                )
                continue
            first_line[key] = line
            desired[key] = checked.values
        if problems:
            raise CsvImportError(problems)
        if not parsed:
            raise CsvImportError(["the file has a header and no devices"])
        wanted = {**stored, "device": {**stored["device"], **desired}}
        changes = plan(stored, wanted)
        if dry_run:
            session.rollback()
            return CsvResult(changes, None)
        return CsvResult(changes, apply(session, changes))
