"""Open311 GeoReport v2 (``/open311/v2``): a 12345 hotline files and follows cases through the same
intake as the console, so a report can merge with the sensor case about the same place.

Deviations from the spec, on purpose: every call needs an ``api_key`` (an API token; the
``X-Api-Key`` header keeps it out of URLs and logs, the query parameter still works), since a
community's cases are not public; a token scoped to ``open311`` is good here and nowhere else; the
key's jurisdiction applies as everywhere else. ``address_id`` is ``<community>/<grid>``. A reporter's
personal data (name, phone, e-mail) is never returned.

A public channel's key (``ywc_…``, see api/routes/public_reports.py) is good for two calls only: filing
a request (rate-limited per key and per client: 429 with ``Retry-After``) and reading one of its own
requests by id. ``lat``/``long`` are answered when the report gave them (or a building), else where a
photo of the case was taken when its uploader kept that position; ``media_url`` only for a photo an
operator made public.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal
from xml.etree.ElementTree import Element, tostring

from fastapi import APIRouter, Header, HTTPException, Query, Request, status
from fastapi.responses import JSONResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from api.accounts import User, grant_for_token
from api.deps import ResourcesDep
from api.params import MAX_ROW_ID, in_utc_range
from api.routes.public_reports import (
    ReportRefused,
    ResidentReport,
    TooManyReports,
    checked_description,
    checked_phone,
    file_report,
    spend_quota,
)
from api.scope import case_filter, sees_area
from cases.actions import CaseFlow, Report
from cases.attachment_models import Attachment
from cases.attachments import case_positions
from cases.models import OPEN_STATES, Case
from cases.public_channel_models import PublicRequest
from cases.public_channels import Channel, Place, channel_for_key, followed_case, requests_of
from cases.public_places import PlaceRefused, position_place
from cases.queue import service_requests, visible_case
from cases.workflow import InvalidAction

router = APIRouter(prefix="/open311/v2", tags=["open311"])
Format = Literal["json", "xml"]
MAX_ROWS, DEFAULT_DAYS = 1000, 90
OPEN = {s.value for s in OPEN_STATES}


class Open311Error(Exception):
    def __init__(self, code: int, description: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(description)
        self.code, self.description, self.headers = code, description, headers


# Characters XML 1.0 cannot carry at all, not even escaped; a reporter's text may contain them.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _xml_text(value: Any) -> str:
    text = str(value).lower() if isinstance(value, bool) else str(value)
    return _NOT_XML.sub("\ufffd", text)  # shown as �: the JSON form keeps the original


def _element(tag: str, value: Any) -> Element:
    """GeoReport XML: dicts become child elements, lists repeat the singular tag (attributes → attribute)."""
    node = Element(tag)
    if isinstance(value, dict):
        node.extend(_element(key, child) for key, child in value.items())
    elif isinstance(value, list):
        node.extend(_element(tag.removesuffix("s"), entry) for entry in value)
    elif value is not None:
        node.text = _xml_text(value)
    return node


def _xml(node: Element, code: int) -> Response:
    body = b'<?xml version="1.0" encoding="utf-8"?>' + tostring(node, encoding="utf-8")
    return Response(body, status_code=code, media_type="text/xml; charset=utf-8")


def _render(fmt: Format, root: str, item: str, rows: list[dict[str, Any]], code: int = 200) -> Response:
    if fmt == "json":
        return JSONResponse(rows, status_code=code)
    tree = Element(root)
    tree.extend(_element(item, row) for row in rows)
    return _xml(tree, code)


def _error(fmt: Format, err: Open311Error) -> Response:
    answer = _render(
        fmt, "errors", "error", [{"code": err.code, "description": err.description}], code=err.code
    )
    answer.headers.update(err.headers or {})
    return answer


ApiKeyHeader = Annotated[
    str | None, Header(alias="X-Api-Key", description="The API token, instead of the api_key parameter.")
]


def _caller(resources: ResourcesDep, api_key: str | None) -> User | Channel:
    """A staff token's account, or a public channel's (enabled) key."""
    channel = channel_for_key(resources.db, api_key) if api_key else None
    if channel is not None:
        if not channel.enabled:
            raise Open311Error(403, f"the channel {channel.name!r} is disabled: its key no longer works")
        return channel
    grant = grant_for_token(resources.db, api_key) if api_key else None
    if grant is None or not grant.allows(router.prefix + "/"):
        raise Open311Error(403, "a valid api_key is required")
    return grant.user


def _staff(caller: User | Channel) -> User:
    if isinstance(caller, Channel):
        raise Open311Error(
            403, "a channel key files requests and reads its own requests by id; listing needs a staff token"
        )
    return caller


@dataclass(frozen=True, slots=True)
class _Extras:
    """What a request answers beyond its case: where the resident said, and its public photo."""

    lat: float | None = None
    lon: float | None = None
    media_url: str | None = None


def _extras(session: Session, request: Request, case_ids: list[int]) -> dict[int, _Extras]:
    filed = requests_of(session, case_ids)
    public = session.scalars(
        select(Attachment)
        .where(Attachment.case_id.in_(case_ids), Attachment.public.is_(True))
        .order_by(Attachment.id)
    ).all()
    media: dict[int, str] = {}
    for photo in public:
        media.setdefault(photo.case_id, str(request.url_for("public_photo", attachment_id=photo.id)))
    # Where the resident said; else where a photo of the case was taken, if its uploader kept that.
    photographed = case_positions(session, [i for i in case_ids if i not in filed or filed[i].lat is None])
    extras = {}
    for i in case_ids:
        said = filed.get(i)
        lat, lon = (said.lat, said.lon) if said is not None and said.lat is not None else (None, None)
        if lat is None and i in photographed:
            lat, lon = photographed[i]
        extras[i] = _Extras(lat, lon, media.get(i))
    return extras


def _service(resources: ResourcesDep, code: str) -> dict[str, Any]:
    category = resources.categories[code]
    return {
        "service_code": code,
        "service_name": category.name_zh,
        "description": category.name_en,
        "metadata": True,
        "type": "realtime",
        "keywords": f"{code},{category.name_en.lower()}",
        "group": "社区安全",
    }


def _request_row(case: Case, resources: ResourcesDep, extras: _Extras | None = None) -> dict[str, Any]:
    extras = extras or _Extras()
    category = resources.categories.get(case.category)
    agency = resources.policy.organisation.department(case.department or "")
    town = next(
        (t.name for t in resources.policy.organisation.towns if t.id == case.owner_town), case.owner_town
    )
    return {
        "service_request_id": case.id,
        "status": "open" if case.state in OPEN else "closed",
        "status_notes": case.state,
        "service_name": category.name_zh if category else case.category,
        "service_code": case.category,
        "description": case.description or case.title,
        "agency_responsible": agency.name if agency else town,
        "service_notice": "",
        "requested_datetime": case.opened_at.isoformat(),
        "updated_datetime": case.updated_at.isoformat(),
        "expected_datetime": case.deadline.isoformat(),
        "address": case.title,
        "address_id": f"{case.community}/{case.grid}",
        "zipcode": None,
        "lat": extras.lat,
        "long": extras.lon,
        "media_url": extras.media_url,
    }


# What the GeoReport routes answer, for the OpenAPI document: JSON or XML by the path's suffix, errors
# as GeoReport's list of {code, description} (a wrong suffix is FastAPI's {"detail": ...}).
_BODY: dict[str, Any] = {"application/json": {"schema": {}}, "text/xml": {"schema": {"type": "string"}}}


def _answers(*codes: int) -> dict[int | str, dict[str, Any]]:
    reasons = {
        400: "A parameter is missing or malformed",
        403: "No valid api_key, or the place is outside its jurisdiction",
        404: "Unknown format suffix, service or request",
        429: "Too many reports from this client or channel key (see Retry-After)",
    }
    answers: dict[int | str, dict[str, Any]] = {200: {"content": _BODY}}
    return answers | {c: {"description": reasons[c], "content": _BODY} for c in codes}


def _guard(fmt: str) -> Format:
    if fmt not in ("json", "xml"):
        raise HTTPException(status.HTTP_404_NOT_FOUND, "format is .json or .xml")
    return "json" if fmt == "json" else "xml"


@router.get("/services.{fmt}", responses=_answers(404))
def services(fmt: str, resources: ResourcesDep) -> Response:
    return _render(_guard(fmt), "services", "service", [_service(resources, c) for c in resources.categories])


@router.get("/services/{code}.{fmt}", responses=_answers(404))
def service_definition(code: str, fmt: str, resources: ResourcesDep) -> Response:
    form = _guard(fmt)
    if code not in resources.categories:
        return _error(form, Open311Error(404, f"no service {code!r}"))
    attribute = {
        "variable": True,
        "code": "location_detail",
        "datatype": "string",
        "required": False,
        "datatype_description": "Where exactly: building, floor, entrance.",
        "order": 1,
        "description": "位置补充说明",
        "values": [],
    }
    definition = {"service_code": code, "attributes": [attribute]}
    return (
        JSONResponse(definition) if form == "json" else _xml(_element("service_definition", definition), 200)
    )


@router.get("/requests.{fmt}", responses=_answers(400, 403, 404))
def list_requests(
    fmt: str,
    request: Request,
    resources: ResourcesDep,
    x_api_key: ApiKeyHeader = None,
    api_key: str | None = None,
    service_request_id: Annotated[str | None, Query(description="Comma-separated ids.")] = None,
    service_code: str | None = None,
    start_date: datetime | None = None,
    end_date: datetime | None = None,
    request_status: Annotated[Literal["open", "closed"] | None, Query(alias="status")] = None,
) -> Response:
    form = _guard(fmt)
    try:
        user = _staff(_caller(resources, api_key or x_api_key))
        ids = [int(i) for i in service_request_id.split(",")] if service_request_id else None
        if ids and not all(1 <= i <= MAX_ROW_ID for i in ids):
            raise ValueError("id out of range")
    except Open311Error as err:
        return _error(form, err)
    except ValueError:
        return _error(form, Open311Error(400, "service_request_id is a comma-separated list of numbers"))
    if not in_utc_range(start_date, end_date):
        return _error(form, Open311Error(400, "start_date and end_date must be dates in UTC's range"))
    end = end_date or datetime.now(UTC)
    start = start_date or end - timedelta(days=DEFAULT_DAYS)
    with Session(resources.db) as session:
        cases = service_requests(
            session,
            case_filter(user, resources.policy),
            ids=ids,
            opened=(start, end),
            category=service_code,
            still_open=None if not request_status else request_status == "open",
            limit=MAX_ROWS,
        )
        extras = _extras(session, request, [c.id for c in cases])
        rows = [_request_row(c, resources, extras[c.id]) for c in cases]
    return _render(form, "service_requests", "request", rows)


@router.get("/requests/{request_id}.{fmt}", responses=_answers(403, 404))
def get_request(
    request_id: int,
    fmt: str,
    request: Request,
    resources: ResourcesDep,
    x_api_key: ApiKeyHeader = None,
    api_key: str | None = None,
) -> Response:
    form = _guard(fmt)
    try:
        caller = _caller(resources, api_key or x_api_key)
    except Open311Error as err:
        return _error(form, err)
    if not 1 <= request_id <= MAX_ROW_ID:  # could not exist; the database would overflow on it
        return _error(form, Open311Error(404, f"no service request {request_id}"))
    with Session(resources.db) as session:
        if isinstance(caller, Channel):  # its own requests only, whatever their place
            filed = session.get(PublicRequest, request_id)
            own = session.get(Case, request_id) if filed and filed.channel_id == caller.id else None
            case = followed_case(session, own) if own else None  # a merged report: the case that goes on
        else:
            case = visible_case(session, case_filter(caller, resources.policy), request_id)
        if case is None:
            return _error(form, Open311Error(404, f"no service request {request_id}"))
        extras = _extras(session, request, [request_id])[request_id]
        row = _request_row(case, resources, extras) | {"service_request_id": request_id}
        return _render(form, "service_requests", "request", [row])


@router.post("/requests.{fmt}", responses=_answers(400, 403, 404, 429))
async def create_request(fmt: str, request: Request, resources: ResourcesDep) -> Response:
    form_fmt = _guard(fmt)
    form = await request.form()  # raw: Open311's attribute[code] keys cannot be declared as parameters
    values = {k: str(v) for k, v in form.items()}
    try:
        caller = _caller(resources, values.get("api_key") or request.headers.get("x-api-key"))
        if isinstance(caller, Channel):
            return _channel_request(form_fmt, request, resources, caller, values)
        user = caller
        code = values.get("service_code", "")
        if code not in resources.categories:
            raise Open311Error(400, f"unknown service_code {code!r}")
        community, _, grid = values.get("address_id", "").partition("/")
        known = resources.catalog.communities.get(community)
        if known is None or all(g.id != grid for g in known.grids):
            raise Open311Error(400, "address_id must be <community>/<grid> of a known grid")
        if not sees_area(user, resources.policy, community, grid):
            raise Open311Error(403, "that grid is outside the api_key's jurisdiction")
        description = values.get("description", "")[:4000]
        if not description:
            raise Open311Error(400, "description is required")
        location = values.get("address_string") or values.get("attribute[location_detail]", "")
        report = Report(community, grid, code, description, location[:256], values.get("phone") or None)
        case_id, merged = CaseFlow(resources.db, resources.policy).report(
            report, actor=f"open311:{user.username}"
        )
    except Open311Error as err:
        return _error(form_fmt, err)
    except InvalidAction as err:
        return _error(form_fmt, Open311Error(400, str(err)))
    notice = f"merged with case {merged}" if merged else "received"
    return _render(
        form_fmt,
        "service_requests",
        "request",
        [{"service_request_id": case_id, "service_notice": notice, "account_id": None}],
    )


def _channel_place(resources: ResourcesDep, channel: Channel, values: dict[str, str]) -> Place:
    """``address_id`` (``<community>/<grid>``) or ``lat``/``long`` mapped to a grid of the channel's."""
    communities = [c for i, c in resources.catalog.communities.items() if channel.reaches(i)]
    if values.get("address_id"):
        community, _, grid = values["address_id"].partition("/")
        known = next((c for c in communities if c.id == community), None)
        if known is None or all(g.id != grid for g in known.grids):
            raise Open311Error(400, "address_id must be <community>/<grid> of a grid the channel serves")
        return Place(community, grid)
    try:
        lat, lon = float(values.get("lat", "")), float(values.get("long", ""))
    except ValueError:
        raise Open311Error(400, "give address_id (<community>/<grid>) or lat and long") from None
    try:
        return position_place(communities, lat, lon)
    except PlaceRefused as err:
        raise Open311Error(400, str(err)) from err


def _channel_request(
    fmt: Format, request: Request, resources: ResourcesDep, channel: Channel, values: dict[str, str]
) -> Response:
    """A resident's request through a public channel: rate-limited, then the public intake."""
    try:
        try:
            spend_quota(request, resources, channel)
        except TooManyReports as err:
            raise Open311Error(429, err.message, {"Retry-After": str(err.retry_after)}) from err
        code = values.get("service_code", "")
        if code not in resources.categories:
            raise Open311Error(400, f"unknown service_code {code!r}")
        location = values.get("address_string") or values.get("attribute[location_detail]", "")
        report = ResidentReport(
            category=code,
            description=checked_description(values.get("description", "")),
            place=_channel_place(resources, channel, values),
            location=location,
            phone=checked_phone(values.get("phone", "")),
        )
        filed = file_report(resources, channel, report, [])
    except ReportRefused as err:
        return _error(fmt, Open311Error(err.status_code if err.status_code != 422 else 400, err.message))
    except Open311Error as err:
        return _error(fmt, err)
    notice = f"merged with case {filed.merged_into}" if filed.merged_into else "received"
    return _render(
        fmt,
        "service_requests",
        "request",
        [{"service_request_id": filed.case_id, "service_notice": notice, "account_id": None}],
    )
