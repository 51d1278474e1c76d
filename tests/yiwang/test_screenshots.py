"""`yiwang screenshots` for real: the demo platform started as `yiwang up` starts it, its simulated
community left to open a case, and the KPI page photographed in English by headless Chromium at desktop
size — a PNG of the right size that is not blank — and bad choices refused by name before anything runs."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image, ImageStat
from typer.testing import CliRunner

from tests.platform import CONFIG_DIR
from yiwang.cli.root import app
from yiwang.cli.screenshots import screenshots  # noqa: F401 - registers the command
from yiwang.screenshots import DESKTOP, ScreenshotError, take_screenshots

pytestmark = [pytest.mark.e2e, pytest.mark.browser]


def test_the_kpi_page_is_photographed_from_a_running_demo(tmp_path: Path) -> None:
    written = take_screenshots(tmp_path / "shots", CONFIG_DIR, ["kpis"], ["en"])
    assert written == [tmp_path / "shots" / "kpis.en.png"]
    image = Image.open(written[0]).convert("L")
    assert image.width == DESKTOP["width"] and image.height >= DESKTOP["height"]  # full page
    stats = ImageStat.Stat(image)
    assert stats.stddev[0] > 20, stats.stddev  # text and charts, not an empty page
    colours = Image.open(written[0]).convert("RGB").getcolors(maxcolors=1_000_000)
    assert colours is not None and len(colours) > 50


def test_unknown_pages_and_languages_are_named_before_the_demo_starts(tmp_path: Path) -> None:
    with pytest.raises(ScreenshotError, match=r"unknown page.*dashboard.*choose from queue"):
        take_screenshots(tmp_path, CONFIG_DIR, ["dashboard"])
    with pytest.raises(ScreenshotError, match=r"unknown language.*fr"):
        take_screenshots(tmp_path, CONFIG_DIR, ["kpis"], ["fr"])
    result = CliRunner().invoke(app, ["screenshots", "--out", str(tmp_path), "--page", "nope"])
    assert result.exit_code == 1 and "unknown page(s) nope" in result.output
    assert not any(tmp_path.iterdir())
