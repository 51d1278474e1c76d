"""The alert service's tables, all of them: each module that declares some is imported here first."""

from __future__ import annotations

from sqlalchemy import Engine

from alerts import notify, rosters, silences, status
from alerts.models import Base
from yiwang.common.db import create_tables

_REGISTERED = (
    notify.OutboxRow,
    notify.Watermark,
    silences.SilenceRow,
    status.GatewayStatus,
    status.DeviceStatus,
    rosters.RosterOverride,
)  # tables outside alerts.models


def create_schema(engine: Engine) -> None:
    create_tables(engine, Base.metadata)
