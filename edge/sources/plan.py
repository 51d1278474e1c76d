"""Register coalescing: a device's fields as few Modbus requests as possible.

Adjacent or near registers of one slave and one table are read in one request, bridging gaps of at
most ``max_gap`` unused registers and never exceeding the protocol's limit (125 registers, 2,000
bits). EdgeX (#629) and ThingsBoard's gateway read field by field, which on a 9,600-baud bus costs
one request turnaround per field. The plan is derived once, when the config loads.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from contract.profiles import MAX_READ_BITS, MAX_READ_REGISTERS, ModbusPoint


@dataclass(frozen=True, slots=True)
class Block:
    """One read request: ``count`` registers (or bits) from ``start`` of one table."""

    function: str
    start: int
    count: int
    points: tuple[tuple[str, ModbusPoint], ...]

    def slice_for(self, point: ModbusPoint) -> slice:
        first = point.address - self.start
        return slice(first, first + point.count)


def plan_blocks(points: Mapping[str, ModbusPoint], *, max_gap: int) -> list[Block]:
    """Coalesced requests, ordered by table and address."""
    blocks: list[Block] = []
    by_function: dict[str, list[tuple[str, ModbusPoint]]] = {}
    for name, point in points.items():
        by_function.setdefault(point.function, []).append((name, point))
    for function in sorted(by_function):
        limit = MAX_READ_BITS if function in ("coil", "discrete") else MAX_READ_REGISTERS
        members = sorted(by_function[function], key=lambda item: item[1].address)
        current: list[tuple[str, ModbusPoint]] = []
        start = end = 0  # end: one past the last register of the block
        for name, point in members:
            point_end = point.address + point.count
            if current and point.address - end <= max_gap and max(end, point_end) - start <= limit:
                current.append((name, point))
                end = max(end, point_end)
                continue
            if current:
                blocks.append(Block(function, start, end - start, tuple(current)))
            current, start, end = [(name, point)], point.address, point_end
        if current:
            blocks.append(Block(function, start, end - start, tuple(current)))
    return blocks


def plan_uncoalesced(points: Mapping[str, ModbusPoint]) -> list[Block]:
    """One request per field: the baseline the bench compares against."""
    return [
        Block(p.function, p.address, p.count, ((name, p),))
        for name, p in sorted(points.items(), key=lambda item: (item[1].function, item[1].address))
    ]
