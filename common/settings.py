"""Settings shared by the services; each service has its own BaseSettings with the ``YIWANG_`` prefix."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_DATABASE_URL = "sqlite:///var/demo/yiwang.db"
DEFAULT_SERIES_URL = "sqlite:///var/demo/series.db"
PLACEHOLDER_SECRET = "changethis"  # noqa: S105 - the value we refuse, not a credential
"""What `.env.example` ships in every secret: a service refuses to start while one is left in place."""


def refuse_placeholder(name: str, secret: str | None) -> None:
    """Raise if ``secret`` is the `.env.example` placeholder (a copied example would otherwise go live)."""
    if secret is not None and secret.strip().lower() == PLACEHOLDER_SECRET:
        raise ValueError(
            f"{name} is still the placeholder {PLACEHOLDER_SECRET!r} from .env.example: "
            "set a secret of your own (e.g. `openssl rand -hex 24`)"
        )


def url_password(url: str) -> str | None:
    """The password (or, for InfluxDB's ``?token=``, the token) embedded in a database URL, if any."""
    parts = urlsplit(url)
    if parts.password is not None:
        return unquote(parts.password)
    query = parse_qs(parts.query)
    found = query.get("token") or query.get("password")
    return found[-1] if found else None


@dataclass(frozen=True, slots=True)
class TlsFiles:
    """A CA bundle (TLS is on when given) and, for brokers that ask, a client certificate and its key."""

    ca: str | None = None
    cert: str | None = None
    key: str | None = None

    @property
    def enabled(self) -> bool:
        return self.ca is not None or self.cert is not None


class MqttSettings(BaseSettings):
    """How a service reaches the broker."""

    model_config = SettingsConfigDict(env_prefix="YIWANG_", extra="ignore")

    mqtt_host: str = "127.0.0.1"
    mqtt_port: int = Field(default=1883, ge=1, le=65535)
    mqtt_username: str | None = None
    mqtt_password: SecretStr | None = None
    mqtt_tls_ca: Path | None = Field(default=None, description="CA bundle; TLS to the broker is on when set.")
    mqtt_tls_cert: Path | None = Field(
        default=None, description="Client certificate (PEM), if the broker asks."
    )
    mqtt_tls_key: Path | None = Field(default=None, description="Key of the client certificate (PEM).")

    def mqtt_tls(self) -> TlsFiles | None:
        """The TLS files of the broker connection, or None for plain TCP."""
        if self.mqtt_tls_ca is None and self.mqtt_tls_cert is None:
            return None
        return TlsFiles(
            ca=str(self.mqtt_tls_ca) if self.mqtt_tls_ca else None,
            cert=str(self.mqtt_tls_cert) if self.mqtt_tls_cert else None,
            key=str(self.mqtt_tls_key) if self.mqtt_tls_key else None,
        )

    @model_validator(mode="after")
    def _no_placeholder_mqtt_password(self) -> MqttSettings:
        password = self.mqtt_password.get_secret_value() if self.mqtt_password else None
        refuse_placeholder("YIWANG_MQTT_PASSWORD", password)
        return self


class ServiceSettings(MqttSettings):
    """Broker, relational database, time-series store and configuration directory."""

    database_url: str = DEFAULT_DATABASE_URL
    series_url: str = DEFAULT_SERIES_URL
    config_dir: Path = Path("config")
    registry_poll_s: float = Field(
        default=1.0, gt=0, le=60, description="How often a service checks the registry for changes (seconds)."
    )

    @model_validator(mode="after")
    def _no_placeholder_in_urls(self) -> ServiceSettings:
        refuse_placeholder("the password in YIWANG_DATABASE_URL", url_password(self.database_url))
        refuse_placeholder("the token in YIWANG_SERIES_URL", url_password(self.series_url))
        return self
