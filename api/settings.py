"""API settings (env prefix ``YIWANG_``)."""

from __future__ import annotations

from ipaddress import IPv4Network, IPv6Network, ip_network

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import SettingsConfigDict

from common.settings import ServiceSettings, refuse_placeholder

MIN_SESSION_SECRET_BYTES = 32
"""An HMAC key shorter than this can be brute-forced offline from one signed cookie."""


class ApiSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="YIWANG_", extra="ignore")

    http_host: str = "127.0.0.1"
    http_port: int = Field(default=8000, ge=1, le=65535)
    session_secret: SecretStr | None = Field(
        default=None,
        description="Signs console sessions (at least 32 bytes); a random one per start when unset "
        "(sessions then end).",
    )
    session_idle_s: float = Field(
        default=8 * 3600, gt=0, description="A console session unused this long ends (seconds)."
    )
    session_absolute_s: float = Field(
        default=7 * 86400, gt=0, description="A console session ends this long after sign-in (seconds)."
    )
    trusted_proxies: list[str] = Field(
        default_factory=list,
        description="Addresses or networks of reverse proxies whose X-Forwarded-For is believed "
        '(JSON list, e.g. ["10.0.0.5", "10.1.0.0/16"]); none by default.',
    )
    login_free_failures: int = Field(
        default=5, ge=1, description="Failed logins per account or client before back-off starts."
    )
    login_backoff_s: float = Field(
        default=30.0, gt=0, description="The first back-off after the free failures; doubles each time."
    )
    login_backoff_max_s: float = Field(default=3600.0, gt=0, description="The longest back-off.")
    heartbeat_stale_s: float = 20.0
    display_timezone: str = Field(
        default="Asia/Shanghai", description="Time zone the console shows times in."
    )

    @field_validator("trusted_proxies")
    @classmethod
    def _proxies_are_addresses(cls, value: list[str]) -> list[str]:
        for entry in value:
            try:
                ip_network(entry, strict=False)
            except ValueError:
                raise ValueError(
                    f"YIWANG_TRUSTED_PROXIES: {entry!r} is not an IP address or network"
                ) from None
        return value

    def proxy_networks(self) -> list[IPv4Network | IPv6Network]:
        return [ip_network(entry, strict=False) for entry in self.trusted_proxies]

    @model_validator(mode="after")
    def _strong_session_secret(self) -> ApiSettings:
        secret = self.session_secret.get_secret_value() if self.session_secret else None
        refuse_placeholder("YIWANG_SESSION_SECRET", secret)
        if secret is not None and len(secret.encode()) < MIN_SESSION_SECRET_BYTES:
            raise ValueError(
                f"YIWANG_SESSION_SECRET is {len(secret.encode())} bytes; it needs at least "
                f"{MIN_SESSION_SECRET_BYTES} (e.g. `openssl rand -hex 32`)"
            )
        return self
