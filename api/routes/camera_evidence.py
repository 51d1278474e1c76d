"""A camera case's blurred snapshot, fetched on demand from the gateway for users in scope (#22).

Frames stay on the gateway (edge/camera/snapshot.py writes them, blurred, and its local HTTP server
serves ``/snapshots/<camera>/<uuid>.jpg`` to a bearer token). The API never keeps a copy: each request
is checked against the case (in the user's jurisdiction, the reference in its evidence), then relayed
from the camera's gateway with a timeout and a size limit.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import httpx
from fastapi import APIRouter, HTTPException, Query, status
from fastapi.responses import Response
from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy import select
from sqlalchemy.orm import Session

from api.accounts import User
from api.deps import CurrentUser, Resources, ResourcesDep
from api.errors import problem
from api.params import RowId
from api.routes.attachments import AttachmentOut, attachment_out
from api.routes.cases import load_detail
from api.scope import may_attach_snapshot
from cases import actions
from cases.attachment_models import Attachment
from cases.attachments import save_photo
from cases.models import Case, CaseEvent
from cases.photos import PhotoRefused, prepare_photo

router = APIRouter(tags=["cases"])
JPEG_MAGIC = b"\xff\xd8\xff"
# The reference a camera event carries (edge/camera/snapshot.py): camera id / event uuid .jpg, nothing else.
SnapshotRef = Annotated[
    str,
    Query(
        max_length=120,
        pattern=r"^[a-z0-9-]{1,64}/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\.jpg$",
        description="The snapshot reference of the case's camera evidence, e.g. cam-01/<uuid>.jpg.",
    ),
]


class GatewayAccess(BaseSettings):
    """How the API reaches gateways' snapshot endpoints (env ``YIWANG_GATEWAY_*``).

    Gateways sit behind the deployment's VPN or tunnel: their addresses are deployment facts, not
    registry data, so they are configured here, per gateway or by one template.
    """

    model_config = SettingsConfigDict(env_prefix="YIWANG_", extra="ignore")

    gateway_http: dict[str, str] = Field(
        default_factory=dict,
        description='Base URL per gateway, JSON: {"zhuganxiang/gw-01": "http://10.8.0.11:9108"}.',
    )
    gateway_http_template: str = Field(
        default="",
        max_length=300,
        description="Base URL of any other gateway, e.g. http://{gateway}.{community}.vpn:9108.",
    )
    gateway_snapshot_token: SecretStr | None = Field(
        default=None, description="The bearer token gateways' /snapshots accept (edge http.snapshot_token)."
    )
    gateway_snapshot_timeout_s: float = Field(default=5.0, gt=0, le=30)
    gateway_snapshot_max_bytes: int = Field(default=4 * 1024 * 1024, ge=1024, le=32 * 1024 * 1024)

    def base_url(self, community: str, gateway: str) -> str | None:
        url = self.gateway_http.get(f"{community}/{gateway}")
        if url is None and self.gateway_http_template:
            url = self.gateway_http_template.format(community=community, gateway=gateway)
        return url.rstrip("/") if url else None


class SnapshotUnavailable(Exception):
    """Why a snapshot cannot be shown: a catalogue key (cp_snap_*), the HTTP status and an English
    sentence for API clients; ``gateway`` names the gateway for the message."""

    def __init__(self, key: str, status: int, message: str, gateway: str = "", community: str = "") -> None:
        super().__init__(message)
        self.key, self.status, self.message = key, status, message
        self.gateway, self.community = gateway, community


def fetch_snapshot(resources: Resources, user: User, case_id: int, reference: str) -> bytes:
    """The JPEG ``reference`` names, from the gateway of the camera whose evidence names it in ``case_id``.

    Raises SnapshotUnavailable: 404 outside the jurisdiction or the case's evidence (the same answer,
    so nobody learns of other areas' cases), 502/503/504 when the gateway cannot deliver.
    """
    try:
        case = load_detail(case_id, resources, user)
    except HTTPException:
        case = None
    evidence = (
        next((e for e in case.evidence if e.observed.get("snapshot") == reference), None) if case else None
    )
    if case is None or evidence is None:
        raise SnapshotUnavailable(
            "cp_snap_no_case", 404, f"case {case_id} has no snapshot {reference} you may see"
        )
    info = resources.catalog.device_in(case.community, evidence.device)
    if info is None:
        raise SnapshotUnavailable(
            "cp_snap_unknown_camera", 502, f"camera {evidence.device} is not in the registry: no gateway"
        )
    gateway = info.gateway.id
    access = GatewayAccess()
    base = access.base_url(case.community, gateway)
    if base is None or access.gateway_snapshot_token is None:
        raise SnapshotUnavailable(
            "cp_snap_no_address",
            503,
            f"gateway {case.community}/{gateway} has no configured address or token "
            "(YIWANG_GATEWAY_HTTP or YIWANG_GATEWAY_HTTP_TEMPLATE, and YIWANG_GATEWAY_SNAPSHOT_TOKEN)",
            gateway,
            case.community,
        )
    try:
        return _relay(access, f"{base}/snapshots/{reference}", gateway)
    except SnapshotUnavailable as err:
        err.community = case.community
        raise


def _relay(access: GatewayAccess, url: str, gateway: str) -> bytes:
    """GET one snapshot, reading at most the size limit: a gateway cannot make us hold more."""
    token = access.gateway_snapshot_token
    assert token is not None
    headers = {"Authorization": f"Bearer {token.get_secret_value()}"}
    limit = access.gateway_snapshot_max_bytes
    try:
        with (
            httpx.Client(timeout=access.gateway_snapshot_timeout_s, follow_redirects=False) as client,
            client.stream("GET", url, headers=headers) as answer,
        ):
            if answer.status_code == status.HTTP_404_NOT_FOUND:
                raise SnapshotUnavailable(
                    "cp_snap_gone", 404, f"gateway {gateway} no longer has this snapshot", gateway
                )
            if answer.status_code in (status.HTTP_401_UNAUTHORIZED, status.HTTP_403_FORBIDDEN):
                raise SnapshotUnavailable(
                    "cp_snap_refused", 502, f"gateway {gateway} refused the snapshot token", gateway
                )
            if answer.status_code != status.HTTP_200_OK:
                raise SnapshotUnavailable(
                    "cp_snap_unreachable", 502, f"gateway {gateway} answered {answer.status_code}", gateway
                )
            declared = int(answer.headers.get("content-length") or 0)
            body = bytearray()
            if declared <= limit:
                for chunk in answer.iter_bytes():
                    body += chunk
                    if len(body) > limit:
                        break
    except httpx.TimeoutException as err:
        raise SnapshotUnavailable(
            "cp_snap_unreachable", 504, f"gateway {gateway} did not answer in time: {err}", gateway
        ) from err
    except httpx.HTTPError as err:
        raise SnapshotUnavailable(
            "cp_snap_unreachable", 502, f"gateway {gateway} cannot be reached: {err}", gateway
        ) from err
    if declared > limit or len(body) > limit or not body.startswith(JPEG_MAGIC):
        raise SnapshotUnavailable(
            "cp_snap_bad", 502, f"gateway {gateway} sent no JPEG within {limit} bytes", gateway
        )
    return bytes(body)


def attach_snapshot(resources: Resources, user: User, case_id: int, reference: str) -> Attachment:
    """Keep the snapshot in the case's photos: fetched now, re-encoded like any photo, stored in the
    attachment store and noted in the timeline (``snapshot_attached``, its payload naming the photo).
    Attaching the same snapshot again returns the photo kept the first time."""
    if not may_attach_snapshot(user):
        raise SnapshotUnavailable("cp_snap_not_yours", 403, "only district and town operators keep snapshots")
    jpeg = fetch_snapshot(resources, user, case_id, reference)  # the scope and evidence checks too
    try:
        photo = prepare_photo(jpeg)
    except PhotoRefused as err:
        raise SnapshotUnavailable("cp_snap_bad", 502, f"the snapshot is no usable photo: {err}") from err
    with Session(resources.db, expire_on_commit=False) as session, session.begin():
        case = session.get_one(Case, case_id)
        kept = session.scalars(
            select(CaseEvent).where(CaseEvent.case_id == case_id, CaseEvent.action == "snapshot_attached")
        ).all()
        earlier = next((e for e in kept if e.data.get("snapshot") == reference), None)
        if earlier is not None:
            return session.get_one(Attachment, earlier.data["attachments"][0])
        stored = save_photo(session, resources.attachments, case_id=case_id, photo=photo, actor=user.username)
        actions.record(
            session,
            case,
            action="snapshot_attached",
            note="",
            actor=user.username,
            now=datetime.now(UTC),
            data={"attachments": [stored.id], "snapshot": reference},
        )
        return stored


def snapshot_response(jpeg: bytes) -> Response:
    # The file never changes (named by its event's uuid), but it is personal-adjacent: this browser only.
    return Response(jpeg, media_type="image/jpeg", headers={"Cache-Control": "private, max-age=600"})


@router.get(
    "/api/v1/cases/{case_id}/snapshot",
    response_class=Response,
    responses={
        200: {"content": {"image/jpeg": {}}, "description": "The blurred snapshot"},
        404: problem("No such case or snapshot in your jurisdiction, or the gateway no longer has it"),
        502: problem("The gateway refused, failed or sent no JPEG within the size limit"),
        503: problem("The gateway's address or token is not configured"),
        504: problem("The gateway did not answer in time"),
    },
)
def case_snapshot(case_id: RowId, ref: SnapshotRef, resources: ResourcesDep, user: CurrentUser) -> Response:
    """A camera case's blurred snapshot, fetched from the camera's gateway now (never stored here)."""
    try:
        return snapshot_response(fetch_snapshot(resources, user, case_id, ref))
    except SnapshotUnavailable as err:
        raise HTTPException(err.status, err.message) from None


@router.post(
    "/api/v1/cases/{case_id}/snapshot/attach",
    response_model=AttachmentOut,
    status_code=status.HTTP_201_CREATED,
    responses={
        403: problem("Only district and town operators keep snapshots in a case"),
        404: problem("No such case or snapshot in your jurisdiction, or the gateway no longer has it"),
        502: problem("The gateway refused, failed or sent no usable JPEG"),
        503: problem("The gateway's address or token is not configured"),
        504: problem("The gateway did not answer in time"),
    },
)
def keep_snapshot(
    case_id: RowId, ref: SnapshotRef, resources: ResourcesDep, user: CurrentUser
) -> AttachmentOut:
    """Keep the case's camera snapshot as one of its photos (the only way a frame is stored centrally)."""
    try:
        return attachment_out(attach_snapshot(resources, user, case_id, ref))
    except SnapshotUnavailable as err:
        raise HTTPException(err.status, err.message) from None
