"""The edge agent's settings from the environment (``YIWANG_*``): broker, spool, simulator."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, SecretStr, TypeAdapter, ValidationError
from pydantic_settings import SettingsConfigDict

from common.settings import MqttSettings, refuse_placeholder
from edge.publisher import MqttOptions

MAX_SIM_ACCOUNTS_BYTES = 1024 * 1024
"""A login per gateway is under 200 bytes: a larger file is a wrong path, not a bigger community."""


class SimAccountsError(ValueError):
    """The simulator's accounts file is unreadable, too large, malformed or lacks a gateway."""


class GatewayLogin(BaseModel):
    """One simulated gateway's broker login (``gw.<community>.<gateway>``, `yiwang gateway add`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    username: str = Field(min_length=1, max_length=256)
    password: SecretStr = Field(min_length=1, max_length=1024)


_GATEWAY_LOGINS = TypeAdapter(dict[str, GatewayLogin])


def read_gateway_logins(path: Path) -> dict[str, GatewayLogin]:
    """``{gateway id: {"username": ..., "password": ...}}`` from ``path``, size checked before parsing."""
    try:
        with path.open("rb") as file:
            data = file.read(MAX_SIM_ACCOUNTS_BYTES + 1)
    except OSError as err:
        raise SimAccountsError(f"cannot read the simulator's accounts file {path}: {err.strerror}") from err
    if len(data) > MAX_SIM_ACCOUNTS_BYTES:
        raise SimAccountsError(f"{path} is larger than {MAX_SIM_ACCOUNTS_BYTES} bytes: not an accounts file")
    try:
        logins = _GATEWAY_LOGINS.validate_json(data)
    except ValidationError as err:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in e['loc']) or 'file'}: {e['msg']}" for e in err.errors()[:5]
        )
        raise SimAccountsError(
            f'{path}: expected {{"<gateway>": {{"username": ..., "password": ...}}}}: {problems}'
        ) from err
    for gateway, login in logins.items():
        try:
            refuse_placeholder(
                f"the password of gateway {gateway} in {path}", login.password.get_secret_value()
            )
        except ValueError as err:
            raise SimAccountsError(str(err)) from err
    return logins


class EdgeSettings(MqttSettings):
    """Edge agent settings; every field can be set as ``YIWANG_<NAME>`` in the environment."""

    model_config = SettingsConfigDict(env_prefix="YIWANG_", extra="ignore")

    mqtt_max_inflight: int = Field(default=20, gt=0)
    mqtt_max_queued: int = Field(default=40, gt=0)
    config_dir: Path = Path("config")
    community: str = "zhuganxiang"
    spool_dir: Path = Path("var/edge")
    spool_max_bytes: int = Field(default=256 * 1024 * 1024, gt=0)
    spool_max_age_s: float = Field(default=30 * 86_400, gt=0)
    drain_per_s: int | None = Field(default=None, gt=0, description="Backlog readings/s after an outage.")
    metrics_port: int | None = Field(default=None, ge=0, le=65535, description="Local /metrics port.")
    seed: int = 0
    anomaly_period_s: float = Field(default=45.0, gt=0)
    tick_s: float = Field(default=1.0, gt=0)
    state_interval_s: float = Field(default=60.0, gt=0)
    sim_accounts_file: Path | None = Field(
        default=None,
        description=(
            "Simulator only: JSON mapping each gateway id to its own login "
            '({"gw-01": {"username": "gw.<community>.gw-01", "password": "..."}}). The broker keys a '
            "session by the account, so gateways sharing one login would disconnect each other; "
            "unset, every simulated gateway uses mqtt_username/mqtt_password (one gateway only)."
        ),
    )

    def mqtt_options(self) -> MqttOptions:
        return MqttOptions(
            host=self.mqtt_host,
            port=self.mqtt_port,
            username=self.mqtt_username,
            password=self.mqtt_password.get_secret_value() if self.mqtt_password else None,
            max_inflight=self.mqtt_max_inflight,
            max_queued=self.mqtt_max_queued,
            drain_per_s=self.drain_per_s,
        )

    def simulated_gateway_options(self, gateways: Iterable[str]) -> dict[str, MqttOptions]:
        """Each simulated gateway's broker options: its own login from ``sim_accounts_file`` when set,
        else the one configured login for all of them."""
        shared = self.mqtt_options()
        if self.sim_accounts_file is None:
            return dict.fromkeys(gateways, shared)
        logins = read_gateway_logins(self.sim_accounts_file)
        wanted = list(gateways)
        if missing := sorted(set(wanted) - set(logins)):
            raise SimAccountsError(f"{self.sim_accounts_file}: no login for gateway(s) {', '.join(missing)}")
        return {
            gateway: replace(
                shared,
                username=logins[gateway].username,
                password=logins[gateway].password.get_secret_value(),
            )
            for gateway in wanted
        }
