"""A release of the edge agent: its signed manifest, shared by the server that signs and serves it and
the gateway that verifies it before installing anything.

A release directory holds ``manifest.json`` (the exact bytes signed), ``manifest.sig`` (a raw 64-byte
Ed25519 signature over those bytes) and ``files/`` (the agent's wheel and its pinned dependency wheels).
The signature is checked over the bytes as received, before they are parsed; the manifest then names
every file with its size and SHA-256, so a file is trusted only after both match.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

MANIFEST_NAME = "manifest.json"
SIGNATURE_NAME = "manifest.sig"
FILES_DIR = "files"
SIGNATURE_BYTES = 64
MAX_MANIFEST_BYTES = 256 * 1024
"""A manifest of a few dozen wheels is a few kilobytes: anything far larger is not one."""
MAX_FILES = 200
MAX_FILE_BYTES = 512 * 1024 * 1024
"""One wheel; OpenCV's is under 100 MB. The per-file size in a manifest may not exceed it."""
MAX_KEY_BYTES = 16 * 1024
_CHUNK = 1024 * 1024

# Names end up as paths on the gateway: one component, no dot start, nothing a shell or pip misreads.
FILE_NAME = r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,199}$"
VERSION = r"^[0-9A-Za-z][0-9A-Za-z.+_-]{0,63}$"


class ReleaseError(ValueError):
    """A release that must not be installed (or cannot be built); the message says why."""


class ReleaseFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=FILE_NAME)
    size: int = Field(ge=0, le=MAX_FILE_BYTES)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")


class Manifest(BaseModel):
    """What a release is: its version, when and with which key it was signed, and every file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    format: Literal[1] = 1
    version: str = Field(pattern=VERSION)
    created_at: datetime
    key_id: str = Field(pattern=r"^[0-9a-f]{16}$")
    files: tuple[ReleaseFile, ...] = Field(min_length=1, max_length=MAX_FILES)

    @field_validator("files")
    @classmethod
    def _unique_names(cls, files: tuple[ReleaseFile, ...]) -> tuple[ReleaseFile, ...]:
        names = [f.name for f in files]
        if len(set(names)) != len(names):
            raise ValueError("a file is listed twice")
        return files

    @property
    def total_bytes(self) -> int:
        return sum(f.size for f in self.files)

    def file(self, name: str) -> ReleaseFile | None:
        return next((f for f in self.files if f.name == name), None)

    def to_bytes(self) -> bytes:
        """The bytes that are signed and served: sorted keys, no spaces, so a rebuild is identical."""
        data = self.model_dump(mode="json")
        return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def key_id(public_key: Ed25519PublicKey) -> str:
    """A short fingerprint of a public key, so a manifest says which key signed it."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def private_key_pem(key: Ed25519PrivateKey) -> str:
    """The signing key as unencrypted PKCS#8 PEM (the file holding it, 0600, is the secret)."""
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def public_key_pem(private_key: Ed25519PrivateKey) -> str:
    return (
        private_key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def _read_key_file(path: Path) -> bytes:
    try:
        with path.open("rb") as file:
            data = file.read(MAX_KEY_BYTES + 1)
    except OSError as err:
        raise ReleaseError(f"cannot read key file {path}: {err.strerror or err}") from err
    if len(data) > MAX_KEY_BYTES:
        raise ReleaseError(f"{path} is larger than {MAX_KEY_BYTES} bytes: not a key file")
    return data


def load_private_key(path: Path) -> Ed25519PrivateKey:
    data = _read_key_file(path)
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as err:
        raise ReleaseError(f"{path}: not an unencrypted PEM private key ({err})") from err
    if not isinstance(key, Ed25519PrivateKey):
        raise ReleaseError(f"{path}: not an Ed25519 key")
    return key


def load_public_key(path: Path) -> Ed25519PublicKey:
    data = _read_key_file(path)
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError) as err:
        raise ReleaseError(f"{path}: not a PEM public key ({err})") from err
    if not isinstance(key, Ed25519PublicKey):
        raise ReleaseError(f"{path}: not an Ed25519 public key")
    return key


def hash_file(path: Path) -> tuple[int, str]:
    """Size and SHA-256 of a file, read in chunks (a wheel can be larger than a gateway's free RAM)."""
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as file:
        while chunk := file.read(_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()


def build_manifest(
    version: str, files: Sequence[Path], private_key: Ed25519PrivateKey, created_at: datetime | None = None
) -> tuple[bytes, bytes]:
    """The manifest bytes of ``files`` and their signature."""
    entries = []
    for path in files:
        size, sha256 = hash_file(path)
        entries.append(ReleaseFile(name=path.name, size=size, sha256=sha256))
    try:
        manifest = Manifest(
            version=version,
            created_at=created_at or datetime.now(UTC),
            key_id=key_id(private_key.public_key()),
            files=tuple(sorted(entries, key=lambda f: f.name)),
        )
    except ValidationError as err:
        raise ReleaseError(f"release {version}: {_describe(err)}") from err
    data = manifest.to_bytes()
    return data, private_key.sign(data)


def _describe(err: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or 'manifest'}: {e['msg'].removeprefix('Value error, ')}"
        for e in err.errors()[:5]
    )


def parse_signed(data: bytes, signature: bytes, public_key: Ed25519PublicKey) -> Manifest:
    """The manifest in ``data`` once its signature verifies with ``public_key``; ReleaseError if not."""
    if len(data) > MAX_MANIFEST_BYTES:
        raise ReleaseError(f"manifest is {len(data)} bytes, more than {MAX_MANIFEST_BYTES}: refused")
    if len(signature) != SIGNATURE_BYTES:
        raise ReleaseError(f"signature is {len(signature)} bytes, not {SIGNATURE_BYTES}: refused")
    try:
        public_key.verify(signature, data)
    except InvalidSignature:
        raise ReleaseError(
            "manifest signature does not verify with the gateway's release key: refused"
        ) from None
    try:
        manifest = Manifest.model_validate_json(data)
    except ValidationError as err:
        raise ReleaseError(f"signed manifest is malformed: {_describe(err)}") from err
    if manifest.key_id != key_id(public_key):
        raise ReleaseError(f"manifest names key {manifest.key_id}, not the gateway's release key")
    return manifest


def verify_files(directory: Path, manifest: Manifest) -> None:
    """Every file of ``manifest`` is in ``directory`` with its size and SHA-256, and nothing else is."""
    try:
        present = {p.name: p for p in directory.iterdir()}
    except OSError as err:
        raise ReleaseError(f"cannot list {directory}: {err.strerror or err}") from err
    if extra := sorted(set(present) - {f.name for f in manifest.files}):
        raise ReleaseError(f"release {manifest.version}: file(s) not in the manifest: {', '.join(extra)}")
    for entry in manifest.files:
        path = present.get(entry.name)
        if path is None:
            raise ReleaseError(f"release {manifest.version}: {entry.name} is missing")
        if not path.is_file() or path.is_symlink():
            raise ReleaseError(f"release {manifest.version}: {entry.name} is not a regular file")
        size = path.stat().st_size
        if size != entry.size:  # before hashing: a wrong size needs no read of a large file
            raise ReleaseError(
                f"release {manifest.version}: {entry.name} is {size} bytes, the manifest says {entry.size}"
            )
        if hash_file(path)[1] != entry.sha256:
            raise ReleaseError(
                f"release {manifest.version}: {entry.name} does not match its SHA-256 in the manifest"
            )


def is_safe_version(version: str) -> bool:
    return re.fullmatch(VERSION, version) is not None


def is_safe_file_name(name: str) -> bool:
    return re.fullmatch(FILE_NAME, name) is not None
