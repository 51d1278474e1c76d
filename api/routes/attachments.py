"""Photos as evidence: upload, list and serve a case's attachments, in the user's jurisdiction only (#22).

An upload is refused whole or stored whole: every photo of the request is checked and re-encoded
before the first is stored, and all of them commit in one transaction. Photos are served by this
route only, never as static files: a photo outside the user's jurisdiction does not exist (404).
"""

from __future__ import annotations

import logging
import re
import secrets
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, HTTPException, Query, Request, status
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.accounts import User, grant_for_token
from api.console.i18n import TEXT
from api.console.web import language, session_user
from api.deps import CurrentUser, Resources, ResourcesDep
from api.errors import problem
from api.params import RowId
from api.scope import case_filter, may_publish_photo
from cases.attachment_models import Attachment
from cases.attachments import (
    AttachmentMissing,
    AttachmentStoreDown,
    attachments_of,
    photo_bytes,
    save_photo,
)
from cases.models import Case
from cases.photos import (
    MAX_PHOTO_BYTES,
    MAX_PHOTOS_PER_REQUEST,
    PhotoRefused,
    PreparedPhoto,
    prepare_photo,
    too_large,
)

log = logging.getLogger(__name__)
router = APIRouter(tags=["attachments"])

UPLOAD_PATH = re.compile(r"^/(?:api/v1|console)/cases/[0-9]{1,10}/attachments$")
# A whole upload: its photos at their largest, and room for the multipart framing and a few fields.
UPLOAD_MAX_BYTES = MAX_PHOTOS_PER_REQUEST * MAX_PHOTO_BYTES + 64 * 1024
BODY_LIMITS = ((UPLOAD_PATH, UPLOAD_MAX_BYTES),)
"""For api.body_limit.BodyLimit: uploads may be larger than the app's other bodies."""
PHOTO_CACHE_S = 3600  # a photo's bytes never change under its id; the browser may keep it an hour
FORM_FIELDS = 4  # keep_gps and little else besides the files
STORE_DOWN_RETRY_S = 30
STORE_DOWN = "the photo store is unavailable: nothing was kept, try again later"


def photo_store_down(_request: Request, err: Exception) -> Response:
    """The app's handler for AttachmentStoreDown: 503, nothing kept, try again (the cause is logged)."""
    log.error("%s", err)
    return _store_down_answer(None)


def _store_down_answer(lang: str | None) -> JSONResponse:
    answer = refusal(status.HTTP_503_SERVICE_UNAVAILABLE, "photo_store_down", STORE_DOWN, lang)
    answer.headers["Retry-After"] = str(STORE_DOWN_RETRY_S)
    return answer


class AttachmentOut(BaseModel):
    id: int
    url: str
    thumb_url: str
    width: int
    height: int
    bytes: int
    uploaded_by: str
    uploaded_at: datetime
    public: bool


class UploadOut(AttachmentOut):
    """The first photo of the upload at the top (one photo per upload is the usual case), all in ``items``."""

    items: list[AttachmentOut]


class PublicIn(BaseModel):
    public: bool = True


def attachment_out(row: Attachment) -> AttachmentOut:
    return AttachmentOut(
        id=row.id,
        url=f"/attachments/{row.id}",
        thumb_url=f"/attachments/{row.id}?size=thumb",
        width=row.width,
        height=row.height,
        bytes=row.size,
        uploaded_by=row.uploaded_by,
        uploaded_at=row.uploaded_at,
        public=row.public,
    )


def refusal(status_code: int, key: str, detail: str, lang: str | None = None) -> JSONResponse:
    """An error answer: ``detail`` in English for API clients, ``key`` for the console's catalogue, and
    for a console request the words in the page's language (``message``)."""
    body: dict[str, Any] = {"detail": detail, "key": key}
    if lang is not None:
        body["message"] = TEXT[lang].get(key, detail)
    return JSONResponse(body, status_code=status_code)


def _case_in_scope(resources: Resources, user: User, case_id: int) -> Case | None:
    with Session(resources.db) as session:
        return session.scalars(
            select(Case).where(Case.id == case_id, case_filter(user, resources.policy))
        ).first()


def _store(
    resources: Resources, case_id: int, photos: list[PreparedPhoto], actor: str
) -> list[AttachmentOut]:
    """All photos in one transaction: a failed commit removes the files it wrote (see save_photo)."""
    with Session(resources.db) as session, session.begin():
        rows = [
            save_photo(session, resources.attachments, case_id=case_id, photo=photo, actor=actor)
            for photo in photos
        ]
        return [attachment_out(row) for row in rows]


async def _upload(
    request: Request, resources: Resources, user: User, case_id: int, lang: str | None
) -> JSONResponse:
    request.state.actor = user.username  # for the audit log
    if await run_in_threadpool(_case_in_scope, resources, user, case_id) is None:
        return refusal(404, "photo_case_not_found", f"case {case_id} not found", lang)
    try:
        form = await request.form(max_files=MAX_PHOTOS_PER_REQUEST, max_fields=FORM_FIELDS)
    except StarletteHTTPException as err:  # what Starlette's form parser raises
        if err.status_code != status.HTTP_400_BAD_REQUEST:
            raise  # a body over the limit: BodyLimit answers 413
        if "files" in str(err.detail).lower():
            return refusal(
                422,
                "photo_too_many",
                f"at most {MAX_PHOTOS_PER_REQUEST} photos per upload; nothing was stored",
                lang,
            )
        return refusal(400, "photo_none", f"the upload is not a readable form: {err.detail}", lang)
    try:
        files = [value for _, value in form.multi_items() if isinstance(value, UploadFile)]
        if not files:
            return refusal(422, "photo_none", "no photo: send it as the multipart field 'file'", lang)
        keep_gps = str(form.get("keep_gps") or "").lower() in ("true", "1", "on", "yes")
        photos: list[PreparedPhoto] = []
        for number, upload in enumerate(files, start=1):
            try:
                if upload.size is not None and upload.size > MAX_PHOTO_BYTES:
                    raise too_large(upload.size)  # spooled to disk by the parser, never read
                data = await upload.read(MAX_PHOTO_BYTES + 1)
                photos.append(await run_in_threadpool(prepare_photo, data, keep_gps=keep_gps))
            except PhotoRefused as refused:
                which = f"photo {number} of {len(files)}" if len(files) > 1 else "the photo"
                detail = f"{which}: {refused.message}; nothing was stored"
                return refusal(refused.status, refused.key, detail, lang)
    finally:
        await form.close()
    try:
        stored = await run_in_threadpool(_store, resources, case_id, photos, user.username)
    except AttachmentStoreDown as err:
        log.error("%s", err)
        return _store_down_answer(lang)
    answer = UploadOut(**stored[0].model_dump(), items=stored)
    return JSONResponse(answer.model_dump(mode="json"), status_code=status.HTTP_201_CREATED)


UPLOAD_RESPONSES: dict[int | str, dict[str, Any]] = {
    201: {"model": UploadOut, "description": "Stored; the photos' ids go into an action's attachments"},
    404: problem("No such case in your jurisdiction"),
    413: problem("A photo over 10 MB, or the upload over its limit"),
    422: problem("Not a photo, damaged, too many pixels, none sent, or more than 3"),
    503: problem("The photo store is unavailable: nothing was stored, try again later"),
}
UPLOAD_BODY = {
    "requestBody": {
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "file": {"type": "array", "items": {"type": "string", "format": "binary"}},
                        "keep_gps": {"type": "boolean"},
                    },
                    "required": ["file"],
                }
            }
        }
    }
}


@router.post(
    "/api/v1/cases/{case_id}/attachments",
    status_code=status.HTTP_201_CREATED,
    response_model=UploadOut,
    responses=UPLOAD_RESPONSES,
    openapi_extra=UPLOAD_BODY,
)
async def upload_photos(
    case_id: RowId, request: Request, resources: ResourcesDep, user: CurrentUser
) -> Response:
    """Attach up to 3 photos (multipart field ``file``; ``keep_gps=true`` keeps the camera's position)."""
    return await _upload(request, resources, user, case_id, None)


@router.post(
    "/console/cases/{case_id}/attachments",
    status_code=status.HTTP_201_CREATED,
    response_model=UploadOut,
    responses={
        **UPLOAD_RESPONSES,
        401: problem("Not signed in"),
        403: problem("Missing or wrong CSRF token"),
    },
    openapi_extra=UPLOAD_BODY,
    include_in_schema=False,
)
async def upload_photos_console(case_id: RowId, request: Request, resources: ResourcesDep) -> Response:
    """The console's twin of the upload: the console session, its CSRF token in ``X-CSRF-Token``."""
    lang = language(request)
    user = await run_in_threadpool(session_user, request, resources)
    if user is None:
        return refusal(401, "photo_sign_in", "sign in to the console first", lang)
    expected = request.session.get("csrf")
    submitted = request.headers.get("x-csrf-token", "")
    if not isinstance(expected, str) or not secrets.compare_digest(expected.encode(), submitted.encode()):
        return refusal(403, "photo_csrf", "missing or wrong CSRF token (X-CSRF-Token); reload the page", lang)
    return await _upload(request, resources, user, case_id, lang)


def _caller(request: Request, resources: Resources) -> User | None:
    """A bearer token's account (for the paths its scope allows), else the console session's."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        grant = grant_for_token(resources.db, token.strip())
        return grant.user if grant is not None and grant.allows(request.url.path) else None
    return session_user(request, resources)


def _visible_attachment(resources: Resources, user: User, attachment_id: int) -> Attachment | None:
    with Session(resources.db) as session:
        return session.scalars(
            select(Attachment)
            .join(Case, Case.id == Attachment.case_id)
            .where(Attachment.id == attachment_id, case_filter(user, resources.policy))
        ).first()


@router.get(
    "/attachments/{attachment_id}",
    response_class=Response,
    responses={
        200: {"content": {"image/jpeg": {}}, "description": "The photo (or its thumbnail) as JPEG"},
        401: problem("Neither a valid bearer token nor a console session"),
        404: problem("No such photo in your jurisdiction"),
    },
)
def serve_photo(
    attachment_id: RowId,
    request: Request,
    resources: ResourcesDep,
    size: Annotated[Literal["full", "thumb"], Query(description="thumb: long edge ≤ 320 px")] = "full",
) -> Response:
    user = _caller(request, resources)
    if user is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "a bearer token or a console session is required",
            headers={"WWW-Authenticate": "Bearer"},
        )
    request.state.actor = user.username
    row = _visible_attachment(resources, user, attachment_id)
    if row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"photo {attachment_id} not found")
    try:
        data = photo_bytes(resources.attachments, row, thumb=size == "thumb")
    except AttachmentMissing as err:  # the index names a file the store lost: say so, do not pretend
        raise HTTPException(
            status.HTTP_404_NOT_FOUND, f"photo {attachment_id} is missing from the store"
        ) from err
    suffix = "-thumb" if size == "thumb" else ""
    return Response(
        data,
        media_type="image/jpeg",
        headers={
            "X-Content-Type-Options": "nosniff",
            "Cache-Control": f"private, max-age={PHOTO_CACHE_S}",
            "Content-Disposition": f'inline; filename="case-{row.case_id}-photo-{row.id}{suffix}.jpg"',
            "ETag": f'"{row.sha256[:32]}{suffix}"',
        },
    )


@router.get(
    "/api/v1/cases/{case_id}/attachments",
    response_model=list[AttachmentOut],
    responses={404: problem("No such case in your jurisdiction")},
)
def list_photos(case_id: RowId, resources: ResourcesDep, user: CurrentUser) -> list[AttachmentOut]:
    if _case_in_scope(resources, user, case_id) is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"case {case_id} not found")
    with Session(resources.db) as session:
        return [attachment_out(row) for row in attachments_of(session, case_id)]


@router.post(
    "/api/v1/attachments/{attachment_id}/public",
    response_model=AttachmentOut,
    responses={
        403: problem("Only district staff or the town's operator publish photos"),
        404: problem("No such photo in your jurisdiction"),
    },
)
def publish_photo(
    attachment_id: RowId,
    resources: ResourcesDep,
    user: CurrentUser,
    body: Annotated[PublicIn | None, Body()] = None,
) -> AttachmentOut:
    """Mark a photo public (Open311 may then show it as ``media_url``), or private again with
    ``{"public": false}``."""
    wanted = body.public if body is not None else True
    with Session(resources.db) as session, session.begin():
        row = session.scalars(
            select(Attachment)
            .join(Case, Case.id == Attachment.case_id)
            .where(Attachment.id == attachment_id, case_filter(user, resources.policy))
        ).first()
        if row is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"photo {attachment_id} not found")
        community = session.get_one(Case, row.case_id).community
        if not may_publish_photo(user, resources.policy, community):
            raise HTTPException(
                status.HTTP_403_FORBIDDEN,
                f"a {user.role} may not publish photos; an operator of the town may",
            )
        row.public = wanted
        session.flush()
        return attachment_out(row)
