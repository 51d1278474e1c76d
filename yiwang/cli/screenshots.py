"""`yiwang screenshots`: the README's pictures regenerated from today's console (the demo, both languages,
desktop and phone sizes)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from yiwang.cli.root import app


@app.command()
def screenshots(
    out: Annotated[Path, typer.Option(help="Where the PNG files go (<page>.<lang>.png).")] = Path(
        "docs/screenshots"
    ),
    page: Annotated[
        list[str] | None,
        typer.Option(help="Only this page (repeatable): queue, case, kpis, map, wall, device, field."),
    ] = None,
    lang: Annotated[list[str] | None, typer.Option(help="Only this language (repeatable): zh, en.")] = None,
) -> None:
    """Start the demo platform on free ports in a temporary directory, wait for the simulated community's
    first cases, and photograph the console with headless Chromium."""
    from common.settings import ServiceSettings
    from yiwang.screenshots import LANGUAGES, SHOT_NAMES, ScreenshotError, take_screenshots

    config_dir = ServiceSettings().config_dir.resolve()
    try:
        written = take_screenshots(out, config_dir, page or SHOT_NAMES, lang or LANGUAGES)
    except ScreenshotError as err:
        typer.echo(f"yiwang screenshots: {err}", err=True)
        raise typer.Exit(1) from err
    for path in written:
        typer.echo(str(path))
