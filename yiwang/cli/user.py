"""`yiwang user …`: accounts for the organisation's people (#22), run on the server as its operator.

``add`` makes the account of a person of the organisation and prints their one-time link; ``reset``
prints a new link (the old password stops working); ``deactivate`` ends the account's sessions and
tokens at once. Refusals say what to fix and exit 2.
"""

from __future__ import annotations

from typing import Annotated

import typer

from yiwang.cli.root import app

user_app = typer.Typer(no_args_is_help=True, help="Accounts for the organisation's people.")
app.add_typer(user_app, name="user")

Username = Annotated[str, typer.Argument(help="The person's username (config/organisation.yaml or the API).")]
BaseUrl = Annotated[
    str | None,
    typer.Option(help="Where people open the console, e.g. https://yiwang.example.org (default: this host)."),
]


def _fail(command: str, message: str) -> typer.Exit:
    typer.echo(f"yiwang user {command}: {message}", err=True)
    return typer.Exit(2)


def _print_link(base_url: str | None, username: str, path: str, expires: str) -> None:
    from api.settings import ApiSettings

    if base_url is None:
        settings = ApiSettings()
        base_url = f"http://{settings.http_host}:{settings.http_port}"
    typer.echo(base_url.rstrip("/") + path)
    typer.echo(
        f"one-time link for {username}: it sets their password, works once, expires {expires}; "
        "hand it to them privately",
        err=True,
    )


@user_app.command("add")
def user_add(
    username: Username,
    role: Annotated[
        str | None, typer.Option(help="A role that suits the person's unit (default: the person's own).")
    ] = None,
    base_url: BaseUrl = None,
) -> None:
    """Give a person of the organisation an account; prints the one-time link to set a password."""
    from api.account_binding import AccountExists, AccountRefused, bind, create_account, stored_grids
    from api.settings import ApiSettings
    from cases.policy import CasePolicy
    from common.db import make_engine

    settings = ApiSettings()
    db = make_engine(settings.database_url)
    try:
        policy = CasePolicy.load(settings.config_dir, db)
        binding = bind(policy.organisation, stored_grids(db, settings.config_dir), username, role)
        link = create_account(db, binding, created_by="cli")
    except (AccountRefused, AccountExists) as err:
        raise _fail("add", str(err)) from err
    finally:
        db.dispose()
    typer.echo(f"user add: {username} is a {binding.role} ({binding.person.name})", err=True)
    _print_link(base_url, username, link.path, f"{link.expires_at:%Y-%m-%d %H:%M} UTC")


@user_app.command("reset")
def user_reset(username: Username, base_url: BaseUrl = None) -> None:
    """A new one-time link for the account; its old password and console sessions end now."""
    from api.account_links import issue_link
    from api.accounts import find_account
    from api.settings import ApiSettings
    from common.db import make_engine

    db = make_engine(ApiSettings().database_url)
    try:
        account = find_account(db, username)
        if account is None:
            raise _fail("reset", f"no account {username!r}")
        if not account.active:
            raise _fail("reset", f"the account {username} is deactivated")
        link = issue_link(db, username, "reset", created_by="cli")
    finally:
        db.dispose()
    _print_link(base_url, username, link.path, f"{link.expires_at:%Y-%m-%d %H:%M} UTC")


@user_app.command("deactivate")
def user_deactivate(username: Username) -> None:
    """Nobody signs in as the account any more: its sessions, API tokens and links end at once."""
    from api.accounts import deactivate, find_account
    from api.settings import ApiSettings
    from common.db import make_engine

    db = make_engine(ApiSettings().database_url)
    try:
        if find_account(db, username) is None:
            raise _fail("deactivate", f"no account {username!r}")
        deactivate(db, username)
    finally:
        db.dispose()
    typer.echo(f"user deactivate: {username} is deactivated; sessions and tokens ended", err=True)
