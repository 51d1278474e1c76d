"""Downloading a release over real HTTPS: resumed after a cut connection, verified before it is kept,
refused when the disk is too small, the certificate unknown or the bytes not the signed ones."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from contract.release import FILES_DIR, ReleaseError
from edge.upgrade.download import DownloadError, ReleaseServer, download_release, tls_context
from tests.edge.upgrade.release_server import TOKEN, ReleaseHttps, serve_releases
from tests.edge.upgrade.releases import make_release

KEY = Ed25519PrivateKey.generate()
WHEEL = "yiwang-0.2.0-py3-none-any.whl"


@pytest.fixture
def https(tmp_path: Path) -> Iterator[ReleaseHttps]:
    store = tmp_path / "store"
    make_release(store, "0.2.0", KEY, tmp_path)
    certs = tmp_path / "certs"
    certs.mkdir()
    with serve_releases(store, certs) as served:
        yield served


def server(https: ReleaseHttps, token: str = TOKEN, ca: Path | None = None) -> ReleaseServer:
    return ReleaseServer(https.url, token, tls_context(ca or https.ca), retry_pause_s=0.01)


def test_a_release_is_fetched_and_verified(https: ReleaseHttps, tmp_path: Path) -> None:
    staging = tmp_path / "staging"
    manifest = download_release(server(https), "0.2.0", staging, KEY.public_key())
    assert manifest.version == "0.2.0"
    assert (staging / FILES_DIR / WHEEL).read_bytes() == (
        https.store / "0.2.0" / FILES_DIR / WHEEL
    ).read_bytes()


def test_a_download_cut_mid_file_resumes_where_it_stopped(https: ReleaseHttps, tmp_path: Path) -> None:
    https.faults.cut_after[WHEEL] = 20_000
    download_release(server(https), "0.2.0", tmp_path / "staging", KEY.public_key())
    wheel_requests = [r for path, r in https.faults.requests if path.endswith(WHEEL)]
    assert wheel_requests == [None, "bytes=20000-"]  # the second request asked only for the rest


def test_a_server_ignoring_range_gets_the_whole_file_again(https: ReleaseHttps, tmp_path: Path) -> None:
    https.faults.cut_after[WHEEL] = 20_000
    https.faults.ignore_range = True
    staging = tmp_path / "staging"
    download_release(server(https), "0.2.0", staging, KEY.public_key())
    assert (staging / FILES_DIR / WHEEL).stat().st_size == 60_000


def test_an_interrupted_download_resumes_in_the_next_attempt(https: ReleaseHttps, tmp_path: Path) -> None:
    staging = tmp_path / "staging"
    partial = staging / "partial"
    partial.mkdir(parents=True)
    original = (https.store / "0.2.0" / FILES_DIR / WHEEL).read_bytes()
    (partial / WHEEL).write_bytes(original[:12_345])  # what a power cut left behind
    download_release(server(https), "0.2.0", staging, KEY.public_key())
    assert ("/api/v1/releases/0.2.0/files/" + WHEEL, "bytes=12345-") in https.faults.requests


def test_a_tampered_file_on_the_server_is_refused(https: ReleaseHttps, tmp_path: Path) -> None:
    wheel = https.store / "0.2.0" / FILES_DIR / WHEEL
    data = bytearray(wheel.read_bytes())
    data[-1] ^= 0xFF
    wheel.write_bytes(bytes(data))
    with pytest.raises(ReleaseError, match="does not match its SHA-256"):
        download_release(server(https), "0.2.0", tmp_path / "staging", KEY.public_key())


def test_a_file_longer_than_its_manifest_is_cut_off_while_streaming(
    https: ReleaseHttps, tmp_path: Path
) -> None:
    wheel = https.store / "0.2.0" / FILES_DIR / WHEEL
    with wheel.open("ab") as out:
        out.write(b"\0" * 1_000_000)
    staging = tmp_path / "staging"
    with pytest.raises(DownloadError, match="more than the manifest's 60000 bytes"):
        download_release(server(https), "0.2.0", staging, KEY.public_key())
    assert (staging / "partial" / WHEEL).stat().st_size <= 60_000


def test_not_enough_disk_is_refused_before_any_file_is_fetched(https: ReleaseHttps, tmp_path: Path) -> None:
    with pytest.raises(DownloadError, match=r"needs .* MiB free"):
        download_release(server(https), "0.2.0", tmp_path / "staging", KEY.public_key(), disk_factor=1e12)
    assert not any("/files/" in path for path, _ in https.faults.requests)


def test_a_server_without_our_ca_is_refused(https: ReleaseHttps, tmp_path: Path) -> None:
    untrusted = ReleaseServer(https.url, TOKEN, ssl.create_default_context(), attempts=1)
    with pytest.raises(DownloadError, match="CERTIFICATE_VERIFY_FAILED"):
        download_release(untrusted, "0.2.0", tmp_path / "staging", KEY.public_key())


def test_a_wrong_token_and_plain_http_are_refused(https: ReleaseHttps, tmp_path: Path) -> None:
    with pytest.raises(DownloadError, match="HTTP 401"):
        download_release(server(https, token="yw_wrong"), "0.2.0", tmp_path / "s", KEY.public_key())
    with pytest.raises(DownloadError, match="only https"):
        ReleaseServer(https.url.replace("https", "http"), TOKEN, tls_context(https.ca))


def test_a_release_signed_with_another_key_is_refused(https: ReleaseHttps, tmp_path: Path) -> None:
    other = Ed25519PrivateKey.generate()
    with pytest.raises(ReleaseError, match="signature does not verify"):
        download_release(server(https), "0.2.0", tmp_path / "staging", other.public_key())
    assert not any("/files/" in path for path, _ in https.faults.requests)
