"""Demo mode's broker accounts: created once, reused after, repaired when the password file changed."""

from __future__ import annotations

import json
from pathlib import Path

from amqtt.contexts import Action
from typer.testing import CliRunner

from broker.accounts import AccountStore, acl_for
from broker.demo import SECRETS_FILE, ensure_demo_accounts
from broker.embedded import allowed
from contract.topics import Topic, TopicKind
from yiwang.cli import app


def test_demo_accounts_are_created_once_and_reused(tmp_path: Path) -> None:
    first = ensure_demo_accounts(tmp_path, ["zhuganxiang"])
    assert sorted(first.store.usernames()) == ["fleet.zhuganxiang", "svc.alerts", "svc.ingest"]
    again = ensure_demo_accounts(tmp_path, ["zhuganxiang"])
    assert again.fleets["zhuganxiang"] == first.fleets["zhuganxiang"]
    assert again.services == first.services
    secrets = tmp_path / SECRETS_FILE
    assert secrets.stat().st_mode & 0o077 == 0
    assert json.loads(secrets.read_text())["svc.ingest"] == first.services["ingest"].password


def test_each_simulated_gateway_gets_its_own_account_once(tmp_path: Path) -> None:
    pairs = [("zhuganxiang", "gw-01"), ("zhuganxiang", "gw-02"), ("yuehe", "gw-01")]
    first = ensure_demo_accounts(tmp_path, ["zhuganxiang"], pairs)
    names = {f"gw.{c}.{g}" for c, g in pairs}
    assert names <= set(first.store.usernames())
    assert {first.gateways[p].username for p in pairs} == names
    assert len({first.gateways[p].password for p in pairs}) == len(pairs)  # no shared password

    again = ensure_demo_accounts(tmp_path, ["zhuganxiang"], pairs)
    assert again.gateways == first.gateways  # the same passwords: running gateways keep working
    for pair in pairs:
        assert again.store.verify(first.gateways[pair].username, first.gateways[pair].password)
    for private in (tmp_path / SECRETS_FILE, again.store.password_file, again.store.acl_file):
        assert private.stat().st_mode & 0o777 == 0o600, private


def test_a_demo_gateway_account_publishes_only_its_own_topics(tmp_path: Path) -> None:
    pairs = [("zhuganxiang", "gw-01"), ("zhuganxiang", "gw-02"), ("yuehe", "gw-01")]
    accounts = ensure_demo_accounts(tmp_path, ["zhuganxiang"], pairs)
    acl = accounts.store.acl_file.read_text()
    for community, gateway in pairs:
        username = accounts.gateways[(community, gateway)].username
        assert f"user {username}\n" + "\n".join(acl_for(username)) in acl  # what Mosquitto enforces
        for other_community, other_gateway in pairs:
            own = (other_community, other_gateway) == (community, gateway)
            for kind in TopicKind:
                topic = Topic(other_community, other_gateway, kind).path
                may = allowed(username, topic, Action.PUBLISH)
                assert may == (own and kind.upstream), f"{username} publish {topic}: {may}"
        own_config = Topic(community, gateway, TopicKind.CONFIG).path
        assert allowed(username, own_config, Action.SUBSCRIBE)


def test_an_account_whose_password_no_longer_verifies_is_rotated(tmp_path: Path) -> None:
    first = ensure_demo_accounts(tmp_path, ["zhuganxiang"])
    AccountStore(tmp_path).add_service("ingest", rotate=True)  # someone rotated it by hand
    repaired = ensure_demo_accounts(tmp_path, ["zhuganxiang"])
    assert repaired.services["ingest"] != first.services["ingest"]
    assert repaired.store.verify("svc.ingest", repaired.services["ingest"].password)
    assert repaired.services["alerts"] == first.services["alerts"]


def test_the_broker_refuses_to_run_without_accounts(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["broker", "--embedded", "--data-dir", str(tmp_path)])
    assert result.exit_code == 2
    assert "no broker accounts" in result.output
