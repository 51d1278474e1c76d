"""Parsers for the AT answers a 5G modem gives about its link (Quectel-style, 3GPP TS 27.007).

Pure functions from response lines to field values of ``gateway.modem@1``; a value the modem does not
report (``99``, ``-``, a RAT without it) is simply absent, never invented.
"""

from __future__ import annotations

import math

from contract.profiles import Scalar


def _fields(line: str, prefix: str) -> list[str] | None:
    if not line.startswith(prefix):
        return None
    return [part.strip().strip('"') for part in line[len(prefix) :].split(",")]


def _number(parts: list[str], index: int) -> float | None:
    try:
        value = float(parts[index])
    except (IndexError, ValueError):
        return None
    return value if math.isfinite(value) else None  # "nan" and "inf" parse as floats


def parse_csq(lines: list[str]) -> dict[str, Scalar]:
    """``+CSQ: <rssi>,<ber>``: rssi 0..31 is -113 + 2n dBm; 99 means not known."""
    for line in lines:
        parts = _fields(line, "+CSQ:")
        if parts is not None:
            n = _number(parts, 0)
            if n is not None and 0 <= n <= 31:
                return {"rssi_dbm": -113.0 + 2 * n}
    return {}


def parse_creg(lines: list[str]) -> dict[str, Scalar]:
    """``+CREG: <n>,<stat>[,...]``: stat 1 (home) or 5 (roaming) is registered."""
    for line in lines:
        parts = _fields(line, "+CREG:")
        if parts is not None and len(parts) >= 2:
            return {"registered": parts[1] in ("1", "5")}
    return {}


def parse_cops(lines: list[str]) -> dict[str, Scalar]:
    """``+COPS: <mode>,<format>,"<operator>",<act>``."""
    for line in lines:
        parts = _fields(line, "+COPS:")
        if parts is not None and len(parts) >= 3 and parts[2]:
            return {"operator": parts[2][:64]}
    return {}


def parse_qgdcnt(lines: list[str]) -> dict[str, Scalar]:
    """``+QGDCNT: <bytes sent>,<bytes received>`` (data usage since the counter was reset)."""
    for line in lines:
        parts = _fields(line, "+QGDCNT:")
        if parts is not None and len(parts) >= 2 and parts[0].isdigit() and parts[1].isdigit():
            return {"tx_bytes": int(parts[0]), "rx_bytes": int(parts[1])}
    return {}


def _signal(out: dict[str, Scalar], rsrp: float | None, rsrq: float | None, sinr: float | None) -> None:
    for name, value in (("rsrp_dbm", rsrp), ("rsrq_db", rsrq), ("sinr_db", sinr)):
        if value is not None:
            out[name] = value


def parse_qeng(lines: list[str]) -> dict[str, Scalar]:
    """``AT+QENG="servingcell"`` for NR5G-SA, LTE and NR5G-NSA (LTE anchor line plus an NR line)."""
    out: dict[str, Scalar] = {}
    for line in lines:
        parts = _fields(line, "+QENG:")
        if parts is None or not parts:
            continue
        if parts[0] == "servingcell" and len(parts) > 2:
            rat = parts[2]
            # A short answer (no cell yet, a firmware that cuts it) has no cell id to report.
            if rat == "NR5G-SA" and len(parts) > 6:
                out.update(access=rat, cell_id=parts[6])
                _signal(out, _number(parts, 12), _number(parts, 13), _number(parts, 14))
            elif rat == "LTE" and len(parts) > 6:
                out.update(access=rat, cell_id=parts[6])
                _signal(out, _number(parts, 13), _number(parts, 14), _number(parts, 16))
        elif parts[0] == "LTE" and len(parts) > 4:  # the anchor cell of an NSA connection
            out.update(access="NR5G-NSA", cell_id=parts[4])
            _signal(out, _number(parts, 11), _number(parts, 12), _number(parts, 14))
        elif parts[0] == "NR5G-NSA":
            # The NR leg carries the data: its signal is the one that matters.
            _signal(out, _number(parts, 4), _number(parts, 6), _number(parts, 5))
    return out
