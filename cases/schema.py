"""The grid-case tables, all of them: each module that declares some is imported here first."""

from __future__ import annotations

from sqlalchemy import Engine, Table

from cases import attachment_models, lease, models, notify, public_channel_models, rosters, visit_models
from common.db import Base, create_tables

_MODELS: tuple[type[Base], ...] = (
    models.Case,
    models.CaseEvent,
    models.Evidence,
    models.SupervisionOrder,
    models.PersonOverride,
    models.DepartmentOverride,
    models.CategoryOverride,
    notify.OutboxRow,
    notify.Watermark,
    rosters.RosterOverride,
    lease.LeaseRow,
    *attachment_models.MODELS,
    *public_channel_models.MODELS,
    *visit_models.MODELS,
)
TABLES: tuple[Table, ...] = tuple(Base.metadata.tables[m.__tablename__] for m in _MODELS)


def create_schema(db: Engine) -> None:
    create_tables(db, Base.metadata, TABLES)
