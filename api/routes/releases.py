"""Agent releases for the gateways: the signed manifest, its signature and each file, with HTTP Range.

A gateway authenticates with an API token limited to the ``releases`` scope
(``yiwang token issue <account> --scope releases``), so a token lifted from a gateway opens nothing
else. The files are served as stored by ``yiwang release add``; the gateway trusts them only after the
signature and every SHA-256 checked out, so this route need not be trusted with their integrity.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, status
from fastapi.responses import FileResponse
from pydantic_settings import BaseSettings, SettingsConfigDict

from api.deps import CurrentUser
from contract.release import FILES_DIR, MANIFEST_NAME, SIGNATURE_NAME, is_safe_file_name, is_safe_version

router = APIRouter(prefix="/api/v1/releases", tags=["releases"])


class ReleaseSettings(BaseSettings):
    """Where ``yiwang release add`` stores releases and the API serves them from."""

    model_config = SettingsConfigDict(env_prefix="YIWANG_", extra="ignore")

    release_dir: Path = Path("var/releases")


def release_dir() -> Path:
    return ReleaseSettings().release_dir


ReleaseDir = Annotated[Path, Depends(release_dir)]
_BYTES: dict[str, Any] = {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}
_NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"description": "No such release or file"}}


def _release(store: Path, version: str) -> Path:
    root = store / version
    # The names are checked before they touch the file system: no "..", no separators.
    if not is_safe_version(version) or not (root / MANIFEST_NAME).is_file():
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no release {version}")
    return root


@router.get(
    "/{version}/manifest",
    response_class=FileResponse,
    responses={200: {"content": {"application/json": {"schema": {"type": "object"}}}}, **_NOT_FOUND},
)
def release_manifest(version: str, _user: CurrentUser, store: ReleaseDir) -> FileResponse:
    """The release's manifest: version, every file with its size and SHA-256, the signing key's id."""
    return FileResponse(_release(store, version) / MANIFEST_NAME, media_type="application/json")


@router.get(
    "/{version}/signature", response_class=FileResponse, responses={200: {"content": _BYTES}, **_NOT_FOUND}
)
def release_signature(version: str, _user: CurrentUser, store: ReleaseDir) -> FileResponse:
    """The raw 64-byte Ed25519 signature over the manifest's exact bytes."""
    return FileResponse(_release(store, version) / SIGNATURE_NAME, media_type="application/octet-stream")


@router.get(
    "/{version}/files/{name}",
    response_class=FileResponse,
    responses={
        200: {"content": _BYTES},
        206: {"description": "The rest of the file from the requested offset", "content": _BYTES},
        416: {"description": "The range starts beyond the end of the file"},
        **_NOT_FOUND,
    },
)
def release_file(version: str, name: str, _user: CurrentUser, store: ReleaseDir) -> FileResponse:
    """One file of the release; ``Range: bytes=N-`` resumes an interrupted download (206)."""
    root = _release(store, version)
    path = root / FILES_DIR / name
    if not is_safe_file_name(name) or not path.is_file():
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"release {version} has no file {name}")
    return FileResponse(path, media_type="application/octet-stream")
