"""API settings (env prefix ``YIWANG_``)."""

from __future__ import annotations

import re
from ipaddress import IPv4Network, IPv6Network, ip_network
from pathlib import Path
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import SettingsConfigDict

from common.settings import ServiceSettings, refuse_placeholder

MIN_SESSION_SECRET_BYTES = 32
"""An HMAC key shorter than this can be brute-forced offline from one signed cookie."""
# A tile service's host goes into the map page's Content-Security-Policy: nothing but a host name (with
# Leaflet's ``{s}`` for a subdomain) and a port may reach it.
_TILE_HOST = re.compile(r"^(?:[a-z0-9-]|\{s\})+(?:\.(?:[a-z0-9-]|\{s\})+)*(?::[0-9]{1,5})?$")
# An S3 bucket name (3-63 lower-case letters, digits, dots, hyphens), then optional query parameters.
_BUCKET_URL = re.compile(r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](\?[^#\s]*)?$")
_TILE_SUBDOMAINS = re.compile(r"^[a-z0-9]{0,16}$")


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
        default="Asia/Shanghai",
        max_length=64,
        description="Time zone the console shows times in (YIWANG_DISPLAY_TIMEZONE, an IANA name).",
    )
    map_tile_url: str = Field(
        default="",
        max_length=1000,
        description="A tile service under the console's map, as a Leaflet URL template, e.g. "
        "https://t{s}.tianditu.gov.cn/vec_w/wmts?...&TILEMATRIX={z}&TILEROW={y}&TILECOL={x}&tk=KEY "
        "(天地图 is WGS-84/CGCS2000: no offset). Empty: no base layer, the grids and buildings are the map.",
    )
    map_tile_subdomains: str = Field(
        default="", description="The letters or digits {s} in the tile URL stands for, e.g. 01234567."
    )
    map_tile_attribution: str = Field(
        default="", max_length=200, description="The credit the tile service asks for, shown as text."
    )
    attachments_dir: Path = Field(
        default=Path("var/attachments"),
        description="Where photos of cases are kept (files named by content hash), unless "
        "YIWANG_ATTACHMENTS_URL names a bucket. Never served as static files.",
    )
    attachments_url: str = Field(
        default="",
        max_length=1000,
        description="An S3-compatible bucket for photos instead of the directory, e.g. "
        "s3://yiwang-photos?endpoint=http://minio:9000 (keys: YIWANG_ATTACHMENTS_ACCESS_KEY and "
        "YIWANG_ATTACHMENTS_SECRET_KEY, else the usual AWS settings).",
    )
    attachments_access_key: str | None = Field(default=None, max_length=256)
    attachments_secret_key: SecretStr | None = None

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

    @field_validator("attachments_url")
    @classmethod
    def _attachments_url_is_a_bucket(cls, value: str) -> str:
        if value and not _BUCKET_URL.match(value):
            raise ValueError(
                f"YIWANG_ATTACHMENTS_URL: {value!r} is not a bucket URL; "
                "use s3://bucket?endpoint=http://host:9000 (or leave it empty for the directory)"
            )
        return value

    @field_validator("display_timezone")
    @classmethod
    def _timezone_is_known(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"YIWANG_DISPLAY_TIMEZONE: {value!r} is not a time zone; "
                "use an IANA name such as Asia/Shanghai"
            ) from None
        return value

    @model_validator(mode="after")
    def _tile_url_is_a_template(self) -> ApiSettings:
        url = self.map_tile_url
        if not url:
            return self
        if not _TILE_SUBDOMAINS.match(self.map_tile_subdomains):
            raise ValueError(
                "YIWANG_MAP_TILE_SUBDOMAINS: up to 16 letters or digits, one per subdomain, e.g. 01234567"
            )
        parts = urlsplit(url)
        if parts.scheme not in ("https", "http") or "@" in parts.netloc:
            raise ValueError(f"YIWANG_MAP_TILE_URL: {url!r} is not an http(s) URL template")
        if not _TILE_HOST.match(parts.netloc.lower()):
            raise ValueError(f"YIWANG_MAP_TILE_URL: {parts.netloc!r} is not a host name")
        if "{s}" in parts.netloc and not self.map_tile_subdomains:
            raise ValueError(
                "YIWANG_MAP_TILE_URL names {s}: set YIWANG_MAP_TILE_SUBDOMAINS to what it stands for"
            )
        if any(f"{{{axis}}}" not in url for axis in "xyz"):
            raise ValueError("YIWANG_MAP_TILE_URL: a tile URL template names {x}, {y} and {z}")
        return self

    def map_tile_origins(self) -> list[str]:
        """The origins the map's tiles come from: one per subdomain when the host names ``{s}``."""
        if not self.map_tile_url:
            return []
        parts = urlsplit(self.map_tile_url)
        origin = f"{parts.scheme}://{parts.netloc.lower()}"
        if "{s}" not in origin:
            return [origin]
        return [origin.replace("{s}", s) for s in self.map_tile_subdomains]

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
