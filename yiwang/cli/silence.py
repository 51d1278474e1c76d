"""`yiwang silence add|list|expire`: silences and maintenance windows of alerts."""

from __future__ import annotations

from typing import Annotated

import typer

from yiwang.cli.root import app

silence_app = typer.Typer(no_args_is_help=True, help="Silences and maintenance windows of alerts.")
app.add_typer(silence_app, name="silence")


@silence_app.command("add")
def silence_add(
    author: Annotated[str, typer.Option(help="Who sets it (kept with the silence).")],
    hours: Annotated[float, typer.Option(min=0.01, help="How long it lasts from now.")] = 2.0,
    device: Annotated[str | None, typer.Option()] = None,
    gateway: Annotated[str | None, typer.Option()] = None,
    grid: Annotated[str | None, typer.Option()] = None,
    community: Annotated[str | None, typer.Option()] = None,
    rule: Annotated[str | None, typer.Option()] = None,
    category: Annotated[str | None, typer.Option()] = None,
    maintenance: Annotated[
        bool, typer.Option(help="A maintenance window: the alerts count as inhibited.")
    ] = False,
    comment: Annotated[str, typer.Option()] = "",
) -> None:
    """Silence matching alerts (no cases open) for a while."""
    from datetime import UTC, datetime, timedelta

    from pydantic import ValidationError

    from alerts.silences import Matchers, SilenceIn, SilenceStore
    from common.db import make_engine
    from common.settings import ServiceSettings
    from yiwang.schema import create_all

    try:
        matchers = Matchers(
            device=device, gateway=gateway, grid=grid, community=community, rule=rule, category=category
        )
        request = SilenceIn(
            kind="maintenance" if maintenance else "silence",
            matchers=matchers,
            ends_at=datetime.now(UTC) + timedelta(hours=hours),
            comment=comment,
        )
    except ValidationError as err:
        raise typer.BadParameter(
            "; ".join(e["msg"].removeprefix("Value error, ") for e in err.errors())
        ) from err
    url = ServiceSettings().database_url
    create_all(url)
    db = make_engine(url)
    silence = SilenceStore(db).add(request, author=author)
    db.dispose()
    typer.echo(f"silence {silence.id} ({silence.kind}) until {silence.ends_at.isoformat()}")


@silence_app.command("list")
def silence_list() -> None:
    """Silences that have not ended yet."""
    from alerts.silences import SilenceStore
    from common.db import make_engine
    from common.settings import ServiceSettings

    db = make_engine(ServiceSettings().database_url)
    for s in SilenceStore(db).current():
        matchers = ", ".join(f"{k}={v}" for k, v in s.matchers.model_dump(exclude_none=True).items())
        period = f"{s.starts_at.isoformat()} → {s.ends_at.isoformat()}"
        typer.echo(f"{s.id}\t{s.kind}\t{matchers}\t{period}\t{s.author}\t{s.comment}")
    db.dispose()


@silence_app.command("expire")
def silence_expire(silence_id: int) -> None:
    """End a silence now."""
    from alerts.silences import SilenceStore
    from common.db import make_engine
    from common.settings import ServiceSettings

    db = make_engine(ServiceSettings().database_url)
    ended = SilenceStore(db).expire(silence_id)
    db.dispose()
    if not ended:
        typer.echo(f"no running silence {silence_id}", err=True)
        raise typer.Exit(1)
    typer.echo(f"silence {silence_id} ended")
