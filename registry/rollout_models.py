"""Agent rollouts in the relational store: which version each gateway should run, and the rollouts
that set it (canary first, then a percentage or all). Migration 0012 creates these tables."""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

from sqlalchemy import JSON, Engine, ForeignKey, Integer, String, Table
from sqlalchemy.orm import Mapped, mapped_column

from common.db import Base, UtcDateTime, create_tables

VERSION_LENGTH = 64
REASON_LENGTH = 512


class AgentRollout(Base):
    """One version rolled out: canaries first; ``status`` canary → rolling → (stopped)."""

    __tablename__ = "agent_rollouts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    version: Mapped[str] = mapped_column(String(VERSION_LENGTH))
    canaries: Mapped[list[Any]] = mapped_column(JSON)  # [[community, gateway], ...]
    percent: Mapped[int] = mapped_column(Integer, default=0)  # of the targeted gateways told so far
    status: Mapped[str] = mapped_column(String(16))
    stopped_reason: Mapped[str | None] = mapped_column(String(REASON_LENGTH), nullable=True)
    created_by: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class GatewayDesiredVersion(Base):
    """The agent version a gateway should run; published retained to its ``version`` topic."""

    __tablename__ = "gateway_desired_versions"

    community: Mapped[str] = mapped_column(String(64), primary_key=True)
    gateway: Mapped[str] = mapped_column(String(64), primary_key=True)
    version: Mapped[str] = mapped_column(String(VERSION_LENGTH))
    rollout_id: Mapped[int | None] = mapped_column(ForeignKey("agent_rollouts.id"), nullable=True)
    set_at: Mapped[datetime] = mapped_column(UtcDateTime)


TABLES: tuple[Table, ...] = (
    cast(Table, AgentRollout.__table__),
    cast(Table, GatewayDesiredVersion.__table__),
)

_created: set[int] = set()


def ensure_tables(db: Engine) -> None:
    """Create the tables when missing (tests, ad-hoc runs); once per engine."""
    if id(db) in _created:
        return
    create_tables(db, Base.metadata, tables=list(TABLES))
    _created.add(id(db))
