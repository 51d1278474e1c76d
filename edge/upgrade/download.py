"""Fetch a signed release from the server into a staging directory, resuming after a network cut.

The gateway downloads with the standard library (urllib over TLS, HTTP Range for resume), not httpx:
a gateway installs without the server stack (import-linter forbids httpx in ``edge/``), and urllib is
always there, even in the venv of an agent too broken to import anything else.

Staging layout: ``<staging>/manifest.json``, ``manifest.sig``, ``partial/<name>`` while a file is
coming, ``files/<name>`` once it is complete. Nothing in ``files/`` is trusted before
:func:`contract.release.verify_files` checked it against the verified manifest.
"""

from __future__ import annotations

import http.client
import logging
import shutil
import ssl
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from contract.release import (
    FILES_DIR,
    MANIFEST_NAME,
    MAX_MANIFEST_BYTES,
    SIGNATURE_BYTES,
    SIGNATURE_NAME,
    Manifest,
    ReleaseError,
    parse_signed,
    verify_files,
)

log = logging.getLogger(__name__)

DISK_FACTOR = 3.0
"""Free space wanted per byte of release: the download, the installed venv (unpacked wheels are about
twice their size), and headroom so the spool never finds a full disk because of an upgrade."""
_CHUNK = 64 * 1024


class DownloadError(Exception):
    """The release could not be fetched (network, server, disk); the message says why."""


@dataclass(frozen=True, slots=True)
class ReleaseServer:
    """Where releases come from: ``https://host/api/v1/releases``, a token with the releases scope."""

    base_url: str
    token: str
    tls: ssl.SSLContext
    timeout_s: float = 30.0
    attempts: int = 5
    """Connection attempts per file; each one resumes where the last one was cut."""
    retry_pause_s: float = 2.0

    def __post_init__(self) -> None:
        if urllib.parse.urlsplit(self.base_url).scheme != "https":
            raise DownloadError(f"release server {self.base_url}: only https is accepted")

    def url(self, version: str, *parts: str) -> str:
        quoted = "/".join(urllib.parse.quote(p, safe="") for p in (version, *parts))
        return f"{self.base_url.rstrip('/')}/{quoted}"


def tls_context(ca_file: Path | None) -> ssl.SSLContext:
    """Verify the server against ``ca_file`` (a private CA) or the system's roots; never unverified."""
    try:
        return ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
    except (OSError, ssl.SSLError) as err:
        raise DownloadError(f"CA file {ca_file}: {err}") from err


def _open(server: ReleaseServer, url: str, offset: int = 0) -> http.client.HTTPResponse:
    headers = {"Authorization": f"Bearer {server.token}"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    request = urllib.request.Request(url, headers=headers)  # noqa: S310 - https only, checked above
    try:
        response: http.client.HTTPResponse = urllib.request.urlopen(  # noqa: S310
            request, timeout=server.timeout_s, context=server.tls
        )
    except urllib.error.HTTPError as err:
        if err.code == 416:  # the partial file is already whole (or longer): the caller decides
            raise
        raise DownloadError(f"{url}: HTTP {err.code} {err.reason}") from None
    return response


def fetch_small(server: ReleaseServer, url: str, limit: int) -> bytes:
    """A small document (manifest, signature), refused beyond ``limit`` bytes before reading it all."""
    last: Exception | None = None
    for attempt in range(server.attempts):
        try:
            with _open(server, url) as response:
                data: bytes = response.read(limit + 1)
        except (OSError, http.client.HTTPException) as err:
            last = err
            time.sleep(server.retry_pause_s * attempt)
            continue
        if len(data) > limit:
            raise DownloadError(f"{url}: more than {limit} bytes, refused")
        return data
    raise DownloadError(f"{url}: {last}")


def fetch_file(server: ReleaseServer, url: str, partial: Path, size: int) -> None:
    """``partial`` grows to exactly ``size`` bytes, resuming with Range after each cut connection."""
    last: Exception | None = None
    for attempt in range(server.attempts):
        have = partial.stat().st_size if partial.exists() else 0
        if have > size:
            partial.unlink()  # not this file: start over
            have = 0
        if have == size:
            return
        try:
            response = _open(server, url, offset=have)
        except urllib.error.HTTPError:  # 416 on a resume: what we have is not a prefix of it
            partial.unlink(missing_ok=True)
            last = DownloadError(f"{url}: range {have}- not satisfiable, starting over")
            continue
        except (OSError, http.client.HTTPException) as err:
            last = err
            time.sleep(server.retry_pause_s * attempt)
            continue
        try:
            with response:
                resumed = response.status == 206
                if have and not resumed:
                    log.info("upgrade: %s ignores Range; downloading %s again", url, partial.name)
                    have = 0
                with partial.open("r+b" if resumed and have else "wb") as out:
                    out.seek(have)
                    out.truncate()
                    while chunk := response.read(_CHUNK):
                        have += len(chunk)
                        if have > size:  # checked while streaming: a lying server cannot fill the disk
                            raise DownloadError(f"{url}: more than the manifest's {size} bytes, refused")
                        out.write(chunk)
        except (OSError, http.client.HTTPException) as err:
            last = err
            log.info("upgrade: %s cut at %d of %d bytes (%s); resuming", partial.name, have, size, err)
            time.sleep(server.retry_pause_s * attempt)
            continue
    if partial.exists() and partial.stat().st_size == size:
        return
    raise DownloadError(f"{url}: gave up after {server.attempts} attempts: {last}")


def check_disk(directory: Path, manifest: Manifest, factor: float = DISK_FACTOR) -> None:
    """Refuse before downloading when the disk holding ``directory`` lacks room for the release."""
    needed = int(manifest.total_bytes * factor)
    free = shutil.disk_usage(directory).free
    if free < needed:
        raise DownloadError(
            f"release {manifest.version} needs {needed // 1_048_576} MiB free "
            f"({manifest.total_bytes // 1_048_576} MiB × {factor:g}); {directory} has {free // 1_048_576} MiB"
        )


def download_release(
    server: ReleaseServer,
    version: str,
    staging: Path,
    public_key: Ed25519PublicKey,
    disk_factor: float = DISK_FACTOR,
) -> Manifest:
    """Fetch and verify release ``version`` into ``staging``; its files are in ``staging/files``.

    ReleaseError: the release is not trustworthy (signature, hash, size, extra file): refused.
    DownloadError: it could not be fetched (network, server, disk): try again later.
    """
    staging.mkdir(parents=True, exist_ok=True)
    data = fetch_small(server, server.url(version, "manifest"), MAX_MANIFEST_BYTES)
    signature = fetch_small(server, server.url(version, "signature"), SIGNATURE_BYTES)
    manifest = parse_signed(data, signature, public_key)
    if manifest.version != version:
        raise ReleaseError(f"asked for release {version}, the signed manifest is of {manifest.version}")
    check_disk(staging, manifest, disk_factor)
    (staging / MANIFEST_NAME).write_bytes(data)
    (staging / SIGNATURE_NAME).write_bytes(signature)
    files = staging / FILES_DIR
    partial = staging / "partial"
    files.mkdir(exist_ok=True)
    partial.mkdir(exist_ok=True)
    for stale in files.iterdir():
        if manifest.file(stale.name) is None:
            stale.unlink()  # from another release staged here before
    for entry in manifest.files:
        done = files / entry.name
        if done.exists() and done.stat().st_size == entry.size:
            continue  # verified with the rest below
        fetch_file(server, server.url(version, "files", entry.name), partial / entry.name, entry.size)
        (partial / entry.name).replace(done)
    verify_files(files, manifest)
    return manifest
