"""The gateway config (``config/gateways/*.yaml``): broker, spool, buses with their devices, modem.

One pydantic model per section, ``extra="forbid"`` so a typo fails loudly. The *device set*
(buses, devices, modem) is also what a retained remote ``config`` message carries
(:class:`DeviceSet`); connection settings (community, gateway, broker) only come from the local file,
because a bad remote value there would cut the gateway off for good.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, StringConstraints, model_validator

from contract.ids import FieldName, Id, SensorTypeRef

SourceKind = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,31}$")]


class _Config(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MqttConfig(_Config):
    host: str = Field(default="127.0.0.1", description="Broker host.")
    port: int = Field(default=1883, ge=1, le=65535)
    username: str | None = Field(default=None, description="Per-gateway credential (broker ACL).")
    password_file: Path | None = Field(default=None, description="File holding the password.")
    password_env: str | None = Field(default=None, description="Environment variable holding it.")
    tls_ca: Path | None = Field(default=None, description="CA bundle; TLS is on when set.")
    tls_cert: Path | None = Field(default=None, description="Client certificate (PEM), if the broker asks.")
    tls_key: Path | None = Field(default=None, description="Key of the client certificate (PEM).")
    max_inflight: int = Field(default=20, gt=0, le=1000, description="QoS 1 messages awaiting PUBACK.")
    max_queued: int = Field(default=40, gt=0, description="Spooled messages held in RAM.")
    reconnect_max_s: float = Field(
        default=4,
        gt=0,
        le=600,
        description="Cap of the jittered reconnect delay: the gateway is back at most this long after "
        "the broker (the jitter, not the wait, spreads a district's reconnects; edge.mqtt_session.Backoff).",
    )

    @model_validator(mode="after")
    def _one_password_source(self) -> MqttConfig:
        if self.password_file is not None and self.password_env is not None:
            raise ValueError("give password_file or password_env, not both")
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("give tls_cert and tls_key together")
        return self

    def password(self) -> SecretStr | None:
        """Read at start, never stored in the config file itself."""
        if self.password_file is not None:
            return SecretStr(self.password_file.read_text(encoding="utf-8").strip())
        if self.password_env is not None:
            value = os.environ.get(self.password_env)
            return SecretStr(value) if value is not None else None
        return None


class DeviceConfig(_Config):
    id: Id
    type: SensorTypeRef = Field(description="Sensor-type profile, e.g. env.th@1.")
    unit: int | None = Field(default=None, ge=0, le=255, description="Modbus unit (slave) id.")
    poll_s: float = Field(default=5.0, gt=0, le=86_400, description="Poll interval.")
    max_interval_s: float | None = Field(
        default=None, gt=0, description="Report at least this often (default: profile's expected interval)."
    )
    deadband: dict[FieldName, Annotated[float, Field(ge=0)]] = Field(
        default_factory=dict, description="Report a field only when it moved more than this."
    )


class BusConfig(_Config):
    id: Id
    kind: SourceKind = Field(description="Source that drives it: modbus_rtu, modbus_tcp, serial_line, ...")
    port: str | None = Field(default=None, description="Serial device, e.g. /dev/ttyUSB0.")
    baudrate: int = Field(default=9600, gt=0)
    parity: Literal["N", "E", "O"] = "N"
    bytesize: Literal[7, 8] = 8
    stopbits: Literal[1, 2] = 1
    host: str | None = Field(default=None, description="TCP host (Modbus TCP or a serial server).")
    tcp_port: int | None = Field(default=None, ge=1, le=65535)
    timeout_s: float = Field(default=0.5, gt=0, le=30, description="Answer timeout per request.")
    retries: int = Field(default=1, ge=0, le=5, description="Immediate retries of a failed request.")
    backoff_max_s: float = Field(
        default=300, gt=0, description="Longest wait before re-polling a dead device."
    )
    devices: list[DeviceConfig] = Field(min_length=1)


class ModemConfig(_Config):
    device: Id = Field(default="modem", description="Device id its telemetry is published under.")
    type: SensorTypeRef = "gateway.modem@1"
    port: str = Field(description="The modem's AT port, e.g. /dev/ttyUSB2.")
    baudrate: int = Field(default=115200, gt=0)
    poll_s: float = Field(default=60, gt=0)
    timeout_s: float = Field(default=2.0, gt=0, le=30)


class DeviceSet(_Config):
    """What can change at run time: buses, devices, modem. A remote ``config`` message carries this."""

    buses: list[BusConfig] = Field(default_factory=list)
    modem: ModemConfig | None = None

    @model_validator(mode="after")
    def _unique(self) -> DeviceSet:
        seen_dev: set[str] = set()
        seen_bus: set[str] = set()
        ports: dict[str, str] = {}
        for bus in self.buses:
            if bus.id in seen_bus:
                raise ValueError(f"bus {bus.id}: bus id used twice")
            seen_bus.add(bus.id)
            # Two buses on one port would be two masters on one wire: the race this design prevents.
            if bus.port is not None:
                if bus.port in ports:
                    raise ValueError(f"bus {bus.id}: port {bus.port} is already bus {ports[bus.port]}")
                ports[bus.port] = bus.id
            units: dict[int, str] = {}
            for dev in bus.devices:
                if dev.id in seen_dev:
                    raise ValueError(f"bus {bus.id} device {dev.id}: device id used twice")
                seen_dev.add(dev.id)
                if dev.unit is not None:
                    if dev.unit in units:
                        raise ValueError(
                            f"bus {bus.id} device {dev.id}: unit {dev.unit} is already {units[dev.unit]}"
                        )
                    units[dev.unit] = dev.id
        if self.modem is not None:
            if self.modem.device in seen_dev:
                raise ValueError(f"modem: device id {self.modem.device} used twice")
            if self.modem.port in ports:
                raise ValueError(f"modem: port {self.modem.port} is already bus {ports[self.modem.port]}")
        return self


class SpoolConfig(_Config):
    dir: Path = Path("var/edge")
    max_bytes: int = Field(
        default=1024 * 1024 * 1024, gt=0, description="Bound on compressed spool data (edge.spool_policy)."
    )
    max_age_s: float = Field(default=30 * 86_400, gt=0, description="Older routine telemetry expires.")
    drain_per_s: int | None = Field(
        default=None, gt=0, description="Backlog readings/s after an outage; live data is not limited."
    )
    max_readings_per_message: int = Field(default=500, ge=1, le=5000)
    sync_interval_s: float = Field(
        default=1.0, ge=0, le=60, description="Longest a spooled reading waits for fsync (power cut)."
    )
    max_rows: int | None = Field(
        default=None, gt=0, description="Deprecated, ignored: the spool is bounded by bytes and age."
    )


class MetricsConfig(_Config):
    host: str = Field(default="127.0.0.1", description="Local only by default: /metrics has no auth.")
    port: int | None = Field(default=9108, ge=0, le=65535, description="None switches /metrics off.")


class GatewayConfig(DeviceSet):
    community: Id
    gateway: Id
    config_dir: Path = Field(default=Path("config"), description="Where sensor-types/ lives.")
    mqtt: MqttConfig = Field(default_factory=MqttConfig)
    spool: SpoolConfig = Field(default_factory=SpoolConfig)
    metrics: MetricsConfig = Field(default_factory=MetricsConfig)
    state_interval_s: float = Field(default=60, gt=0)
    cameras: Path | None = Field(
        default=None,
        description="A camera file (config/cameras/*.yaml) analysed in this same agent: one gateway, "
        "one MQTT client and one seq counter. Needs `pip install 'yiwang[camera]'`.",
    )

    def device_set(self) -> DeviceSet:
        return DeviceSet(buses=self.buses, modem=self.modem)
