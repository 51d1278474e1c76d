"""Register coalescing: near registers of one table in one request, within the 125-register limit."""

from __future__ import annotations

from contract.profiles import ModbusPoint
from edge.sources.plan import plan_blocks, plan_uncoalesced


def pts(**spec: tuple[str, int, str]) -> dict[str, ModbusPoint]:
    return {
        name: ModbusPoint(function=f, address=a, data_type=t)  # type: ignore[arg-type]
        for name, (f, a, t) in spec.items()
    }


def shape(points: dict[str, ModbusPoint], max_gap: int = 8) -> list[tuple[str, int, int, list[str]]]:
    return [
        (b.function, b.start, b.count, [n for n, _ in b.points]) for b in plan_blocks(points, max_gap=max_gap)
    ]


def test_adjacent_and_near_registers_share_one_request() -> None:
    p = pts(a=("holding", 0, "float32"), b=("holding", 2, "uint16"), c=("holding", 10, "int32"))
    assert shape(p) == [("holding", 0, 12, ["a", "b", "c"])]


def test_a_gap_wider_than_max_gap_splits() -> None:
    p = pts(a=("holding", 0, "uint16"), b=("holding", 10, "uint16"))
    assert shape(p, max_gap=8) == [("holding", 0, 1, ["a"]), ("holding", 10, 1, ["b"])]
    assert shape(p, max_gap=9) == [("holding", 0, 11, ["a", "b"])]


def test_tables_are_never_mixed() -> None:
    p = pts(a=("holding", 0, "uint16"), b=("input", 1, "uint16"), c=("coil", 0, "bool"))
    assert [s[0] for s in shape(p)] == ["coil", "holding", "input"]


def test_the_125_register_limit_is_respected() -> None:
    p = {f"f{i}": ModbusPoint(address=i * 2, data_type="float32") for i in range(100)}  # 200 registers
    blocks = plan_blocks(p, max_gap=8)
    assert [b.count for b in blocks] == [124, 76]
    assert all(b.count <= 125 for b in blocks)
    assert sum(len(b.points) for b in blocks) == 100


def test_a_value_is_never_split_across_requests() -> None:
    p = {f"f{i}": ModbusPoint(address=i * 4, data_type="float64") for i in range(40)}
    for block in plan_blocks(p, max_gap=8):
        for _, point in block.points:
            assert block.start <= point.address and point.address + 4 <= block.start + block.count


def test_uncoalesced_is_one_request_per_field() -> None:
    p = pts(a=("holding", 0, "uint16"), b=("holding", 1, "uint16"))
    assert len(plan_uncoalesced(p)) == 2
