"""Tables for public reporting channels: per-channel keys (#22).

A channel (the 12345 hotline, the public page, a mini-program) reports into its communities with its own
key, stored only as a digest. Every report filed through one leaves a ``PublicRequest``: the status
link's token (a digest too, so a database dump cannot follow anyone's report) and where it was.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Float, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from common.db import Base


class PublicChannel(Base):
    __tablename__ = "public_channels"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    key_digest: Mapped[str] = mapped_column(String(64), unique=True)
    communities: Mapped[list[str]] = mapped_column(JSON)  # where it may report; a town's, when given one
    town: Mapped[str | None] = mapped_column(String(64))
    serves_page: Mapped[bool] = mapped_column(default=False)  # the /report page files through it
    enabled: Mapped[bool] = mapped_column(default=True)
    created_by: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime]


class PublicRequest(Base):
    __tablename__ = "public_requests"

    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), primary_key=True)
    channel_id: Mapped[int] = mapped_column(ForeignKey("public_channels.id"), index=True)
    token_digest: Mapped[str] = mapped_column(String(64))
    building: Mapped[str | None] = mapped_column(String(64))
    lat: Mapped[float | None] = mapped_column(Float)
    lon: Mapped[float | None] = mapped_column(Float)
    created_at: Mapped[datetime]


# Every model declared here, for cases/schema.py (tables are created from this list).
MODELS: tuple[type[Base], ...] = (PublicChannel, PublicRequest)
