"""The attachment store and the index of a case's photos.

Files are named by the SHA-256 of their content, in two-level folders (``ab/cd/abcd….jpg``): the same
photo uploaded twice is stored once, and a name can never point at other bytes. The store holds bytes
only; who may see a photo is decided by its row's case (see api/routes/attachments.py). A photo is
written to the store before its row commits and removed again if the commit fails, so there is never
a row without its file, nor (short of a crash between the two) a file without its row.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol, TypeVar
from urllib.parse import parse_qs, urlsplit

from sqlalchemy import event, select
from sqlalchemy.orm import Session

from cases.attachment_models import Attachment
from cases.photos import PreparedPhoto, make_thumbnail
from cases.workflow import InvalidAction
from common.atomic_files import replace_file

log = logging.getLogger(__name__)
_T = TypeVar("_T")
_KEY = re.compile(r"^[0-9a-f]{2}/[0-9a-f]{2}/[0-9a-f]{64}(\.thumb)?\.jpg$")


class AttachmentMissing(KeyError):
    """The store has no file under that key."""


class AttachmentStoreDown(RuntimeError):
    """The store could not be reached or refused the write (a full disk, a bucket that is down): the
    caller keeps nothing and says so; a retry later succeeds."""


class AttachmentStore(Protocol):
    """Where photo bytes live: the local filesystem by default, an S3-compatible bucket in production."""

    def put(self, key: str, data: bytes) -> None: ...

    def get(self, key: str) -> bytes:
        """The bytes under ``key``; AttachmentMissing when there are none."""
        ...

    def delete(self, key: str) -> None: ...

    def exists(self, key: str) -> bool: ...


def photo_key(sha256: str) -> str:
    return f"{sha256[:2]}/{sha256[2:4]}/{sha256}.jpg"


def thumb_key(sha256: str) -> str:
    return f"{sha256[:2]}/{sha256[2:4]}/{sha256}.thumb.jpg"


def check_key(key: str) -> str:
    """``key`` if it is a name this module makes; ValueError otherwise (no path can escape the store)."""
    if not _KEY.match(key):
        raise ValueError(f"not an attachment key: {key!r}")
    return key


class LocalStore:
    """Files under a directory (the data directory's ``attachments/`` by default), written atomically."""

    failures: tuple[type[Exception], ...] = (OSError,)  # a full disk, a lost mount, permissions

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, key: str) -> Path:
        return self.root / check_key(key)

    def put(self, key: str, data: bytes) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        replace_file(path, data)  # atomically: a reader never sees half a file

    def get(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            raise AttachmentMissing(key) from None

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()


class S3Store:
    """An S3-compatible bucket (MinIO, Ceph RGW, a cloud's object storage) through boto3.

    ``url``: ``s3://bucket?endpoint=http://host:9000&region=us-east-1&prefix=yiwang/``; the keys come
    from the usual AWS settings (environment, config file) or are given here.
    """

    def __init__(self, url: str, *, access_key: str | None = None, secret_key: str | None = None) -> None:
        import boto3  # type: ignore[import-untyped,import-not-found,unused-ignore]  # for buckets only
        from botocore.config import Config  # type: ignore[import-untyped,import-not-found,unused-ignore]
        from botocore.exceptions import (  # type: ignore[import-untyped,import-not-found,unused-ignore]
            BotoCoreError,
            ClientError,
        )

        self.failures: tuple[type[Exception], ...] = (BotoCoreError, ClientError)  # after boto3's retries

        parts = urlsplit(url)
        if parts.scheme != "s3" or not parts.netloc:
            raise ValueError(f"an S3 attachment URL looks like s3://bucket?endpoint=...; got {url!r}")
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        self.bucket = parts.netloc
        self.prefix = query.get("prefix", "")
        self._client: Any = boto3.client(
            "s3",
            endpoint_url=query.get("endpoint") or None,
            region_name=query.get("region", "us-east-1"),
            aws_access_key_id=access_key,
            aws_secret_access_key=secret_key,
            config=Config(
                s3={"addressing_style": "path"},
                connect_timeout=5,
                read_timeout=30,
                retries={"max_attempts": 3, "mode": "standard"},
            ),
        )

    def _name(self, key: str) -> str:
        return self.prefix + check_key(key)

    def put(self, key: str, data: bytes) -> None:
        try:
            self._put(key, data)
        except self._client.exceptions.NoSuchBucket:
            # A fresh MinIO (compose) has no bucket yet: make it once, on the first photo.
            self._client.create_bucket(Bucket=self.bucket)
            self._put(key, data)

    def _put(self, key: str, data: bytes) -> None:
        self._client.put_object(Bucket=self.bucket, Key=self._name(key), Body=data, ContentType="image/jpeg")

    def get(self, key: str) -> bytes:
        try:
            answer = self._client.get_object(Bucket=self.bucket, Key=self._name(key))
        except self._client.exceptions.NoSuchKey:
            raise AttachmentMissing(key) from None
        data: bytes = answer["Body"].read()
        return data

    def delete(self, key: str) -> None:
        self._client.delete_object(Bucket=self.bucket, Key=self._name(key))

    def exists(self, key: str) -> bool:
        from botocore.exceptions import ClientError  # type: ignore[import-untyped,import-not-found,unused-ignore]

        try:
            self._client.head_object(Bucket=self.bucket, Key=self._name(key))
        except ClientError as err:
            if err.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return False
            raise
        return True


def open_attachment_store(
    directory: Path, url: str = "", *, access_key: str | None = None, secret_key: str | None = None
) -> AttachmentStore:
    """The store the settings name: a bucket when ``url`` is an ``s3://`` URL, else ``directory``.
    Its failures are :class:`AttachmentStoreDown`, whichever store it is."""
    if url:
        return GuardedStore(S3Store(url, access_key=access_key, secret_key=secret_key))
    return GuardedStore(LocalStore(directory))


class GuardedStore:
    """A store whose own failures (``store.failures``) come out as :class:`AttachmentStoreDown`: one
    outcome for callers, a 503 that names the photo store, whether the disk or the bucket failed."""

    def __init__(self, store: LocalStore | S3Store) -> None:
        self.store = store

    def _guarded(self, doing: str, key: str, call: Callable[[], _T]) -> _T:
        try:
            return call()
        except AttachmentMissing:
            raise
        except self.store.failures as err:
            raise AttachmentStoreDown(f"the photo store failed to {doing} {key}: {err}") from err

    def put(self, key: str, data: bytes) -> None:
        self._guarded("write", key, lambda: self.store.put(key, data))

    def get(self, key: str) -> bytes:
        return self._guarded("read", key, lambda: self.store.get(key))

    def delete(self, key: str) -> None:
        self._guarded("delete", key, lambda: self.store.delete(key))

    def exists(self, key: str) -> bool:
        return self._guarded("look up", key, lambda: self.store.exists(key))


def save_photo(
    session: Session,
    store: AttachmentStore,
    *,
    case_id: int,
    photo: PreparedPhoto,
    actor: str,
    public: bool = False,
    now: datetime | None = None,
) -> Attachment:
    """Store ``photo`` and add its row to ``session`` (flushed: it has its id).

    The file is written first; if the session's transaction rolls back (the commit failed, the caller
    gave up), a file this call created is removed again.
    """
    sha = hashlib.sha256(photo.jpeg).hexdigest()
    key = photo_key(sha)
    created = not store.exists(key)
    if created:
        store.put(key, photo.jpeg)
        _remove_if_rolled_back(session, store, key)
    lat, lon = photo.gps if photo.gps is not None else (None, None)
    attachment = Attachment(
        case_id=case_id,
        sha256=sha,
        width=photo.width,
        height=photo.height,
        size=len(photo.jpeg),
        uploaded_by=actor,
        uploaded_at=now or datetime.now(UTC),
        public=public,
        lat=lat,
        lon=lon,
    )
    session.add(attachment)
    session.flush()
    return attachment


_NEW_FILES = "yiwang.attachments.new_files"  # session.info: files written in its open transaction


def _remove_if_rolled_back(session: Session, store: AttachmentStore, key: str) -> None:
    """Delete ``key`` from ``store`` if the session's transaction rolls back instead of committing."""
    pending: list[tuple[AttachmentStore, str]] | None = session.info.get(_NEW_FILES)
    if pending is None:
        pending = session.info[_NEW_FILES] = []

        def committed(_session: Session) -> None:
            pending.clear()

        def rolled_back(_session: Session) -> None:
            for written_to, written in pending:
                try:
                    written_to.delete(written)
                except AttachmentStoreDown as err:  # a file without a row: unseen, and named by content
                    log.warning("a photo of a rolled-back transaction stays in the store: %s", err)
            pending.clear()

        event.listen(session, "after_commit", committed)
        event.listen(session, "after_rollback", rolled_back)
    pending.append((store, key))


def attachments_of(session: Session, case_id: int) -> list[Attachment]:
    """The photos of a case, oldest first."""
    return list(
        session.scalars(select(Attachment).where(Attachment.case_id == case_id).order_by(Attachment.id))
    )


def case_position(session: Session, case_id: int) -> tuple[float, float] | None:
    """Where the case is by its photos: the first position an uploader chose to keep, or None."""
    return case_positions(session, [case_id]).get(case_id)


def case_positions(session: Session, case_ids: Iterable[int]) -> dict[int, tuple[float, float]]:
    """Where each case is by its photos (the first position an uploader chose to keep), in one query;
    cases with no kept position are left out."""
    rows = session.execute(
        select(Attachment.case_id, Attachment.lat, Attachment.lon)
        .where(
            Attachment.case_id.in_(list(case_ids)), Attachment.lat.is_not(None), Attachment.lon.is_not(None)
        )
        .order_by(Attachment.id)
    )
    found: dict[int, tuple[float, float]] = {}
    for case_id, lat, lon in rows:
        if lat is not None and lon is not None:  # so the query says; the type checker cannot know
            found.setdefault(case_id, (float(lat), float(lon)))
    return found


def foreign_attachments(session: Session, ids: Iterable[int], *, case_id: int, actor: str) -> list[int]:
    """Those of ``ids`` that are not photos of ``case_id`` uploaded by ``actor`` (empty: all are)."""
    wanted = set(ids)
    if not wanted:
        return []
    own = set(
        session.scalars(
            select(Attachment.id).where(
                Attachment.id.in_(wanted), Attachment.case_id == case_id, Attachment.uploaded_by == actor
            )
        )
    )
    return sorted(wanted - own)


def check_attachments(
    session: Session, case_id: int, action: str, actor: str, params: Mapping[str, Any] | None
) -> None:
    """InvalidAction unless each id in ``params["attachments"]`` is a photo ``actor`` uploaded to the case."""
    ids = (params or {}).get("attachments")
    if not ids:
        return
    foreign = foreign_attachments(session, ids, case_id=case_id, actor=actor)
    if foreign:
        named = ", ".join(str(i) for i in foreign)
        raise InvalidAction(
            f"{action}: attachments {named} are not photos you uploaded to case {case_id}; upload them first"
        )


def photo_bytes(store: AttachmentStore, attachment: Attachment, *, thumb: bool = False) -> bytes:
    """The stored JPEG of ``attachment``, or its thumbnail (made on first request, then kept)."""
    if not thumb:
        return store.get(photo_key(attachment.sha256))
    key = thumb_key(attachment.sha256)
    try:
        return store.get(key)
    except AttachmentMissing:
        small = make_thumbnail(store.get(photo_key(attachment.sha256)))
        store.put(key, small)
        return small
