"""The edge agent's settings from the environment (``YIWANG_*``): broker, spool, simulator."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from common.settings import MqttSettings
from edge.publisher import MqttOptions


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
