"""`yiwang channels`: public reporting channels (12345, the public page) and their keys (#22)."""

from __future__ import annotations

from typing import Annotated

import typer

from yiwang.cli.root import app

channels_app = typer.Typer(no_args_is_help=True, help="Public reporting channels and their keys.")
app.add_typer(channels_app, name="channels")


@channels_app.command("add")
def channels_add(
    name: Annotated[str, typer.Argument(help="What the channel is, e.g. 12345 热线.")],
    community: Annotated[
        list[str] | None, typer.Option("--community", help="A community it reports into (repeatable).")
    ] = None,
    town: Annotated[str | None, typer.Option(help="Every community of this town.")] = None,
    page: Annotated[bool, typer.Option("--page", help="The public page /report files through it.")] = False,
) -> None:
    """Make a channel and print its key once: it is stored only as a digest."""
    from api.account_binding import stored_grids
    from api.settings import ApiSettings
    from cases.policy import CasePolicy
    from cases.public_channels import ChannelRefused, create_channel, reachable_communities
    from common.db import make_engine

    settings = ApiSettings()
    db = make_engine(settings.database_url)
    try:
        known = set(stored_grids(db, settings.config_dir).values())
        organisation = CasePolicy.load(settings.config_dir, db).organisation  # with run-time towns
        communities = reachable_communities(organisation, known, community or [], town)
        channel, key = create_channel(db, name, communities, town=town, serves_page=page, actor="cli")
    except ChannelRefused as err:
        typer.echo(f"yiwang channels add: {err}", err=True)
        raise typer.Exit(2) from None
    finally:
        db.dispose()
    typer.echo(key)
    typer.echo(
        f"channels add: {channel.name!r} (id {channel.id}) reports into {', '.join(channel.communities)}"
        + (", serves /report" if page else "")
        + "; the key is shown once, keep it secret",
        err=True,
    )


@channels_app.command("list")
def channels_list() -> None:
    """The channels, without their keys."""
    from cases.public_channels import list_channels
    from common.db import make_engine
    from common.settings import ServiceSettings

    db = make_engine(ServiceSettings().database_url)
    try:
        for c in list_channels(db):
            state = "enabled" if c.enabled else "disabled"
            page = " page" if c.serves_page else ""
            typer.echo(f"{c.id}\t{c.name}\t{state}{page}\t{','.join(c.communities)}")
    finally:
        db.dispose()


@channels_app.command("disable")
def channels_disable(channel_id: Annotated[int, typer.Argument(help="The channel's id.")]) -> None:
    """Stop a channel's key at once (its reports keep their origin)."""
    from cases.public_channels import disable_channel
    from common.db import make_engine
    from common.settings import ServiceSettings

    db = make_engine(ServiceSettings().database_url)
    try:
        if not disable_channel(db, channel_id):
            typer.echo(f"yiwang channels disable: no channel {channel_id}", err=True)
            raise typer.Exit(2)
    finally:
        db.dispose()
