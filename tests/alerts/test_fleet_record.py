"""Each device's last report, recorded by the alert service in one upsert (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Engine, event, select
from sqlalchemy.orm import Session

from alerts.fleet import DeviceStatus, device_last_seen, record_devices

T = 1_780_000_000_000


def test_devices_are_inserted_then_updated_in_place(db: Engine) -> None:
    record_devices(db, {("c1", "d1"): T, ("c1", "d2"): T + 1000})
    record_devices(db, {("c1", "d1"): T + 5000, ("c2", "d1"): T + 7000})
    assert device_last_seen(db) == {
        ("c1", "d1"): datetime.fromtimestamp((T + 5000) / 1000, UTC),
        ("c1", "d2"): datetime.fromtimestamp((T + 1000) / 1000, UTC),
        ("c2", "d1"): datetime.fromtimestamp((T + 7000) / 1000, UTC),
    }
    with Session(db) as session:
        assert len(session.scalars(select(DeviceStatus)).all()) == 3


def test_a_thousand_devices_are_one_statement_not_a_read_per_device(db: Engine) -> None:
    statements: list[str] = []

    def count(*args: object) -> None:
        statements.append(str(args[2]))

    reported = {("c1", f"d{i:04d}"): T + i for i in range(1_000)}
    record_devices(db, reported)  # inserts
    event.listen(db, "before_cursor_execute", count)
    try:
        record_devices(db, {key: ms + 60_000 for key, ms in reported.items()})  # updates
    finally:
        event.remove(db, "before_cursor_execute", count)
    writes = [s for s in statements if s.lstrip().upper().startswith(("INSERT", "UPDATE", "SELECT"))]
    assert len(writes) == 1, writes[:3]
    seen = device_last_seen(db)
    assert len(seen) == 1_000
    assert seen[("c1", "d0999")] == datetime.fromtimestamp((T + 999 + 60_000) / 1000, UTC)


def test_nothing_reported_writes_nothing(db: Engine) -> None:
    record_devices(db, {})
    assert device_last_seen(db) == {}
