"""The simulator's per-gateway accounts file (``YIWANG_SIM_ACCOUNTS_FILE``): each gateway its own login,
and every kind of bad file refused with one clear line before any gateway connects."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from edge.settings import MAX_SIM_ACCOUNTS_BYTES, EdgeSettings, SimAccountsError, read_gateway_logins

GATEWAYS = ["gw-01", "gw-02"]


def login(gateway: str, password: str | None = None) -> dict[str, str]:
    return {"username": f"gw.zhuganxiang.{gateway}", "password": password or f"secret-of-{gateway}"}


def write(tmp_path: Path, content: str | bytes) -> Path:
    path = tmp_path / "sim-accounts.json"
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    return path


def options_error(path: Path, gateways: list[str] = GATEWAYS) -> str:
    """The one-line error, naming the file, the simulator's settings give for ``path``."""
    settings = EdgeSettings(sim_accounts_file=path, mqtt_username=None, mqtt_password=None)
    with pytest.raises(SimAccountsError, match=re.escape(str(path))) as caught:
        settings.simulated_gateway_options(gateways)
    message = str(caught.value)
    assert "\n" not in message, f"not one line: {message!r}"
    return message


def test_each_gateway_logs_in_as_itself(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, json.dumps({g: login(g) for g in [*GATEWAYS, "gw-03"]}))
    monkeypatch.setenv("YIWANG_SIM_ACCOUNTS_FILE", str(path))
    monkeypatch.setenv("YIWANG_MQTT_PORT", "18830")
    options = EdgeSettings().simulated_gateway_options(GATEWAYS)
    assert list(options) == GATEWAYS  # only the simulated ones, gw-03 is not asked for
    for gateway in GATEWAYS:
        assert options[gateway].username == f"gw.zhuganxiang.{gateway}"
        assert options[gateway].password == f"secret-of-{gateway}"
        assert options[gateway].port == 18830  # the rest of the broker options stays shared


def test_without_a_file_every_gateway_shares_the_configured_login() -> None:
    settings = EdgeSettings(sim_accounts_file=None, mqtt_username="fleet.zhuganxiang", mqtt_password="pw")
    options = settings.simulated_gateway_options(GATEWAYS)
    assert {(o.username, o.password) for o in options.values()} == {("fleet.zhuganxiang", "pw")}


def test_a_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nowhere.json"
    message = options_error(path)
    assert str(path) in message and "cannot read" in message


def test_a_file_that_is_not_json(tmp_path: Path) -> None:
    path = write(tmp_path, '{"gw-01": {"username": "gw.zhuganxiang.gw-01",')
    with pytest.raises(SimAccountsError, match="expected"):
        read_gateway_logins(path)
    assert str(path) in options_error(path)


@pytest.mark.parametrize(
    ("content", "named"),
    [
        ({"gw-01": {**login("gw-01"), "role": "admin"}}, "gw-01.role"),
        ({"gw-01": {"username": "gw.zhuganxiang.gw-01"}}, "gw-01.password"),
        ({"gw-01": "secret"}, "gw-01"),
        (["gw-01"], "file"),
    ],
    ids=["unknown key", "missing password", "login not an object", "not a mapping"],
)
def test_a_malformed_login_names_where(tmp_path: Path, content: object, named: str) -> None:
    path = write(tmp_path, json.dumps(content))
    with pytest.raises(SimAccountsError):
        read_gateway_logins(path)
    message = options_error(path, ["gw-01"])
    assert named in message, message


def test_the_example_placeholder_password_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, json.dumps({"gw-01": login("gw-01"), "gw-02": login("gw-02", "ChangeThis")}))
    message = options_error(path)
    assert "gw-02" in message and "placeholder" in message
    assert "secret-of-gw-01" not in message  # an error never shows a password


def test_a_gateway_without_a_login(tmp_path: Path) -> None:
    path = write(tmp_path, json.dumps({"gw-01": login("gw-01")}))
    message = options_error(path, ["gw-01", "gw-02", "gw-03"])
    assert "no login for gateway(s) gw-02, gw-03" in message


def test_a_file_over_the_size_limit_is_refused_before_parsing(tmp_path: Path) -> None:
    # Valid JSON would parse; only its size can refuse it.
    padding = " " * MAX_SIM_ACCOUNTS_BYTES
    path = write(tmp_path, json.dumps({g: login(g) for g in GATEWAYS}) + padding)
    with pytest.raises(SimAccountsError, match="larger than"):
        read_gateway_logins(path)
    assert "larger than" in options_error(path)


def test_a_file_at_the_size_limit_is_read(tmp_path: Path) -> None:
    body = json.dumps({g: login(g) for g in GATEWAYS})
    path = write(tmp_path, body + " " * (MAX_SIM_ACCOUNTS_BYTES - len(body)))
    assert sorted(read_gateway_logins(path)) == GATEWAYS
