from pathlib import Path

import pytest

from contract import ContractError
from contract.catalog import Community, load_catalog, load_model
from contract.profiles import SensorTypeProfile

CONFIG = Path(__file__).resolve().parents[2] / "config"


def profile(**fields: dict[str, object]) -> SensorTypeProfile:
    return SensorTypeProfile.model_validate({"id": "test.type@1", "name": "t", "fields": fields})


@pytest.mark.parametrize(
    ("spec", "value", "stored"),
    [
        ({"type": "float"}, 72, 72.0),
        ({"type": "float", "min": 0, "max": 500}, 500, 500.0),
        ({"type": "int"}, 3.0, 3),
        ({"type": "bool"}, True, True),
        ({"type": "string"}, "ok", "ok"),
    ],
)
def test_values_are_coerced_to_the_profile_type(
    spec: dict[str, object], value: object, stored: object
) -> None:
    out = profile(x=spec).coerce_values({"x": value})  # type: ignore[dict-item]
    assert out == {"x": stored}
    assert type(out["x"]) is type(stored)


@pytest.mark.parametrize(
    ("spec", "value", "reason"),
    [
        ({"type": "float"}, "72", "x: expected a number"),
        ({"type": "float"}, True, "x: expected a number"),
        ({"type": "int"}, 2.5, "x: expected an integer"),
        ({"type": "bool"}, 1, "x: expected a boolean"),
        ({"type": "string"}, 1, "x: expected a string"),
        (
            {"type": "float", "min": 0, "max": 500, "unit": "cm"},
            900,
            "x=900.0 outside the valid range 0.0..500.0 cm",
        ),
        ({"type": "float", "min": 0}, -1, "outside the valid range"),
    ],
)
def test_values_violating_the_profile_are_rejected(
    spec: dict[str, object], value: object, reason: str
) -> None:
    with pytest.raises(ContractError, match=reason):
        profile(x=spec).coerce_values({"x": value})  # type: ignore[dict-item]


def test_unknown_field_names_the_known_ones() -> None:
    with pytest.raises(ContractError, match=r"level: not a field of test.type@1 \(fields: x\)"):
        profile(x={"type": "float"}).coerce_values({"level": 1.0})


def test_profile_file_errors_name_file_and_field(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("id: env.th@1\nname: x\nfields:\n  t: {type: float, mni: 3}\n")
    with pytest.raises(ContractError, match=r"bad.yaml: fields.t.mni: Extra inputs are not permitted"):
        load_model(SensorTypeProfile, path)
    path.write_text("id: env.th\nname: x\nfields: {t: {type: float}}\n")
    with pytest.raises(ContractError, match=r"bad.yaml: id: String should match pattern"):
        load_model(SensorTypeProfile, path)
    path.write_text("id: env.th@1\nname: x\nfields: {t: {type: float, min: 5, max: 1}}\n")
    with pytest.raises(ContractError, match=r"fields.t: min 5.0 is above max 1.0"):
        load_model(SensorTypeProfile, path)
    path.write_text("id: [unclosed\n")
    with pytest.raises(ContractError, match=r"bad.yaml"):
        load_model(SensorTypeProfile, path)


def test_shipped_catalog_is_the_pilot_community() -> None:
    catalog = load_catalog(CONFIG)
    community = catalog.communities["zhuganxiang"]
    assert len(community.grids) == 3
    assert sum(len(g.buildings) for g in community.grids) == 6
    assert {g.id for g in community.gateways} == {"gw-01", "gw-02"}
    devices = list(catalog.devices())
    assert 25 <= len(devices) <= 35
    types = {d.profile.id for d in devices}
    assert types == {
        "env.th@1",
        "water.level@1",
        "fire.smoke@1",
        "gas.combustible@1",
        "access.door@1",
        "camera.events@1",
    }
    wl01 = catalog.device("zhuganxiang", "gw-01", "wl-01")
    assert wl01 is not None and "level_cm" in wl01.profile.fields
    assert catalog.device("zhuganxiang", "gw-02", "wl-01") is None  # a device belongs to one gateway


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"grid": "g-nowhere"}, "unknown grid 'g-nowhere'"),
        ({"building": "b-99"}, "building 'b-99' is not in grid 'g-1'"),
    ],
)
def test_community_references_must_resolve(change: dict[str, str], reason: str) -> None:
    doc = {
        "id": "c",
        "name": "c",
        "grids": [{"id": "g-1", "name": "g", "buildings": [{"id": "b-1", "name": "b"}]}],
        "gateways": [{"id": "gw", "devices": [{"id": "d-1", "type": "env.th@1", "grid": "g-1", **change}]}],
    }
    with pytest.raises(ValueError, match=reason):
        Community.model_validate(doc)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            "  a: {type: float, min: 0, max: 100, normal: [40, 20]}\n",
            "normal [40.0, 20.0]: the low end",
        ),
        (
            "  a: {type: float, min: 0, max: 100, normal: [20, 20]}\n",
            "the low end must be below the high end",
        ),
        (
            "  a: {type: float, min: 0, max: 100, normal: [-5, 20]}\n",
            "reaches outside the valid range 0.0..100.0",
        ),
        ("  a: {type: float, max: 100, normal: [5, 120]}\n", "reaches outside the valid range None..100.0"),
        ("  a: {type: bool, normal: [0, 1]}\n", "a bool field cannot have a normal band"),
        ("  a: {type: float, normal: [1]}\n", "fields.a.normal"),
        # What the wire sections already refuse, named by field: overlapping registers, unknown encodings.
        (
            "  a: {type: float}\n  b: {type: float}\nprotocol: {kind: modbus, fields: "
            "{a: {address: 0, data_type: float32}, b: {address: 1}}}\n",
            "fields a and b overlap at holding register 1",
        ),
        (
            "  a: {type: float}\nprotocol: {kind: modbus, fields: {a: {address: 0, data_type: float128}}}\n",
            "protocol.modbus.fields.a.data_type: Input should be 'bool', 'int16'",
        ),
    ],
)
def test_a_wrong_normal_band_or_wire_section_is_refused_naming_the_field(
    tmp_path: Path, body: str, message: str
) -> None:
    path = tmp_path / "t.yaml"
    path.write_text("id: t.x@1\nname: t\nfields:\n" + body)
    with pytest.raises(ContractError) as err:
        load_model(SensorTypeProfile, path)
    assert str(path) in str(err.value) and message in str(err.value)


def test_a_normal_band_inside_the_range_loads() -> None:
    spec = profile(x={"type": "float", "min": 0, "max": 100, "normal": [20, 40]}).fields["x"]
    assert spec.normal == (20.0, 40.0)
