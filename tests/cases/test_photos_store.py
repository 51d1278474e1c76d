"""The attachment store: files by content hash, nothing half-stored, the same contract on the local
directory and on an S3-compatible bucket (boto3 against moto's S3 server, over HTTP on loopback)."""

from __future__ import annotations

import hashlib
import socket
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import boto3  # type: ignore[import-untyped]
import pytest
from moto.server import ThreadedMotoServer
from sqlalchemy import Engine, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from cases.actions import CaseFlow, Report
from cases.attachment_models import Attachment, IdempotencyKey
from cases.attachments import (
    AttachmentMissing,
    AttachmentStore,
    LocalStore,
    S3Store,
    attachments_of,
    photo_bytes,
    photo_key,
    save_photo,
)
from cases.photos import prepare_photo
from cases.policy import CasePolicy
from cases.schema import create_schema
from tests.cases.test_photos_samples import camera_jpeg

CONFIG = Path(__file__).resolve().parents[2] / "config"
BUCKET = "yiwang-photos"
NOW = datetime(2026, 12, 5, 8, 0, tzinfo=UTC)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def s3_url() -> Iterator[str]:
    """An S3 endpoint on loopback with an empty bucket (moto's server: no real S3 server installs here)."""
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    boto3.client(
        "s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="k", aws_secret_access_key="s"
    ).create_bucket(Bucket=BUCKET)
    yield f"s3://{BUCKET}?endpoint={endpoint}&prefix=cases/"
    server.stop()


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> AttachmentStore:
    if request.param == "local":
        return LocalStore(tmp_path / "photos")
    return S3Store(request.getfixturevalue("s3_url"), access_key="k", secret_key="s")


@pytest.fixture
def case_id(db: Engine) -> int:
    create_schema(db)
    policy = CasePolicy.load(CONFIG)
    report = Report("zhuganxiang", "g-north", "fire_lane_blocked", "车辆占用消防通道")
    case, _ = CaseFlow(db, policy).report(report, actor="op", now=NOW)
    return case


def test_the_store_keeps_bytes_under_their_key(store: AttachmentStore) -> None:
    key = photo_key("ab" * 32)
    assert not store.exists(key)
    with pytest.raises(AttachmentMissing):
        store.get(key)

    store.put(key, b"jpeg bytes")

    assert store.exists(key) and store.get(key) == b"jpeg bytes"
    store.delete(key)
    assert not store.exists(key)
    with pytest.raises(ValueError, match="not an attachment key"):
        store.put("../../etc/passwd", b"x")


def test_a_bucket_that_does_not_exist_yet_is_made_on_the_first_photo(s3_url: str) -> None:
    store = S3Store(s3_url.replace(BUCKET, "fresh-bucket"), access_key="k", secret_key="s")
    key = photo_key("cd" * 32)

    store.put(key, b"first photo")

    assert store.get(key) == b"first photo"


def test_a_committed_photo_has_its_row_and_its_file(db: Engine, store: AttachmentStore, case_id: int) -> None:
    photo = prepare_photo(camera_jpeg())

    with Session(db) as session, session.begin():
        row = save_photo(session, store, case_id=case_id, photo=photo, actor="li.na", now=NOW)
        assert row.id is not None

    with Session(db) as session:
        (stored,) = attachments_of(session, case_id)
        assert photo_bytes(store, stored) == photo.jpeg
        thumb = photo_bytes(store, stored, thumb=True)
        assert thumb.startswith(b"\xff\xd8") and photo_bytes(store, stored, thumb=True) == thumb


def test_a_failed_commit_leaves_neither_row_nor_file(
    db: Engine, store: AttachmentStore, case_id: int
) -> None:
    photo = prepare_photo(camera_jpeg(orientation=6))
    clash = {"identity": "user:x", "key": "k", "method": "POST", "path": "/", "body_sha256": "0" * 64}
    with Session(db) as session, session.begin():
        session.add(IdempotencyKey(**clash, created_at=NOW))

    key = photo_key(hashlib.sha256(photo.jpeg).hexdigest())

    def store_then_fail() -> None:
        with Session(db) as session, session.begin():
            save_photo(session, store, case_id=case_id, photo=photo, actor="li.na", now=NOW)
            assert store.exists(key)  # written before the row commits
            session.add(IdempotencyKey(**clash, created_at=NOW))  # the commit fails on this

    with pytest.raises(IntegrityError):
        store_then_fail()

    with Session(db) as session:
        assert session.scalars(select(Attachment)).all() == []
    assert not store.exists(key)


def test_a_rollback_keeps_a_file_that_was_there_before(
    db: Engine, store: AttachmentStore, case_id: int
) -> None:
    photo = prepare_photo(camera_jpeg(orientation=3))
    with Session(db) as session, session.begin():
        save_photo(session, store, case_id=case_id, photo=photo, actor="li.na", now=NOW)

    with Session(db) as session:
        session.begin()
        save_photo(session, store, case_id=case_id, photo=photo, actor="wang.wei", now=NOW)
        session.rollback()

    assert store.exists(
        photo_key(hashlib.sha256(photo.jpeg).hexdigest())
    )  # the same bytes belong to the committed row
    with Session(db) as session:
        assert [a.uploaded_by for a in attachments_of(session, case_id)] == ["li.na"]
