"""Tables for photos as evidence (the attachment index) and idempotency keys of retried writes (#22)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Float, ForeignKey, Integer, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from common.db import Base


class Attachment(Base):
    """A photo of a case. The file lives in the attachment store under its content hash; the row says
    whose case it belongs to, who took it, and whether an operator made it public (Open311)."""

    __tablename__ = "case_attachments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    sha256: Mapped[str] = mapped_column(String(64), index=True)  # of the stored JPEG: its name in the store
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    size: Mapped[int] = mapped_column(Integer)  # bytes of the stored JPEG
    uploaded_by: Mapped[str] = mapped_column(String(128))
    uploaded_at: Mapped[datetime]
    public: Mapped[bool] = mapped_column(default=False)
    # The camera's position, kept only when the uploader allowed it.
    lat: Mapped[float | None] = mapped_column(Float)
    lon: Mapped[float | None] = mapped_column(Float)


class IdempotencyKey(Base):
    """A write sent with an ``Idempotency-Key``: what was asked (method, path, body hash) and the first
    answer. ``status`` is None while the first request is still running."""

    __tablename__ = "idempotency_keys"
    __table_args__ = (UniqueConstraint("identity", "key", name="uq_idempotency_keys_identity_key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    identity: Mapped[str] = mapped_column(String(160))  # whose key: "user:<username>"
    key: Mapped[str] = mapped_column(String(128))
    method: Mapped[str] = mapped_column(String(8))
    path: Mapped[str] = mapped_column(String(512))
    body_sha256: Mapped[str] = mapped_column(String(64))
    status: Mapped[int | None] = mapped_column(Integer)
    content_type: Mapped[str | None] = mapped_column(String(128))
    location: Mapped[str | None] = mapped_column(String(1000))  # a redirect's target (a console form's)
    response_body: Mapped[bytes | None] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(index=True)


# Every model declared here, for cases/schema.py (tables are created from this list).
MODELS: tuple[type[Base], ...] = (Attachment, IdempotencyKey)
