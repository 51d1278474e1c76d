"""Public channels (#22): keys shown once and never listed, managed by district staff; Open311 with a
channel key files reports and reads only its own, rate-limited per client and per key; lat/long and a
public photo's media_url in the answers."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient
from httpx import Response
from PIL import Image
from sqlalchemy import func, select

from api.ratelimit import WindowQuota
from api.routes.public_reports import PER_CLIENT_PER_HOUR, PublicQuotas
from api.settings import ApiSettings
from cases.models import Case
from common.db import make_engine
from tests.api.conftest import auth
from tests.factories import open_flooding_cases


def add_channel(client: TestClient, token: str, **body: Any) -> Response:
    answer: Response = client.post(
        "/api/v1/channels",
        json={"name": "12345 热线", "communities": ["zhuganxiang"]} | body,
        headers=auth(token),
    )
    return answer


def file(client: TestClient, key: str, fmt: str = "json", **fields: str) -> Response:
    form = {
        "service_code": "fire_lane_blocked",
        "address_id": "zhuganxiang/g-north",
        "description": "车辆长期占用消防通道",
        "phone": "13900000000",
    } | fields
    answer: Response = client.post(f"/open311/v2/requests.{fmt}", data=form, headers={"X-Api-Key": key})
    return answer


def cases_count(settings: ApiSettings) -> int:
    db = make_engine(settings.database_url)
    try:
        with db.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(Case)).scalar_one())
    finally:
        db.dispose()


def test_a_channel_key_is_shown_once_and_never_listed(client: TestClient, token: str, login: Any) -> None:
    made = add_channel(client, token)
    assert made.status_code == 201, made.text
    channel = made.json()
    assert channel["key"].startswith("ywc_") and channel["communities"] == ["zhuganxiang"]
    listed = client.get("/api/v1/channels", headers=auth(token)).json()
    assert [c["name"] for c in listed] == ["12345 热线"]
    assert (
        "key" not in listed[0]
        and channel["key"] not in client.get("/api/v1/channels", headers=auth(token)).text
    )
    # A town's communities come with the town; a name is taken once; an unknown place is named.
    by_town = add_channel(client, token, name="街道小程序", communities=[], town="yuehe").json()
    assert by_town["communities"] == ["zhuganxiang"]
    again = add_channel(client, token)
    assert again.status_code == 422 and "already a channel named" in again.json()["detail"]
    unknown = add_channel(client, token, name="x", communities=["atlantis"])
    assert unknown.status_code == 422 and "unknown community 'atlantis'" in unknown.json()["detail"]
    nowhere = add_channel(client, token, name="y", communities=[])
    assert nowhere.status_code == 422 and "name the communities" in nowhere.json()["detail"]
    # Only admins and district operators manage channels.
    town = login("wang", "town_operator", town="yuehe")
    assert add_channel(client, town, name="z").status_code == 403
    assert client.get("/api/v1/channels", headers=auth(town)).status_code == 403
    assert client.get("/api/v1/channels").status_code == 401


def test_a_channel_files_and_reads_only_its_own_requests(
    client: TestClient, token: str, settings: ApiSettings
) -> None:
    key = add_channel(client, token).json()["key"]
    [receipt] = file(client, key).json()
    own = receipt["service_request_id"]
    assert receipt["service_notice"] == "received"
    [row] = client.get(f"/open311/v2/requests/{own}.json", headers={"X-Api-Key": key}).json()
    assert row["status"] == "open" and row["lat"] is None and row["media_url"] is None
    assert "13900000000" not in str(row)
    # A position instead of a grid: inside 中区网格's outline → that grid, and answered back.
    [by_position] = file(client, key, address_id="", lat="35.405", long="116.590").json()
    [placed] = client.get(
        f"/open311/v2/requests/{by_position['service_request_id']}.json", headers={"X-Api-Key": key}
    ).json()
    assert placed["address_id"] == "zhuganxiang/g-middle"
    assert (placed["lat"], placed["long"]) == (35.405, 116.59)
    far = file(client, key, address_id="", lat="39.9", long="116.4")
    assert far.status_code == 400 and "outside the community" in far.json()[0]["description"]
    # A staff token's case is not the channel's; listing is for staff tokens.
    [staff] = client.post(
        "/open311/v2/requests.json",
        data={
            "api_key": token,
            "service_code": "flooding",
            "address_id": "zhuganxiang/g-south",
            "description": "水",
        },
    ).json()
    other = client.get(f"/open311/v2/requests/{staff['service_request_id']}.json", headers={"X-Api-Key": key})
    assert other.status_code == 404
    listing = client.get("/open311/v2/requests.json", headers={"X-Api-Key": key})
    assert listing.status_code == 403 and "listing needs a staff token" in listing.json()[0]["description"]
    # A staff token still reads the channel's request, with its position.
    [seen] = client.get(
        f"/open311/v2/requests/{by_position['service_request_id']}.json?api_key={token}"
    ).json()
    assert seen["lat"] == 35.405
    assert cases_count(settings) == 3


def test_disabled_and_unknown_keys_are_refused_with_their_reason(client: TestClient, token: str) -> None:
    channel = add_channel(client, token).json()
    assert client.delete(f"/api/v1/channels/{channel['id']}", headers=auth(token)).status_code == 204
    refused = file(client, channel["key"])
    assert refused.status_code == 403 and "is disabled" in refused.json()[0]["description"]
    [listed] = client.get("/api/v1/channels", headers=auth(token)).json()
    assert listed["enabled"] is False
    unknown = file(client, "ywc_" + "x" * 43)
    assert unknown.status_code == 403 and "a valid api_key is required" in unknown.json()[0]["description"]
    assert client.delete("/api/v1/channels/999", headers=auth(token)).status_code == 404


def test_a_flood_from_one_client_gets_429_with_retry_after(
    client: TestClient, token: str, settings: ApiSettings
) -> None:
    key = add_channel(client, token).json()["key"]
    for n in range(PER_CLIENT_PER_HOUR):
        assert file(client, key, description=f"第{n}次").status_code == 200
    flood = file(client, key)
    assert flood.status_code == 429
    assert 1 <= int(flood.headers["Retry-After"]) <= 3600
    assert "too many reports from this address" in flood.json()[0]["description"]
    xml = file(client, key, fmt="xml")
    assert xml.status_code == 429 and b"<code>429</code>" in xml.content
    assert cases_count(settings) == PER_CLIENT_PER_HOUR  # the refused ones left nothing


def test_a_key_has_its_own_hourly_quota(client: TestClient, token: str) -> None:
    key = add_channel(client, token).json()["key"]
    client.app.state.public_quotas = PublicQuotas(WindowQuota(100), WindowQuota(2))  # type: ignore[attr-defined]
    assert file(client, key).status_code == 200
    assert file(client, key).status_code == 200
    spent = file(client, key)
    assert spent.status_code == 429 and "from this channel" in spent.json()[0]["description"]


def test_bad_channel_reports_are_refused_clearly_and_store_nothing(
    client: TestClient, token: str, settings: ApiSettings
) -> None:
    key = add_channel(client, token).json()["key"]
    for fields, words in [
        ({"description": ""}, "description is required"),
        ({"description": "x" * 2001}, "at most 2000 characters"),
        ({"phone": "call me <maybe>"}, "phone number is not valid"),
        ({"service_code": "ufo"}, "unknown service_code"),
        ({"address_id": "other/g-north"}, "a grid the channel serves"),
    ]:
        refused = file(client, key, **fields)
        assert refused.status_code == 400 and words in refused.json()[0]["description"], refused.text
    assert cases_count(settings) == 0


def _jpeg() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 80, 40)).save(out, "JPEG")
    return out.getvalue()


def test_media_url_only_for_a_photo_an_operator_made_public(client: TestClient, token: str) -> None:
    key = add_channel(client, token).json()["key"]
    [receipt] = file(client, key).json()
    case_id = receipt["service_request_id"]
    uploaded = client.post(
        f"/api/v1/cases/{case_id}/attachments",
        files={"file": ("a.jpg", _jpeg(), "image/jpeg")},
        headers=auth(token),
    )
    assert uploaded.status_code == 201, uploaded.text
    photo = uploaded.json()["id"]
    [row] = client.get(f"/open311/v2/requests/{case_id}.json", headers={"X-Api-Key": key}).json()
    assert row["media_url"] is None
    assert client.get(f"/report/media/{photo}").status_code == 404  # not public: as if it did not exist
    assert client.post(f"/api/v1/attachments/{photo}/public", headers=auth(token)).status_code == 200
    [row] = client.get(f"/open311/v2/requests/{case_id}.json", headers={"X-Api-Key": key}).json()
    assert row["media_url"].endswith(f"/report/media/{photo}")
    served = client.get(row["media_url"])
    assert served.status_code == 200 and served.headers["content-type"] == "image/jpeg"
    assert served.content[:2] == b"\xff\xd8"
    [listed] = client.get(f"/open311/v2/requests.json?api_key={token}&service_request_id={case_id}").json()
    assert listed["media_url"] == row["media_url"]


def test_a_merged_report_answers_with_the_case_that_goes_on(
    client: TestClient, token: str, settings: ApiSettings
) -> None:
    open_flooding_cases(settings.database_url, [datetime.now(UTC) - timedelta(minutes=5)])
    key = add_channel(client, token).json()["key"]
    [receipt] = file(client, key, service_code="flooding").json()
    assert receipt["service_notice"] == "merged with case 1"
    own = receipt["service_request_id"]
    [row] = client.get(f"/open311/v2/requests/{own}.json", headers={"X-Api-Key": key}).json()
    assert row["service_request_id"] == own and row["status"] == "open" and row["status_notes"] == "NEW"
    # The sensor case itself is not the channel's to read.
    assert client.get("/open311/v2/requests/1.json", headers={"X-Api-Key": key}).status_code == 404
