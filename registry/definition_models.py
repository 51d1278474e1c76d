"""The tables of sensor-type profiles and rule files stored as data, versioned (#28).

A profile version (``air.co2`` version 2 is ``air.co2@2``) is never changed once stored: a device names
the exact version it runs, so a new version is a new row beside the old. A rule file is kept in every
version it had; the running rules are those of each file's newest version. ``definition_revision`` is
one row whose number goes up with every change, so a service knows with one cheap query whether its
copy is current (as ``registry_version`` does for the registry).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

from sqlalchemy import JSON, Integer, String, Table
from sqlalchemy.orm import Mapped, mapped_column

from common.db import Base


class DefinitionProfile(Base):
    __tablename__ = "definition_profiles"

    name: Mapped[str] = mapped_column(String(96), primary_key=True)  # the type without its version
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    document: Mapped[dict[str, Any]] = mapped_column(JSON)  # the validated profile, as JSON
    digest: Mapped[str] = mapped_column(String(64))  # SHA-256 of the canonical JSON: same content, same id
    source: Mapped[str] = mapped_column(String(200), default="")  # the file or channel it came from
    author: Mapped[str] = mapped_column(String(128), default="")
    created_at: Mapped[datetime]


class DefinitionRuleFile(Base):
    __tablename__ = "definition_rule_files"

    name: Mapped[str] = mapped_column(String(96), primary_key=True)  # e.g. community-safety
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    document: Mapped[dict[str, Any]] = mapped_column(JSON)  # {"rules": [...]}, validated
    digest: Mapped[str] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(String(200), default="")
    author: Mapped[str] = mapped_column(String(128), default="")
    created_at: Mapped[datetime]


class DefinitionRevision(Base):
    __tablename__ = "definition_revision"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)  # always 1
    revision: Mapped[int] = mapped_column(Integer, default=0)
    changed_at: Mapped[datetime]


TABLES: tuple[Table, ...] = tuple(
    cast(Table, m.__table__) for m in (DefinitionProfile, DefinitionRuleFile, DefinitionRevision)
)
