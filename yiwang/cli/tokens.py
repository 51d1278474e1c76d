"""`yiwang token issue`: an API token for an account, with an expiry and optionally a scope."""

from __future__ import annotations

from typing import Annotated

import typer

from yiwang.cli.root import app

token_app = typer.Typer(no_args_is_help=True, help="API tokens of the accounts (run on the server).")
app.add_typer(token_app, name="token")


@token_app.command("issue")
def token_issue(
    username: Annotated[str, typer.Argument(help="The account the token acts as.")],
    label: Annotated[str, typer.Option(help="What the token is for (shown in the token list).")] = "",
    days: Annotated[float, typer.Option(min=0.01, max=3650, help="How long it is good for.")] = 90.0,
    scope: Annotated[
        str | None, typer.Option(help="Only this part of the API, e.g. open311 (an intake integration).")
    ] = None,
) -> None:
    """Print a new API token once; it is stored only as a digest and can be revoked at any time."""
    from datetime import timedelta

    from api.accounts import SCOPES, find_user, issue_token
    from common.db import make_engine
    from common.settings import ServiceSettings

    if scope is not None and scope not in SCOPES:
        raise typer.BadParameter(f"unknown scope {scope!r}; one of {', '.join(SCOPES)}")
    db = make_engine(ServiceSettings().database_url)
    try:
        user = find_user(db, username)
        if user is None:
            typer.echo(f"yiwang token issue: no account {username!r}", err=True)
            raise typer.Exit(2)
        token = issue_token(db, user, label, lifetime=timedelta(days=days), scope=scope)
    finally:
        db.dispose()
    typer.echo(token)
    typer.echo(
        f"token issue: for {username}, good for {days:g} days"
        + (f", only {scope}" if scope else "")
        + "; shown once, keep it secret",
        err=True,
    )
