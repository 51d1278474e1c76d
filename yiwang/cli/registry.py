"""`yiwang registry import|export|import-csv`: the district's places and devices, seeded from files."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from yiwang.cli.root import app

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from registry.changes import Change

registry_app = typer.Typer(no_args_is_help=True, help="The registry of towns, communities and devices.")
app.add_typer(registry_app, name="registry")


def _engine() -> Engine:
    from common.db import create_tables, make_engine
    from common.settings import ServiceSettings
    from registry.models import TABLES
    from yiwang.schema import METADATA

    db = make_engine(ServiceSettings().database_url)
    create_tables(db, METADATA[0], tables=list(TABLES))
    return db


def _print_changes(changes: list[Change], *, dry_run: bool, version: int | None) -> None:
    for change in changes:
        typer.echo(change.describe())
    if not changes:
        typer.echo("registry: nothing to change")
    elif dry_run:
        typer.echo(f"registry: {len(changes)} change(s) shown; nothing applied (--dry-run)")
    else:
        typer.echo(f"registry: {len(changes)} change(s) applied; registry version {version}")


@registry_app.command("import")
def registry_import(
    directory: Annotated[
        Path, typer.Argument(help="A directory of community files, e.g. config/communities/.")
    ] = Path("config/communities"),
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show the changes, apply nothing.")] = False,
) -> None:
    """Make the registry match the community files: the changes are printed, then applied together."""
    from cases.organisation import load_organisation
    from common.settings import ServiceSettings
    from contract.catalog import load_sensor_types
    from contract.errors import ContractError
    from registry.importer import import_communities, read_communities
    from registry.rows import Town

    config_dir = ServiceSettings().config_dir
    try:
        communities = read_communities(directory)
        organisation = load_organisation(config_dir)
        types = {p.id for p in load_sensor_types(config_dir)}
        towns = [
            Town(t.id, t.name, organisation.district.name, tuple(t.communities)) for t in organisation.towns
        ]
        db = _engine()
        try:
            result = import_communities(db, communities, towns, types, dry_run=dry_run)
        finally:
            db.dispose()
    except ContractError as err:
        typer.echo(f"yiwang registry import: {err}", err=True)
        raise typer.Exit(2) from err
    _print_changes(result.changes, dry_run=dry_run, version=result.version)


@registry_app.command("export")
def registry_export(
    out: Annotated[Path, typer.Option(help="Where the community files are written.")] = Path(
        "registry-export"
    ),
) -> None:
    """Write every community of the registry as a file in the format `import` reads."""
    from sqlalchemy.orm import Session

    from registry.export import export
    from registry.rows import from_database

    db = _engine()
    try:
        with Session(db) as session:
            rows = from_database(session)
    finally:
        db.dispose()
    for path in export(rows, out):
        typer.echo(f"registry export: {path}")


@registry_app.command("import-csv")
def registry_import_csv(
    file: Annotated[Path, typer.Argument(help="Devices, one per row (columns: see docs/registry.md).")],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Check and show, apply nothing.")] = False,
) -> None:
    """Add or update devices from a CSV file; every bad line is reported and nothing is applied."""
    from common.settings import ServiceSettings
    from contract.catalog import load_sensor_types
    from registry.csv_devices import MAX_BYTES, CsvImportError, import_devices_csv

    types = {p.id for p in load_sensor_types(ServiceSettings().config_dir)}
    try:
        with file.open("rb") as handle:
            data = handle.read(MAX_BYTES + 1)  # the limit is checked before parsing, not after reading all
    except OSError as err:
        typer.echo(f"yiwang registry import-csv: {file}: {err.strerror}", err=True)
        raise typer.Exit(2) from err
    db = _engine()
    try:
        result = import_devices_csv(db, data, types, dry_run=dry_run)
    except CsvImportError as err:
        for problem in err.problems:
            typer.echo(f"{file}: {problem}", err=True)
        typer.echo(f"yiwang registry import-csv: {len(err.problems)} problem(s); nothing applied", err=True)
        raise typer.Exit(2) from err
    finally:
        db.dispose()
    _print_changes(result.changes, dry_run=dry_run, version=result.version)
