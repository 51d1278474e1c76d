"""Devices in bulk from CSV: every bad line reported with its number, nothing half-applied."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from contract.catalog import load_sensor_types
from registry import version
from registry.csv_devices import MAX_BYTES, CsvImportError, import_devices_csv
from registry.importer import import_communities, read_communities
from registry.rows import from_database
from tests.registry.conftest import CONFIG, YUEHE

TYPES = {p.id for p in load_sensor_types(CONFIG)}
HEADER = "community,id,type,gateway,grid,building,location,lat,lon,datum,installed,state\n"


@pytest.fixture
def seeded(registry_db: Engine) -> Engine:
    import_communities(registry_db, read_communities(CONFIG / "communities"), [YUEHE], TYPES)
    return registry_db


def _devices(db: Engine) -> dict:
    with Session(db) as session:
        return from_database(session)["device"]


def test_good_rows_add_and_update_devices_in_one_version(seeded: Engine) -> None:
    data = (
        HEADER
        + "zhuganxiang,th-0901,env.th@1,gw-01,g-north,b-01,锅炉房,35.41,116.58,,2026-11-30,planned\n"
        + "zhuganxiang,th-0101,env.th@1,gw-01,g-north,b-01,配电室（新）,,,,,maintenance\n"
    ).encode()
    result = import_devices_csv(seeded, data, TYPES)
    assert sorted(c.describe()[0] for c in result.changes) == ["+", "~"]
    assert result.version == 2
    devices = _devices(seeded)
    assert devices[("zhuganxiang", "th-0901")]["state"] == "planned"
    assert devices[("zhuganxiang", "th-0101")]["location"] == "配电室（新）"
    assert devices[("zhuganxiang", "th-0101")]["state"] == "maintenance"


def test_excel_bom_and_gcj02_coordinates(seeded: Engine) -> None:
    data = (
        "\ufeff"
        + HEADER
        + "zhuganxiang,th-0902,env.th@1,gw-01,g-north,,,31.17530398364597,121.531541859215,gcj02,,\n"
    ).encode()
    import_devices_csv(seeded, data, TYPES)
    row = _devices(seeded)[("zhuganxiang", "th-0902")]
    assert row["lat"] == pytest.approx(31.1774276, abs=1e-6)
    assert row["lon"] == pytest.approx(121.5272106, abs=1e-6)


def test_every_bad_line_is_named_and_nothing_is_applied(seeded: Engine) -> None:
    data = (
        HEADER
        + "zhuganxiang,th-0903,env.th@1,gw-01,g-north,,,,,,,\n"  # line 2: good
        + "zhuganxiang,th-0904,air.co9@1,gw-01,g-north,,,,,,,\n"  # 3: unknown type
        + "zhuganxiang,th-0905,env.th@1,gw-77,g-north,,,,,,,\n"  # 4: gateway of no one
        + "zhuganxiang,th-0906,env.th@1,gw-01,g-north,b-05,,,,,,\n"  # 5: building of another grid
        + "zhuganxiang,th-0907,env.th@1,gw-01,g-north,,,95,116.5,,,\n"  # 6: latitude out of range
        + "zhuganxiang,th-0908,env.th@1,gw-01,g-north,,,35.4,,,,\n"  # 7: half a point
        + "zhuganxiang,th-0903,env.th@1,gw-01,g-north,,,,,,,\n"  # 8: duplicate of line 2
        + "elsewhere,th-0909,env.th@1,gw-01,g-north,,,,,,,\n"  # 9: community not registered
        + "zhuganxiang,th 0910,env.th@1,gw-01,g-north,,,,,,,\n"  # 10: not an id
        + "zhuganxiang,th-0911,env.th@1,gw-01,g-north,,,,,,,broken\n"  # 11: not a state
    ).encode()
    with pytest.raises(CsvImportError) as caught:
        import_devices_csv(seeded, data, TYPES)
    problems = caught.value.problems
    lines = sorted({int(p.split(":")[0].removeprefix("line ")) for p in problems})
    assert lines == [3, 4, 5, 6, 7, 8, 9, 10, 11], problems
    joined = "\n".join(problems)
    assert "line 3: type: unknown sensor type 'air.co9@1'" in joined
    assert "line 4: gateway: 'gw-77' is not a gateway of community zhuganxiang" in joined
    assert "line 5: building: 'b-05' is not in grid 'g-north'" in joined
    assert "line 6: lat: " in joined and "outside -90..90" in joined
    assert "line 7: " in joined and "lat and lon come together" in joined
    assert "line 8: id: device th-0903 of zhuganxiang is also on line 2" in joined
    assert "line 9: community: 'elsewhere' is not in the registry" in joined
    assert "line 11: state: " in joined
    assert ("zhuganxiang", "th-0903") not in _devices(seeded)  # the good line was not applied either
    assert version.current(seeded) == 1


def test_a_missing_column_is_named_before_any_row_is_read(seeded: Engine) -> None:
    with pytest.raises(CsvImportError, match="line 1: missing column\\(s\\) gateway"):
        import_devices_csv(seeded, b"community,id,type,grid\nzhuganxiang,x,env.th@1,g-north\n", TYPES)
    with pytest.raises(CsvImportError, match="line 1: unknown column\\(s\\) colour"):
        import_devices_csv(seeded, (HEADER.strip() + ",colour\n").encode(), TYPES)


def test_an_oversized_or_non_utf8_file_is_refused_before_parsing(seeded: Engine) -> None:
    with pytest.raises(CsvImportError, match="at most"):
        import_devices_csv(seeded, b"x" * (MAX_BYTES + 1), TYPES)
    with pytest.raises(CsvImportError, match="not UTF-8 text"):
        import_devices_csv(seeded, HEADER.encode() + "竹竿巷".encode("gbk"), TYPES)


def test_a_dry_run_applies_nothing(seeded: Engine) -> None:
    data = (HEADER + "zhuganxiang,th-0912,env.th@1,gw-01,g-north,,,,,,,\n").encode()
    result = import_devices_csv(seeded, data, TYPES, dry_run=True)
    assert [c.describe()[0] for c in result.changes] == ["+"]
    assert ("zhuganxiang", "th-0912") not in _devices(seeded)
