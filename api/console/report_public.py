"""The public reporting page (/report) and a report's status page (/report/{id}), no account needed (#22).

The page files through the channel marked ``serves_page`` (its key never leaves the server: the page is
that channel). Without a session, a post is CSRF-safe by a signed form token (HMAC over when it was
issued, valid ``FORM_TOKEN_MAX_AGE_S``) and, when the browser sends one, a same-origin ``Origin``. The
body is bounded before parsing (``REPORT_MAX_BYTES``; files and fields counted by the parser too).
A status page answers only with the link's token: a wrong token and an unknown number are the same 404.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import time
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import APIRouter, HTTPException, Query, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.datastructures import FormData, UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.console.i18n import TEXT
from api.console.web import language, page
from api.deps import Resources, ResourcesDep
from api.params import MAX_ROW_ID
from api.routes.public_reports import (
    REPORT_MAX_BYTES,
    ReportRefused,
    ResidentReport,
    checked_category,
    checked_description,
    checked_phone,
    file_report,
    prepared_photos,
    spend_quota,
)
from cases.attachment_models import Attachment
from cases.attachments import AttachmentMissing, AttachmentStoreDown, photo_bytes
from cases.models import OPEN_STATES, Case, CaseEvent
from cases.photos import MAX_PHOTO_BYTES, MAX_PHOTOS_PER_REQUEST, too_large
from cases.public_channels import Channel, Place, followed_case, followed_request, page_channel
from cases.public_places import PlaceRefused, building_place, position_place
from contract.catalog import Community

log = logging.getLogger(__name__)
router = APIRouter(include_in_schema=False)
FORM_TOKEN_MAX_AGE_S = 4 * 3600
MAX_FORM_FIELDS = 16
MAX_FIELD_CHARS = 4000  # no field of the form is longer; checked before the words are read
MAX_TOKEN = 64
_OPEN = {s.value for s in OPEN_STATES}
# The app denies every powerful feature (api/security_headers.py); this page asks for the position and
# lets the photo input open the camera, for this origin only.
REPORT_PERMISSIONS = "camera=(self), microphone=(), geolocation=(self), payment=(), usb=()"


def _secret(request: Request, resources: Resources) -> bytes:
    """The key form tokens are signed with: the session secret, else one per app run."""
    if resources.settings.session_secret is not None:
        return resources.settings.session_secret.get_secret_value().encode()
    state = request.app.state
    key: bytes | None = getattr(state, "report_form_key", None)
    if key is None:
        key = state.report_form_key = secrets.token_bytes(32)
    return key


def form_token(request: Request, resources: Resources, now: float | None = None) -> str:
    issued = f"{int(now or time.time())}.{secrets.token_urlsafe(9)}"
    mac = hmac.new(_secret(request, resources), b"report:" + issued.encode(), hashlib.sha256).hexdigest()
    return f"{issued}.{mac[:32]}"


def form_token_valid(request: Request, resources: Resources, token: str) -> bool:
    issued, _, mac = token.rpartition(".")
    seconds, _, _ = issued.partition(".")
    if not seconds.isdigit() or len(token) > 128:
        return False
    expected = hmac.new(_secret(request, resources), b"report:" + issued.encode(), hashlib.sha256)
    age = time.time() - int(seconds)
    return hmac.compare_digest(expected.hexdigest()[:32], mac) and -60 <= age <= FORM_TOKEN_MAX_AGE_S


def _same_origin(request: Request) -> bool:
    """A browser says where a post comes from: ``Sec-Fetch-Site`` (modern ones), else ``Origin`` (which
    is ``null`` under our no-referrer policy, so it only counts when it names a site). Neither: an old
    browser or another program, judged by the form token alone."""
    site = request.headers.get("sec-fetch-site")
    if site is not None:
        return site in ("same-origin", "none")
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        return True
    return urlsplit(origin).netloc == request.headers.get("host", "")


def _communities(resources: Resources, channel: Channel) -> list[Community]:
    return [c for i, c in resources.catalog.communities.items() if channel.reaches(i)]


@dataclass(frozen=True, slots=True)
class _Choice:
    value: str
    label: str


def _categories(resources: Resources, lang: str) -> list[_Choice]:
    names = [
        _Choice(code, c.name_zh if lang == "zh" else c.name_en) for code, c in resources.categories.items()
    ]
    return sorted(names, key=lambda c: c.label)


def _buildings(communities: list[Community]) -> list[tuple[str, list[_Choice]]]:
    """Buildings grouped by grid, by name: the picker's option groups."""
    return [
        (grid.name, [_Choice(b.id, b.name) for b in grid.buildings])
        for community in communities
        for grid in community.grids
        if grid.buildings
    ]


def _form(
    request: Request,
    resources: Resources,
    channel: Channel | None,
    *,
    error: str | None = None,
    values: dict[str, str] | None = None,
    code: int = 200,
    headers: dict[str, str] | None = None,
) -> HTMLResponse:
    lang = language(request)
    answer = page(
        request,
        resources,
        "report.html",
        channel=channel,
        categories=_categories(resources, lang),
        buildings=_buildings(_communities(resources, channel)) if channel else [],
        form_token=form_token(request, resources),
        error=error,
        values=values or {},
        max_photos=MAX_PHOTOS_PER_REQUEST,
        max_photo_bytes=MAX_PHOTO_BYTES,
    )
    answer.status_code = code
    answer.headers.update(headers or {})
    answer.headers["Permissions-Policy"] = REPORT_PERMISSIONS  # the phone's position and camera, here only
    return answer


@router.get("/report", response_class=HTMLResponse)
def report_form(request: Request, resources: ResourcesDep) -> HTMLResponse:
    return _form(request, resources, page_channel(resources.db))


async def _read_form(request: Request) -> FormData:
    """The multipart form, bounded: the declared length first, then the parser's own counts."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > REPORT_MAX_BYTES:
        raise ReportRefused("pub_body_too_large", "the report is too large", 413)
    try:
        return await request.form(max_files=MAX_PHOTOS_PER_REQUEST, max_fields=MAX_FORM_FIELDS)
    except StarletteHTTPException as err:  # the parser's refusal: too many files or fields, or malformed
        if "files" in str(err.detail).lower():
            raise ReportRefused("pub_too_many_photos", str(err.detail), 413) from err
        raise ReportRefused("pub_refused", str(err.detail), 400) from err


def _text(form: FormData, name: str) -> str:
    value = form.get(name)
    if not isinstance(value, str):
        return ""
    if len(value) > MAX_FIELD_CHARS:
        raise ReportRefused("pub_description_long", f"{name} is too long", 413)
    return value


async def _photo_files(form: FormData) -> list[bytes]:
    """The chosen photos' bytes (a file input left empty sends an empty, nameless part: not a photo)."""
    files: list[bytes] = []
    for part in form.getlist("photo"):
        if not isinstance(part, UploadFile) or (not part.filename and not part.size):
            continue
        if part.size is not None and part.size > MAX_PHOTO_BYTES:
            refusal = too_large(part.size)
            raise ReportRefused(refusal.key, refusal.message, refusal.status)
        files.append(await part.read(MAX_PHOTO_BYTES + 1))
    return files


def _place(resources: Resources, channel: Channel, form: FormData) -> Place:
    communities = _communities(resources, channel)
    try:
        if building := _text(form, "building"):
            return building_place(communities, building)
        lat, lon = _text(form, "lat"), _text(form, "lon")
        if lat and lon:
            return position_place(communities, float(lat), float(lon))
    except (PlaceRefused, ValueError) as err:
        raise ReportRefused("pub_place_unknown", str(err)) from err
    raise ReportRefused("pub_no_place", "choose a building, or use the phone's position")


def _refusal_words(request: Request, err: ReportRefused) -> str:
    words = TEXT[language(request)]
    if err.key == "pub_too_many":
        minutes = max(1, -(-int(getattr(err, "retry_after", 60)) // 60))
        return words["pub_too_many"].format(minutes=minutes)
    return words.get(err.key) or words["pub_refused"]


@router.post("/report", response_model=None)
async def file_public_report(request: Request, resources: ResourcesDep) -> Response:
    channel = page_channel(resources.db)
    if channel is None:
        return _form(request, resources, None, code=status.HTTP_503_SERVICE_UNAVAILABLE)
    values: dict[str, str] = {}
    form: FormData | None = None
    try:
        form = await _read_form(request)
        values = {k: _text(form, k) for k in ("category", "description", "building", "detail", "phone")}
        if not _same_origin(request) or not form_token_valid(request, resources, _text(form, "form_token")):
            raise ReportRefused("pub_expired", "the form has expired or came from another site", 403)
        spend_quota(request, resources, channel)
        report = ResidentReport(
            category=checked_category(resources, values["category"]),
            description=checked_description(values["description"]),
            place=_place(resources, channel, form),
            location=values["detail"],
            phone=checked_phone(values["phone"]),
        )
        photos = prepared_photos(await _photo_files(form))
        try:
            filed = file_report(resources, channel, report, photos)
        except AttachmentStoreDown as err:  # the resident gets the form back, words and all
            log.error("%s", err)
            raise ReportRefused("pub_store_down", str(err), 503) from err
    except ReportRefused as err:
        retry = getattr(err, "retry_after", None)
        headers = {"Retry-After": str(retry)} if retry else None
        error = _refusal_words(request, err)
        return _form(
            request, resources, channel, error=error, values=values, code=err.status_code, headers=headers
        )
    finally:
        if form is not None:
            await form.close()  # the spooled photo files
    return RedirectResponse(f"/report/{filed.case_id}?t={filed.token}", status.HTTP_303_SEE_OTHER)


@router.get("/report/media/{attachment_id}", name="public_photo")
def public_photo(attachment_id: int, resources: ResourcesDep) -> Response:
    """A photo an operator made public; any other is 404, as if it did not exist."""
    if not 1 <= attachment_id <= MAX_ROW_ID:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such photo")
    with Session(resources.db) as session:
        photo = session.get(Attachment, attachment_id)
        if photo is None or not photo.public:
            raise HTTPException(status.HTTP_404_NOT_FOUND, "no such photo")
        try:
            data = photo_bytes(resources.attachments, photo)
        except AttachmentMissing as err:
            raise HTTPException(status.HTTP_404_NOT_FOUND, "no such photo") from err
    return Response(data, media_type="image/jpeg", headers={"Cache-Control": "public, max-age=86400"})


def _public_photos(session: Session, case_ids: list[int]) -> list[int]:
    return list(
        session.scalars(
            select(Attachment.id)
            .where(Attachment.case_id.in_(case_ids), Attachment.public.is_(True))
            .order_by(Attachment.id)
        )
    )


@router.get("/report/{request_id}", response_class=HTMLResponse)
def report_status(
    request_id: int,
    request: Request,
    resources: ResourcesDep,
    t: Annotated[str, Query(max_length=MAX_TOKEN)] = "",
) -> HTMLResponse:
    with Session(resources.db) as session:
        filed = followed_request(session, request_id, t) if t and 1 <= request_id <= MAX_ROW_ID else None
        own = session.get(Case, request_id) if filed else None
        if own is None:  # an unknown number and a wrong token look the same
            missing = page(request, resources, "report_missing.html")
            missing.status_code = status.HTTP_404_NOT_FOUND
            return missing
        shown = followed_case(session, own)
        merged = shown.id != own.id
        steps = session.scalars(
            select(CaseEvent).where(CaseEvent.case_id == shown.id).order_by(CaseEvent.id)
        ).all()
        context: dict[str, Any] = {
            "own": own,
            "shown": shown,
            "merged": merged,
            "is_open": shown.state in _OPEN,
            "steps": [(e.at, e.action) for e in steps],
            "photos": _public_photos(session, [own.id, shown.id]),
            "token": t,
        }
        return page(request, resources, "report_status.html", **context)
