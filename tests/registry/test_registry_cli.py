"""`yiwang registry import|export|import-csv` as an operator types them."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from tests.registry.conftest import CONFIG
from yiwang.cli import app


def test_import_dry_run_then_import_then_export_round_trip(tmp_path: Path) -> None:
    env = {"YIWANG_DATABASE_URL": f"sqlite:///{tmp_path}/y.db", "YIWANG_CONFIG_DIR": str(CONFIG)}
    runner = CliRunner()
    dry = runner.invoke(app, ["registry", "import", str(CONFIG / "communities"), "--dry-run"], env=env)
    assert dry.exit_code == 0, dry.output
    assert "+ device zhuganxiang/th-0101 (type env.th@1" in dry.output
    assert "nothing applied (--dry-run)" in dry.output
    done = runner.invoke(app, ["registry", "import", str(CONFIG / "communities")], env=env)
    assert "applied; registry version 1" in done.output
    exported = runner.invoke(app, ["registry", "export", "--out", str(tmp_path / "out")], env=env)
    assert exported.exit_code == 0, exported.output
    again = runner.invoke(app, ["registry", "import", str(tmp_path / "out")], env=env)
    assert again.exit_code == 0 and "registry: nothing to change" in again.output


def test_a_bad_csv_lists_its_lines_and_exits_2(tmp_path: Path) -> None:
    env = {"YIWANG_DATABASE_URL": f"sqlite:///{tmp_path}/y.db", "YIWANG_CONFIG_DIR": str(CONFIG)}
    runner = CliRunner()
    runner.invoke(app, ["registry", "import", str(CONFIG / "communities")], env=env)
    sheet = tmp_path / "devices.csv"
    sheet.write_text(
        "community,id,type,gateway,grid\nzhuganxiang,sm-0999,smoke@9,gw-01,g-north\n", encoding="utf-8"
    )
    result = runner.invoke(app, ["registry", "import-csv", str(sheet)], env=env)
    assert result.exit_code == 2
    assert "devices.csv: line 2: type: unknown sensor type 'smoke@9'" in result.output
    assert "1 problem(s); nothing applied" in result.output


def test_an_unreadable_directory_is_a_clear_error(tmp_path: Path) -> None:
    env = {"YIWANG_DATABASE_URL": f"sqlite:///{tmp_path}/y.db", "YIWANG_CONFIG_DIR": str(CONFIG)}
    result = CliRunner().invoke(app, ["registry", "import", str(tmp_path / "none")], env=env)
    assert result.exit_code == 2
    assert "no community files (*.yaml) here" in result.output
