"""Settings shared by the services; each service has its own BaseSettings with the ``YIWANG_`` prefix."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_DATABASE_URL = "sqlite:///var/demo/yiwang.db"
DEFAULT_SERIES_URL = "sqlite:///var/demo/series.db"


class MqttSettings(BaseSettings):
    """How a service reaches the broker."""

    model_config = SettingsConfigDict(env_prefix="YIWANG_", extra="ignore")

    mqtt_host: str = "127.0.0.1"
    mqtt_port: int = Field(default=1883, ge=1, le=65535)
    mqtt_username: str | None = None
    mqtt_password: SecretStr | None = None


class ServiceSettings(MqttSettings):
    """Broker, relational database, time-series store and configuration directory."""

    database_url: str = DEFAULT_DATABASE_URL
    series_url: str = DEFAULT_SERIES_URL
    config_dir: Path = Path("config")
