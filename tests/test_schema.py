from pathlib import Path

from yiwang.schema import create_all, fingerprint, reset_demo_database_if_outdated


def test_demo_database_of_an_older_schema_is_moved_aside_once(tmp_path: Path) -> None:
    url, marker = f"sqlite:///{tmp_path}/yiwang.db", tmp_path / "schema-version"
    create_all(url)
    assert reset_demo_database_if_outdated(url, marker)  # no marker: made by an unknown (older) version
    assert (tmp_path / "yiwang.db.old").exists() and not (tmp_path / "yiwang.db").exists()
    assert marker.read_text().strip() == fingerprint()
    create_all(url)
    assert not reset_demo_database_if_outdated(url, marker)  # same schema: kept
    assert (tmp_path / "yiwang.db").exists()
    marker.write_text("0000000000000000\n")
    assert reset_demo_database_if_outdated(url, marker)


def test_a_fresh_directory_needs_no_reset(tmp_path: Path) -> None:
    assert not reset_demo_database_if_outdated(f"sqlite:///{tmp_path}/none.db", tmp_path / "v")
