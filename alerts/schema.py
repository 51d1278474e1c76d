"""The alert service's tables (and the case tables they point to): each declaring module is imported here."""

from __future__ import annotations

from sqlalchemy import Engine, Table

from alerts import fleet, models, silences
from cases.schema import create_schema as create_case_schema
from common.db import Base, create_tables

_MODELS = (
    models.Alert,
    models.AlertHistory,
    models.AlertAcknowledgement,
    models.EngineCheckpoint,
    silences.SilenceRow,
    fleet.GatewayStatus,
    fleet.DeviceStatus,
)
TABLES: tuple[Table, ...] = tuple(Base.metadata.tables[m.__tablename__] for m in _MODELS)


def create_schema(db: Engine) -> None:
    create_case_schema(db)  # alerts point at their cases
    create_tables(db, Base.metadata, TABLES)
