"""`yiwang channels` makes, lists and disables public channels (the key printed once); the demo's
credentials carry a working public-page channel key (``open311_api_key``), kept across restarts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import Engine
from typer.testing import CliRunner

from api import accounts
from api.demo_accounts import ensure_demo_logins
from cases.public_channels import channel_for_key, disable_channel, page_channel
from tests.platform import CONFIG_DIR
from yiwang.cli.channels import channels_app
from yiwang.schema import create_all


@pytest.fixture
def schema(database_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    create_all(database_url)
    monkeypatch.setenv("YIWANG_DATABASE_URL", database_url)
    monkeypatch.setenv("YIWANG_CONFIG_DIR", str(CONFIG_DIR))
    return database_url


def test_channels_add_prints_the_key_once_and_disable_stops_it(schema: str, db: Engine) -> None:
    runner = CliRunner()
    made = runner.invoke(channels_app, ["add", "12345 热线", "--community", "zhuganxiang"])
    assert made.exit_code == 0, made.output
    key = made.stdout.strip().splitlines()[0]
    channel = channel_for_key(db, key)
    assert channel is not None and channel.communities == ("zhuganxiang",) and not channel.serves_page
    page = runner.invoke(channels_app, ["add", "公众上报页", "--town", "yuehe", "--page"])
    assert page.exit_code == 0, page.output
    assert page_channel(db) is not None and page_channel(db).name == "公众上报页"  # type: ignore[union-attr]
    listed = runner.invoke(channels_app, ["list"])
    assert "12345 热线" in listed.stdout and key not in listed.stdout and "enabled page" in listed.stdout
    unknown = runner.invoke(channels_app, ["add", "x", "--community", "atlantis"])
    assert unknown.exit_code == 2 and "unknown community 'atlantis'" in unknown.output
    twice = runner.invoke(channels_app, ["add", "12345 热线", "--community", "zhuganxiang"])
    assert twice.exit_code == 2 and "already a channel named" in twice.output
    assert runner.invoke(channels_app, ["disable", str(channel.id)]).exit_code == 0
    assert channel_for_key(db, key).enabled is False  # type: ignore[union-attr]
    assert runner.invoke(channels_app, ["disable", "999"]).exit_code == 2


def test_the_demo_credentials_carry_a_working_public_key(schema: str, db: Engine, tmp_path: Path) -> None:
    credentials = tmp_path / "credentials.json"
    accounts.ensure_demo_operator(db, credentials)
    ensure_demo_logins(db, CONFIG_DIR, credentials)
    key = json.loads(credentials.read_text(encoding="utf-8"))["open311_api_key"]
    channel = channel_for_key(db, key)
    assert channel is not None and channel.enabled and channel.serves_page
    assert channel.communities == ("zhuganxiang",)
    # A restart keeps the key while it works; a disabled channel's is replaced by a new channel's.
    ensure_demo_logins(db, CONFIG_DIR, credentials)
    assert json.loads(credentials.read_text(encoding="utf-8"))["open311_api_key"] == key
    disable_channel(db, channel.id)
    ensure_demo_logins(db, CONFIG_DIR, credentials)
    renewed = json.loads(credentials.read_text(encoding="utf-8"))["open311_api_key"]
    assert renewed != key and channel_for_key(db, renewed).enabled  # type: ignore[union-attr]
    assert page_channel(db).id != channel.id  # type: ignore[union-attr]
