"""Open311 GeoReport v2 conformance: field names and types in JSON and XML, intake, privacy."""

from datetime import UTC, datetime, timedelta
from xml.etree.ElementTree import fromstring

import pytest
from fastapi.testclient import TestClient
from httpx import Response

from api.settings import ApiSettings
from tests.factories import open_flooding_cases

REQUEST_FIELDS = {
    "service_request_id",
    "status",
    "status_notes",
    "service_name",
    "service_code",
    "description",
    "agency_responsible",
    "service_notice",
    "requested_datetime",
    "updated_datetime",
    "expected_datetime",
    "address",
    "address_id",
    "zipcode",
    "lat",
    "long",
    "media_url",
}
SERVICE_FIELDS = {"service_code", "service_name", "description", "metadata", "type", "keywords", "group"}


def post(client: TestClient, token: str, fmt: str = "json", **fields: str) -> Response:
    form = {
        "api_key": token,
        "service_code": "fire_lane_blocked",
        "address_id": "zhuganxiang/g-north",
        "description": "车辆长期占用消防通道",
        "first_name": "张",
        "last_name": "三",
        "phone": "13900000000",
        "email": "z@example.org",
    } | fields
    return client.post(f"/open311/v2/requests.{fmt}", data=form)


def test_services_in_json_and_xml(client: TestClient) -> None:
    services = client.get("/open311/v2/services.json").json()
    assert {s["service_code"] for s in services} >= {"flooding", "fire_lane_blocked", "gas_leak"}
    assert all(set(s) == SERVICE_FIELDS and s["type"] == "realtime" for s in services)
    xml = fromstring(client.get("/open311/v2/services.xml").content)
    assert xml.tag == "services" and {e.findtext("service_code") for e in xml.findall("service")} >= {
        "flooding"
    }
    definition = client.get("/open311/v2/services/flooding.json").json()
    assert definition["service_code"] == "flooding"
    assert set(definition["attributes"][0]) == {
        "variable",
        "code",
        "datatype",
        "required",
        "datatype_description",
        "order",
        "description",
        "values",
    }
    xml_def = fromstring(client.get("/open311/v2/services/flooding.xml").content)
    assert (
        xml_def.tag == "service_definition"
        and xml_def.find("attributes/attribute/code").text == "location_detail"
    )  # type: ignore[union-attr]
    assert client.get("/open311/v2/services/nope.json").status_code == 404
    assert client.get("/open311/v2/services.csv").status_code == 404


def test_a_hotline_files_and_follows_a_case(client: TestClient, token: str) -> None:
    created = post(client, token).json()
    [receipt] = created
    assert receipt["service_notice"] == "received" and isinstance(receipt["service_request_id"], int)
    request_id = receipt["service_request_id"]
    [one] = client.get(f"/open311/v2/requests/{request_id}.json", params={"api_key": token}).json()
    assert set(one) == REQUEST_FIELDS
    assert (one["status"], one["status_notes"], one["service_code"]) == ("open", "NEW", "fire_lane_blocked")
    assert one["agency_responsible"] == "越河街道" and one["address_id"] == "zhuganxiang/g-north"
    assert datetime.fromisoformat(one["expected_datetime"]) > datetime.fromisoformat(
        one["requested_datetime"]
    )
    listing = client.get("/open311/v2/requests.json", params={"api_key": token, "status": "open"})
    assert [r["service_request_id"] for r in listing.json()] == [request_id]
    xml = client.get("/open311/v2/requests.xml", params={"api_key": token})
    root = fromstring(xml.content)
    assert root.tag == "service_requests" and root.find("request/service_request_id").text == str(request_id)  # type: ignore[union-attr]
    # Personal data never comes back, in either format.
    for body in (listing.text, xml.text):
        assert "13900000000" not in body and "z@example.org" not in body and "张" not in body
    assert client.get("/open311/v2/requests.json", params={"api_key": token, "status": "closed"}).json() == []


def test_a_hotline_report_merges_with_the_sensor_case(
    client: TestClient, token: str, settings: ApiSettings
) -> None:
    open_flooding_cases(settings.database_url, [datetime.now(UTC) - timedelta(minutes=5)])
    [receipt] = post(client, token, service_code="flooding").json()
    assert receipt["service_notice"] == "merged with case 1"


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"api_key": "yw_wrong"}, 403),
        ({"service_code": "ufo"}, 400),
        ({"address_id": "zhuganxiang/g-nowhere"}, 400),
        ({"description": ""}, 400),
    ],
)
def test_bad_requests_get_open311_errors(
    client: TestClient, token: str, fields: dict[str, str], code: int
) -> None:
    response = post(client, token, **fields)
    assert response.status_code == code
    [error] = response.json()
    assert error["code"] == code and error["description"]
    xml = post(client, token, fmt="xml", **fields)
    assert fromstring(xml.content).find("error/code").text == str(code)  # type: ignore[attr-defined, union-attr]


def test_get_requires_a_key_and_respects_jurisdiction(client: TestClient, token: str) -> None:
    assert client.get("/open311/v2/requests.json").status_code == 403
    assert client.get("/open311/v2/requests/1.json", params={"api_key": token}).status_code == 404
    assert (
        client.get(
            "/open311/v2/requests.json", params={"api_key": token, "service_request_id": "x"}
        ).status_code
        == 400
    )
