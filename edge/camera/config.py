"""Camera analytics configuration: one pydantic model per section, ``extra="forbid"`` so typos fail at load.

Polygons are in normalised image coordinates (0..1, origin top-left), so one zone definition holds
whatever resolution the camera streams at and whatever size motion is computed on.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from contract.ids import Id

Point = tuple[Annotated[float, Field(ge=0.0, le=1.0)], Annotated[float, Field(ge=0.0, le=1.0)]]
Polygon = Annotated[list[Point], Field(min_length=3, max_length=64)]


class CameraConfigError(ValueError):
    """The camera configuration file is missing, not YAML, or invalid (the message names the file)."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ZoneConfig(_Section):
    id: Id = Field(description="Zone id, sent as the event's `zone` attribute (rules match on it).")
    polygon: Polygon = Field(description="Corners in normalised coordinates (x, y), 0..1.")
    min_area: float = Field(
        default=0.02, gt=0, le=1, description="Fraction of the zone that must be in motion to count."
    )
    min_duration_s: float = Field(default=1.0, ge=0, description="Motion must last this long to start.")
    cooldown_s: float = Field(
        default=5.0, ge=0, description="Quiet time before the event ends; re-entry within it extends it."
    )


class MotionConfig(_Section):
    width: int = Field(default=160, ge=32, le=1920, description="Motion runs on a frame this wide.")
    history: int = Field(default=300, ge=10, description="MOG2 history in frames.")
    absorb_s: float = Field(
        default=120.0,
        gt=0,
        description="Seconds until a motionless object becomes background (a parked car stops counting).",
    )
    var_threshold: float = Field(default=25.0, gt=0, description="MOG2 variance threshold.")
    global_change: float = Field(
        default=0.5, gt=0, le=1, description="Frame fraction in motion treated as a global change."
    )


class TamperConfig(_Section):
    enabled: bool = True
    dark_level: float = Field(default=25.0, ge=0, le=255, description="Mean grey below this: covered.")
    flat_std: float = Field(default=6.0, ge=0, description="Grey std below this: covered (uniform).")
    sudden_s: float = Field(
        default=0.5, gt=0, description="A flat bright view reached faster than this is a cover, else haze."
    )
    blur_ratio: float = Field(default=0.35, gt=0, lt=1, description="Sharpness vs reference below: blurred.")
    move_px: float = Field(default=4.0, gt=0, description="Scene shift (analysis pixels) meaning moved.")
    min_scene_corr: float = Field(default=0.4, ge=-1, le=1, description="Correlation below: moved.")
    min_duration_s: float = Field(default=2.0, ge=0)
    cooldown_s: float = Field(default=3.0, ge=0)
    warmup_s: float = Field(default=1.0, ge=0, description="Reference learned over this first period.")


class HazeConfig(_Section):
    """The smoke/haze-like indicator: a heuristic on contrast and edge loss, not a smoke detector."""

    enabled: bool = True
    ratio: float = Field(default=0.5, gt=0, lt=1, description="Contrast and edges below this: haze.")
    min_duration_s: float = Field(default=3.0, ge=0)
    cooldown_s: float = Field(default=5.0, ge=0)


class SnapshotConfig(_Section):
    enabled: bool = Field(default=False, description="Off by default (privacy by design).")
    directory: Path = Path("var/edge/snapshots")
    retention_days: float = Field(default=7.0, gt=0)
    jpeg_quality: int = Field(default=80, ge=10, le=100)
    blur_faces: bool = Field(default=True, description="Blur detected faces before the JPEG is written.")


class RateLimitConfig(_Section):
    events_per_minute: float = Field(default=30.0, gt=0, description="Sustained rate of one camera.")
    burst: int = Field(default=10, ge=1, description="Events allowed at once before the rate applies.")


class CameraConfig(_Section):
    id: Id = Field(description="Device id of the camera (events carry it).")
    source: str | int = Field(description="rtsp://, http:// (MJPEG), a file path, or a V4L2 index.")
    max_fps: float = Field(default=10.0, gt=0, description="Frames analysed per second at most.")
    reconnect_min_s: float = Field(default=0.5, gt=0)
    reconnect_max_s: float = Field(default=30.0, gt=0)
    read_timeout_s: float = Field(default=5.0, gt=0, description="A read blocked this long is a drop.")
    stream_timeout_s: float = Field(default=3.0, gt=0, description="No frame this long: stream lost.")
    update_interval_s: float = Field(default=10.0, gt=0, description="Update events while active.")
    privacy_masks: list[Polygon] = Field(default_factory=list, description="Blacked out before all else.")
    zones: list[ZoneConfig] = Field(default_factory=list)
    motion: MotionConfig = MotionConfig()
    tamper: TamperConfig = TamperConfig()
    haze: HazeConfig = HazeConfig()
    snapshots: SnapshotConfig = SnapshotConfig()
    rate_limit: RateLimitConfig = RateLimitConfig()

    @field_validator("zones")
    @classmethod
    def _unique_zones(cls, zones: list[ZoneConfig]) -> list[ZoneConfig]:
        ids = [z.id for z in zones]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise ValueError(f"duplicate zone id(s): {', '.join(duplicates)}")
        return zones


class HttpConfig(_Section):
    host: str = "127.0.0.1"
    port: int = Field(default=9108, ge=0, le=65535, description="/metrics and /snapshots; 0 = any.")
    snapshot_token: SecretStr | None = Field(
        default=None, description="Bearer token for /snapshots; without one, snapshots are not served."
    )


class GatewayCameras(_Section):
    community: Id
    gateway: Id
    spool: Path = Path("var/edge/cameras.sqlite3")
    http: HttpConfig = HttpConfig()
    cameras: list[CameraConfig] = Field(min_length=1)

    @field_validator("cameras")
    @classmethod
    def _unique_cameras(cls, cameras: list[CameraConfig]) -> list[CameraConfig]:
        ids = [c.id for c in cameras]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise ValueError(f"duplicate camera id(s): {', '.join(duplicates)}")
        return cameras


def load_config(path: Path) -> GatewayCameras:
    """Read and validate a camera YAML file, or raise CameraConfigError naming the file and the field."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as err:
        raise CameraConfigError(f"{path}: {err}") from err
    try:
        return GatewayCameras.model_validate(data)
    except ValidationError as err:
        raise CameraConfigError(f"{path}: {err}") from err
