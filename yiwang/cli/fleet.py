"""`yiwang fleet …`: the agent version each gateway should run, rolled out canary first (#25).

    yiwang fleet upgrade --version 0.2.0 --canary gw-01      # the canary first
    yiwang fleet status                                      # watch it report 0.2.0
    yiwang fleet upgrade --version 0.2.0 --percent 25        # then a quarter, or
    yiwang fleet upgrade --version 0.2.0 --all               # everyone

The command writes the desired versions to the database; the API process publishes them retained to
each gateway and stops the rollout by itself when a gateway rolls back (docs/upgrades.md).
"""

from __future__ import annotations

import getpass
import json
from typing import TYPE_CHECKING, Annotated

import typer

from yiwang.cli.root import app

if TYPE_CHECKING:
    from sqlalchemy import Engine

fleet_app = typer.Typer(no_args_is_help=True, help="Agent versions across gateways: canary first.")
app.add_typer(fleet_app, name="fleet")


def _engine() -> Engine:
    from alerts.schema import create_schema as create_alert_schema
    from common.db import Base, create_tables, make_engine
    from common.settings import ServiceSettings
    from registry.models import TABLES
    from registry.rollout_models import ensure_tables

    db = make_engine(ServiceSettings().database_url)
    create_tables(db, Base.metadata, tables=list(TABLES))
    create_alert_schema(db)
    ensure_tables(db)
    return db


@fleet_app.command("upgrade")
def fleet_upgrade(
    version: Annotated[str, typer.Option("--version", help="The release to run, e.g. 0.2.0.")],
    canary: Annotated[
        list[str] | None, typer.Option(help="A canary gateway (gw-01 or community/gw-01); repeatable.")
    ] = None,
    all_: Annotated[bool, typer.Option("--all", help="Every gateway, once the canaries run it.")] = False,
    percent: Annotated[
        int | None, typer.Option(min=1, max=100, help="This share of the gateways, once the canaries run it.")
    ] = None,
    community: Annotated[str | None, typer.Option(help="Only the gateways of this community.")] = None,
) -> None:
    """Start a rollout on canaries, or widen it once every canary reports the version running."""
    from sqlalchemy.orm import Session

    from alerts.fleet import gateway_states
    from registry.rollouts import RolloutError, evaluate, start_canary, widen

    if sum((bool(canary), all_, percent is not None)) != 1:
        raise typer.BadParameter("give exactly one of --canary, --all, --percent")
    db = _engine()
    states = {k: r.state for k, r in gateway_states(db).items()}
    with Session(db) as session, session.begin():
        evaluate(session, states)  # kept even when the request below is refused
    try:
        with Session(db) as session, session.begin():
            if canary:
                rollout = start_canary(session, version, canary, f"cli:{getpass.getuser()}")
                told = len(canary)
            else:
                rollout, told = widen(session, version, states, None if all_ else percent, community)
            rollout_id, status = rollout.id, rollout.status
    except RolloutError as err:
        typer.echo(f"yiwang fleet upgrade: {err}", err=True)
        raise typer.Exit(1) from err
    finally:
        db.dispose()
    typer.echo(f"rollout {rollout_id} of {version}: {status}, {told} gateway(s) newly told")


@fleet_app.command("status")
def fleet_status(
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object instead of a table.")] = False,
) -> None:
    """Each gateway's running and desired version, its last attempt, and the latest rollouts."""
    from sqlalchemy.orm import Session

    from alerts.fleet import gateway_states
    from registry.rollouts import evaluate, fleet_versions, latest_rollouts

    db = _engine()
    try:
        rows = gateway_states(db)
        states = {k: r.state for k, r in rows.items()}
        with Session(db) as session, session.begin():
            evaluate(session, states)  # a rollout whose canary rolled back reads stopped here too
            gateways = fleet_versions(session, states, {k: r.online for k, r in rows.items()})
            rollouts = [
                {
                    "id": r.id,
                    "version": r.version,
                    "status": r.status,
                    "percent": r.percent,
                    "canaries": [f"{c}/{g}" for c, g in r.canaries],
                    "stopped_reason": r.stopped_reason,
                }
                for r in latest_rollouts(session, 5)
            ]
    finally:
        db.dispose()
    if as_json:
        out = {
            "rollouts": rollouts,
            "gateways": [
                {
                    "gateway": f"{g.community}/{g.gateway}",
                    "online": g.online,
                    "running": g.running,
                    "desired": g.desired,
                    "phase": g.phase.value,
                    "attempt": g.attempt,
                    "outcome": g.outcome,
                    "reason": g.reason,
                }
                for g in gateways
            ],
        }
        typer.echo(json.dumps(out, ensure_ascii=False))
        return
    for r in rollouts:
        stopped = f" — {r['stopped_reason']}" if r["stopped_reason"] else ""
        typer.echo(f"rollout {r['id']}: {r['version']} {r['status']} {r['percent']}%{stopped}")
    typer.echo(f"{'gateway':<40} {'running':<12} {'desired':<12} {'phase':<12} last attempt")
    for g in gateways:
        last = f"{g.attempt} {g.outcome}" + (f": {g.reason}" if g.reason else "") if g.attempt else "—"
        typer.echo(
            f"{g.community + '/' + g.gateway:<40} {g.running or '—':<12} {g.desired or '—':<12} "
            f"{g.phase.value:<12} {last}"
        )
