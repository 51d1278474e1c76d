"""`yiwang types …`: sensor-type profiles checked against the wire before a device is deployed."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer

from yiwang.cli.root import app

if TYPE_CHECKING:
    from contract.profiles import SensorTypeProfile

types_app = typer.Typer(no_args_is_help=True, help="Sensor-type profiles (config/sensor-types/*.yaml).")
app.add_typer(types_app, name="types")

_PROFILE_ID = re.compile(r"^[a-z][a-z0-9_.-]*@\d+$")


@types_app.command("test")
def types_test(
    profile: Annotated[str, typer.Argument(help="A profile file, or a sensor type such as env.th@1.")],
    modbus_response: Annotated[
        str | None,
        typer.Option("--modbus-response", help="A captured read response in hex (RTU, TCP or bare PDU)."),
    ] = None,
    start: Annotated[
        int | None,
        typer.Option("--start", min=0, max=65535, help="First register of the response, if not planned."),
    ] = None,
    line: Annotated[
        str | None, typer.Option("--line", help="One captured line of a serial-line device.")
    ] = None,
    config_dir: Annotated[
        Path, typer.Option("--config-dir", help="Where sensor-types/ lives, for a type given by id.")
    ] = Path("config"),
) -> None:
    """Decode a captured answer with the profile and print every field, its unit, range check and source."""
    from contract.errors import ContractError
    from edge.sources.capture import CaptureError, decode_line_capture, decode_modbus_capture, parse_hex

    if (modbus_response is None) == (line is None):
        _fail("give exactly one of --modbus-response HEX or --line TEXT")
    try:
        loaded = _load(profile, config_dir)
        if modbus_response is not None:
            capture = decode_modbus_capture(loaded, parse_hex(modbus_response), start=start)
        else:
            assert line is not None
            capture = decode_line_capture(loaded, line)
    except (ContractError, CaptureError) as err:
        _fail(str(err))
    typer.echo(capture.heading)
    rows = [
        (
            f.name,
            "—" if f.value is None else f"{_shown(f.value)} {f.unit}".rstrip(),
            {True: "in range", False: "OUT OF RANGE", None: "no value"}[f.in_range] + f" ({f.valid_range})",
            f.source + (f"; {f.problem}" if f.problem else ""),
        )
        for f in capture.fields
    ]
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    for row in rows:
        typer.echo(
            "  " + "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=False)) + "  " + row[3]
        )
    if any(f.in_range is False for f in capture.fields):
        raise typer.Exit(1)


def _shown(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return str(round(value, 9))  # 100.10000000000001 from scale 0.1 reads as 100.1
    return str(value)


def _load(profile: str, config_dir: Path) -> SensorTypeProfile:
    from contract.catalog import load_model
    from contract.errors import ContractError
    from contract.profiles import SensorTypeProfile
    from edge.sources.build import load_profiles

    path = Path(profile)
    if path.is_file():
        return load_model(SensorTypeProfile, path)
    if _PROFILE_ID.match(profile):
        found = load_profiles(config_dir)
        if profile in found:
            return found[profile].profile
        known = ", ".join(sorted(found)) or "none"
        raise ContractError(f"no sensor type {profile} in {config_dir / 'sensor-types'} (known: {known})")
    raise ContractError(f"no profile file {profile}")


def _fail(message: str, command: str = "test") -> NoReturn:
    typer.echo(f"yiwang types {command}: {message}", err=True)
    raise typer.Exit(2)


@types_app.command("add")
def types_add(
    file: Annotated[Path, typer.Argument(help="A sensor-type profile, YAML or JSON (id: name@N).")],
) -> None:
    """Check a profile completely and store it as a new version; every service runs it within 5 s."""
    from contract.errors import ContractError
    from registry import definitions
    from registry.definitions import DefinitionConflict
    from yiwang.cli.rules import audit_change, cli_actor, definitions_engine, read_file

    db = definitions_engine()
    try:
        profile = definitions.parse_profile(read_file(file), str(file))
        if not definitions.stored_profiles(db):  # never seeded: config/'s types first, so none is hidden
            from common.settings import ServiceSettings
            from contract.catalog import load_model
            from contract.profiles import SensorTypeProfile as Profile

            paths = sorted((ServiceSettings().config_dir / "sensor-types").glob("*.yaml"))
            definitions.seed_if_empty(db, [(str(p), load_model(Profile, p)) for p in paths], None)
        definitions.check_profiles_fit(db, [(str(file), profile)])
        stored = definitions.add_profile(db, profile, source=str(file), author=cli_actor())
        if stored:
            audit_change(db, f"yiwang types add {file} ({profile.id})")
    except (ContractError, DefinitionConflict) as err:
        _fail(str(err), "add")
    except OSError as err:
        _fail(f"{file}: {err.strerror}", "add")
    finally:
        db.dispose()
    typer.echo(
        f"types add: {profile.id} stored; running within 5 s"
        if stored
        else f"types add: {profile.id} is already stored with this content"
    )
