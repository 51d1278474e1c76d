"""`yiwang rules …` and `yiwang reload`: alert rules and sensor types applied while the platform runs (#28).

`yiwang rules apply FILE` stores a rule file (or one rule) as the next version of its file in the
definitions store; `yiwang reload` (and SIGHUP to a service, ``yiwang.cli.services``) reads ``config/``
into the store again. Every service follows the store and applies a change within seconds. Everything
is checked before anything is stored; every change is written to the audit log.
"""

from __future__ import annotations

import getpass
from collections.abc import Collection
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer

from yiwang.cli.root import app

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from registry.definitions import ReloadResult

rules_app = typer.Typer(no_args_is_help=True, help="Alert rules, applied while the platform runs.")
app.add_typer(rules_app, name="rules")


def definitions_engine() -> Engine:
    """The relational store, with the definitions' and the audit log's tables."""
    from api import audit
    from common.db import make_engine
    from common.settings import ServiceSettings
    from registry import definitions

    db = make_engine(ServiceSettings().database_url)
    definitions.create_schema(db)
    audit.create_schema(db)
    return db


def cli_actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"[:128]
    except (KeyError, OSError):  # no user name for this uid (a container)
        return "cli"


def audit_change(db: Engine, what: str) -> None:
    """A change made from the command line, in the same audit log as the API's writes."""
    from sqlalchemy import insert

    from api.audit import audit_log

    with db.begin() as conn:
        row = {"at": datetime.now(UTC), "actor": cli_actor(), "method": "CLI", "path": what[:512]}
        conn.execute(insert(audit_log).values(**row, status=200, client="local"))


def read_file(path: Path) -> bytes:
    """At most one document's bytes plus one: the size is checked before parsing, not after reading all."""
    from registry.definitions import MAX_DOCUMENT_BYTES

    with path.open("rb") as handle:
        return handle.read(MAX_DOCUMENT_BYTES + 1)


def reload_config(config_dir: Path, db: Engine, author: str) -> ReloadResult:
    """``config/sensor-types`` and ``config/rules`` read into the store: new profile versions added,
    changed rule files stored as their next version. ContractError or DefinitionConflict (nothing
    stored) when anything is wrong."""
    from alerts.rules import config_definitions, rules_of_files
    from cases.policy import CasePolicy
    from registry import definitions

    categories = CasePolicy.load(config_dir, db).categories
    stored = {s.profile.id: s.profile for s in definitions.stored_profiles(db)}
    running = rules_of_files(((f.name, f.document) for f in definitions.rule_files(db)), categories)
    profiles, files = config_definitions(config_dir, categories, stored, running)
    return definitions.reload_from(db, profiles, files, author=author)


@rules_app.command("apply")
def rules_apply(
    file: Annotated[Path, typer.Argument(help="A rule file (rules: [...]) or one rule, YAML or JSON.")],
    name: Annotated[
        str | None, typer.Option("--file-name", help="The rule file to store it as (default: FILE's name).")
    ] = None,
) -> None:
    """Check a rule file completely and store it as the next version; the alert engine runs it within 5 s."""
    from alerts.rules import check_rules, parse_rules, rule_document, rules_of_files, with_rule
    from cases.policy import CasePolicy
    from common.settings import ServiceSettings
    from contract.errors import ContractError
    from registry import definitions
    from registry.live_definitions import load

    config_dir = ServiceSettings().config_dir
    db = definitions_engine()
    try:
        categories = CasePolicy.load(config_dir, db).categories
        _seed(config_dir, db, categories)
        current = load(db)
        files = {f.name: f.document for f in current.rule_files.values()}
        running = rules_of_files(files.items(), categories)
        rules, as_file = parse_rules(definitions.read_document(read_file(file), str(file)), str(file))
        types = current.profiles
        check_rules(
            rules,
            str(file),
            types=types,
            categories=categories,
            running=running,
            prefix="rules" if as_file else "",
        )
        target = name or file.stem
        if as_file:
            document = rule_document(rules)
        else:
            target, document = with_rule(files, rules[0], name or "cli")
        rules_of_files({**files, target: document}.items(), categories)
        stored = definitions.put_rule_file(db, target, document, source=str(file), author=cli_actor())
        if stored is not None:
            audit_change(db, f"yiwang rules apply {file} (rule file {target} version {stored})")
    except (ContractError, OSError) as err:
        _fail("rules apply", str(err))
    finally:
        db.dispose()
    ids = ", ".join(r.id for r in rules)
    if stored is None:
        typer.echo(f"rules apply: rule file {target} already runs this content ({ids})")
    else:
        typer.echo(f"rules apply: rule file {target} version {stored} stored ({ids}); running within 5 s")


@app.command("reload")
def reload() -> None:
    """Read config/ (sensor-types/, rules/) into the running platform; a refused change changes nothing."""
    from common.settings import ServiceSettings
    from contract.errors import ContractError
    from registry.definitions import DefinitionConflict

    config_dir = ServiceSettings().config_dir
    db = definitions_engine()
    try:
        result = reload_config(config_dir, db, cli_actor())
        if result.profiles_added or result.rule_files_changed:
            audit_change(db, f"yiwang reload {config_dir}")
    except (ContractError, DefinitionConflict) as err:
        _fail("reload", str(err))
    finally:
        db.dispose()
    typer.echo(
        f"reload: {len(result.profiles_added)} sensor type(s) added"
        + (f" ({', '.join(result.profiles_added)})" if result.profiles_added else "")
        + f", {len(result.rule_files_changed)} rule file(s) changed"
        + (f" ({', '.join(result.rule_files_changed)})" if result.rule_files_changed else "")
    )


def _seed(config_dir: Path, db: Engine, categories: Collection[str]) -> None:
    """A store never seeded takes config/ first, so a change made here does not hide config's rules."""
    from alerts.rules import config_definitions
    from registry import definitions

    definitions.seed_if_empty(db, *config_definitions(config_dir, categories))


def _fail(command: str, message: str) -> NoReturn:
    typer.echo(f"yiwang {command}: {message}", err=True)
    raise typer.Exit(2)
