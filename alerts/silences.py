"""Silences and maintenance windows: matchers over device, grid, rule, category and community.

A silenced alert is still evaluated and recorded, but opens no case; when the silence ends while the
alert still fires, the case opens then. A maintenance window also marks the alert inhibited, so rule
statistics can tell planned work from noise.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import JSON, Engine, Integer, String, Text, select, update
from sqlalchemy.orm import Mapped, Session, mapped_column

from common.db import Base, UtcDateTime
from contract.ids import FieldName, Id

SilenceKind = Literal["silence", "maintenance"]


class Matchers(BaseModel):
    """Every given matcher must equal the alert's value; at least one is required."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    community: Id | None = None
    grid: Id | None = None
    device: Id | None = None
    gateway: Id | None = None
    rule: Id | None = None
    category: FieldName | None = None

    @model_validator(mode="after")
    def _not_everything(self) -> Matchers:
        if not self.model_dump(exclude_none=True):
            raise ValueError("a silence needs at least one matcher (device, grid, rule, category, ...)")
        return self


@dataclass(frozen=True, slots=True)
class Labels:
    """What a silence can match on one alert."""

    community: str
    grid: str
    device: str | None
    gateway: str | None
    rule: str
    category: str


class SilenceRow(Base):
    __tablename__ = "alert_silences"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(16))
    matchers: Mapped[dict[str, str]] = mapped_column(JSON)
    starts_at: Mapped[datetime] = mapped_column(UtcDateTime)
    ends_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    author: Mapped[str] = mapped_column(String(128))
    comment: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class SilenceIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: SilenceKind = "silence"
    matchers: Matchers
    starts_at: datetime | None = Field(default=None, description="Default: now.")
    ends_at: datetime
    comment: str = Field(default="", max_length=1000)

    @model_validator(mode="after")
    def _ends_after_start(self) -> SilenceIn:
        start = self.starts_at or datetime.now(UTC)
        if self.ends_at.tzinfo is None or (self.starts_at is not None and self.starts_at.tzinfo is None):
            raise ValueError("times need a UTC offset, e.g. 2026-07-01T08:00:00+08:00")
        if self.ends_at <= start:
            raise ValueError("ends_at must be after starts_at")
        return self


@dataclass(frozen=True, slots=True)
class Silence:
    id: int
    kind: SilenceKind
    matchers: Matchers
    starts_at: datetime
    ends_at: datetime
    author: str
    comment: str

    def active(self, now: datetime) -> bool:
        return self.starts_at <= now < self.ends_at

    def matches(self, labels: Labels) -> bool:
        return all(
            getattr(labels, key) == value
            for key, value in self.matchers.model_dump(exclude_none=True).items()
        )


def _from_row(row: SilenceRow) -> Silence:
    kind: SilenceKind = "maintenance" if row.kind == "maintenance" else "silence"
    return Silence(
        row.id,
        kind,
        Matchers.model_validate(row.matchers),
        row.starts_at,
        row.ends_at,
        row.author,
        row.comment,
    )


class SilenceStore:
    def __init__(self, db: Engine) -> None:
        self._db = db

    def add(self, silence: SilenceIn, author: str) -> Silence:
        now = datetime.now(UTC)
        row = SilenceRow(
            kind=silence.kind,
            matchers=silence.matchers.model_dump(exclude_none=True),
            starts_at=silence.starts_at or now,
            ends_at=silence.ends_at,
            author=author,
            comment=silence.comment,
            created_at=now,
        )
        with Session(self._db) as session, session.begin():
            session.add(row)
            session.flush()
            return _from_row(row)

    def current(self, now: datetime | None = None) -> list[Silence]:
        """Silences not yet ended (active or scheduled), soonest-ending first."""
        now = now or datetime.now(UTC)
        with Session(self._db) as session:
            rows = session.scalars(
                select(SilenceRow).where(SilenceRow.ends_at > now).order_by(SilenceRow.ends_at)
            )
            return [_from_row(r) for r in rows]

    def get(self, silence_id: int) -> Silence | None:
        with Session(self._db) as session:
            row = session.get(SilenceRow, silence_id)
            return _from_row(row) if row else None

    def expire(self, silence_id: int, now: datetime | None = None) -> bool:
        """End a silence now; False when there is no such silence still running."""
        now = now or datetime.now(UTC)
        with Session(self._db) as session, session.begin():
            result = session.execute(
                update(SilenceRow)
                .where(SilenceRow.id == silence_id, SilenceRow.ends_at > now)
                .values(ends_at=now)
            )
            return bool(result.rowcount)  # type: ignore[attr-defined]
