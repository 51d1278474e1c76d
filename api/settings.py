"""API settings (env prefix ``YIWANG_``)."""

from __future__ import annotations

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import SettingsConfigDict

from common.settings import ServiceSettings, refuse_placeholder


class ApiSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="YIWANG_", extra="ignore")

    http_host: str = "127.0.0.1"
    http_port: int = Field(default=8000, ge=1, le=65535)
    session_secret: SecretStr | None = Field(
        default=None,
        description="Signs console sessions; a random one per start when unset (sessions then end).",
    )
    heartbeat_stale_s: float = 20.0
    display_timezone: str = Field(
        default="Asia/Shanghai", description="Time zone the console shows times in."
    )

    @model_validator(mode="after")
    def _no_placeholder_session_secret(self) -> ApiSettings:
        secret = self.session_secret.get_secret_value() if self.session_secret else None
        refuse_placeholder("YIWANG_SESSION_SECRET", secret)
        return self
