"""The fast decoder never disagrees with the contract's: same points, or it defers (None)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from contract import ContractError
from contract.catalog import Catalog, load_catalog
from ingest.fastpath import FastDecoder
from ingest.validate import Decoded, decode_telemetry
from series.lineprotocol import encode_point
from series.store import Point

CONFIG = Path(__file__).resolve().parents[2] / "config"
TOPIC = "yiwang/v1/zhuganxiang/gw-01/telemetry"
TS = 1764183600000


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog(CONFIG)


def slow(catalog: Catalog, topic: str, payload: bytes) -> Decoded | None:
    try:
        return decode_telemetry(topic, payload, catalog)
    except ContractError:
        return None


def assert_agrees_or_defers(catalog: Catalog, topic: str, payload: bytes) -> Decoded | None:
    """Both modes defer alike; when they do not, points mode gives the contract's points and lines mode
    exactly the lines the encoder writes for them."""
    points = FastDecoder(catalog).decode(topic, payload)
    lines = FastDecoder(catalog, lines=True).decode(topic, payload)
    assert (points is None) == (lines is None)
    if points is not None and lines is not None:
        expected = slow(catalog, topic, payload)
        assert points == expected
        assert lines.points == [encode_point(p) for p in expected.points]
        assert (lines.topic, lines.seq) == (expected.topic, expected.seq)
    return points


def doc(*readings: dict[str, object], seq: object = 1) -> bytes:
    return json.dumps({"seq": seq, "readings": list(readings)}).encode()


def reading(device: str = "wl-01", ts: object = TS, **values: object) -> dict[str, object]:
    return {"device": device, "ts": ts, "values": values or {"level_cm": 12.5}}


def test_valid_message_gives_the_contracts_points_or_their_lines(catalog: Catalog) -> None:
    payload = doc(reading(level_cm=72), reading(ts=TS + 1, level_cm=3.25))
    fast = assert_agrees_or_defers(catalog, TOPIC, payload)
    assert fast is not None
    for point in fast.points:
        assert isinstance(point, Point)
        assert type(point.fields["level_cm"]) is float  # an int on the wire: the profile's float
    lines = FastDecoder(catalog, lines=True).decode(TOPIC, payload)
    assert lines is not None
    assert lines.points == [
        f"water.level,community=zhuganxiang,device=wl-01,gateway=gw-01,grid=g-north level_cm=72.0 {TS}",
        f"water.level,community=zhuganxiang,device=wl-01,gateway=gw-01,grid=g-north level_cm=3.25 {TS + 1}",
    ]


@pytest.mark.parametrize(
    "payload",
    [
        b"{not json",
        b'{"seq": 1, "readings": [{"device": "wl-01", "ts": 1764183600000, "values": {"level_cm": NaN}}]}',
        b'{"seq": 1, "readings": [{"device": "wl-01", "ts": 1764183600000, "values": {"level_cm": 1e400}}]}',
        doc(reading(device="ghost")),
        doc(reading(level_cm=900)),
        doc(reading(level_cm="high")),
        doc(reading(level_cm=True)),
        doc(reading(depth=3)),
        doc(reading(ts=1764183600)),  # seconds, not milliseconds
        doc(reading(ts=float(TS))),
        doc(reading(), seq=True),
        doc(reading(), seq=-1),
        doc(),
        json.dumps({"seq": 1, "readings": [reading()], "extra": 1}).encode(),
        json.dumps({"seq": 1, "readings": [{**reading(), "extra": 1}]}).encode(),
    ],
)
def test_anything_unusual_is_left_to_the_contract(catalog: Catalog, payload: bytes) -> None:
    assert FastDecoder(catalog).decode(TOPIC, payload) is None
    assert FastDecoder(catalog, lines=True).decode(TOPIC, payload) is None


@pytest.mark.parametrize(
    "topic",
    [
        "yiwang/v1/zhuganxiang/gw-01/event",
        "yiwang/v1/zhuganxiang/GW/telemetry",
        "yiwang/v2/a/b/telemetry",
        "x",
    ],
)
def test_other_topics_are_left_to_the_contract(catalog: Catalog, topic: str) -> None:
    assert FastDecoder(catalog).decode(topic, doc(reading())) is None
    assert FastDecoder(catalog, lines=True).decode(topic, doc(reading())) is None


_values = st.one_of(
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.booleans(),
    st.text(max_size=5),
    st.none(),
    st.lists(st.integers(), max_size=2),
)
_readings = st.fixed_dictionaries(
    {
        "device": st.sampled_from(["wl-01", "wl-02", "wl-03", "th-0101", "ghost"]),
        "ts": st.one_of(st.integers(0, 2 * 10**13), st.just(TS)),
        "values": st.dictionaries(
            st.sampled_from(["level_cm", "temperature", "humidity", "depth"]), _values, max_size=3
        ),
    }
)


@settings(max_examples=300, deadline=None)
@given(
    seq=st.one_of(st.integers(-2, 2**64), st.booleans()),
    readings=st.lists(_readings, max_size=4),
    topic=st.sampled_from(
        [TOPIC, "yiwang/v1/zhuganxiang/gw-02/telemetry", "yiwang/v1/zhuganxiang/gw-01/event"]
    ),
)
def test_fast_path_agrees_with_the_contract_or_defers(
    catalog: Catalog, seq: object, readings: list[dict[str, object]], topic: str
) -> None:
    assert_agrees_or_defers(catalog, topic, json.dumps({"seq": seq, "readings": readings}).encode())


@pytest.fixture(scope="module")
def mixed_catalog(tmp_path_factory: pytest.TempPathFactory) -> Catalog:
    """Every field type: a modem (string, int, bool, float fields) and a door contact (bool)."""
    root = tmp_path_factory.mktemp("mixed")
    shutil.copytree(CONFIG / "sensor-types", root / "sensor-types")
    (root / "communities").mkdir()
    community = {
        "id": "mix",
        "name": "mix",
        "grids": [{"id": "g-1", "name": "g"}],
        "gateways": [
            {
                "id": "gw-01",
                "devices": [
                    {"id": "m-1", "type": "gateway.modem@1", "grid": "g-1"},
                    {"id": "dc-1", "type": "access.door@1", "grid": "g-1"},
                ],
            }
        ],
    }
    (root / "communities" / "mix.yaml").write_text(yaml.safe_dump(community))
    return load_catalog(root)


_any_value = st.one_of(
    st.integers(-(2**64), 2**64),
    st.floats(allow_nan=False, allow_infinity=False),
    st.booleans(),
    st.text(alphabet=st.sampled_from('ab"\\ ,=\n\r中'), max_size=6),
    st.text(min_size=250, max_size=260),
)


@settings(max_examples=300, deadline=None)
@given(
    device=st.sampled_from(["m-1", "dc-1"]),
    values=st.dictionaries(
        st.sampled_from(["access", "operator", "rx_bytes", "registered", "rsrp_dbm", "open", "bogus"]),
        _any_value,
        min_size=1,
        max_size=4,
    ),
)
def test_every_field_type_agrees_with_the_contract_and_the_encoder(
    mixed_catalog: Catalog, device: str, values: dict[str, object]
) -> None:
    assert_agrees_or_defers(
        mixed_catalog, "yiwang/v1/mix/gw-01/telemetry", doc(reading(device=device, **values))
    )
