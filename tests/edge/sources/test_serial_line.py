"""Serial line protocols: framing and parsing tables, then a real line emitter on a socat pty."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from contract.catalog import load_model
from contract.profiles import SensorTypeProfile, SerialLineProtocol
from edge.gateway_config import BusConfig, DeviceConfig
from edge.sources.base import BoundDevice, SourceBatch
from edge.sources.framing import Framer, nmea_checksum_ok, nmea_sentence
from edge.sources.parsers import LineError, NotForUs, parse_frame
from edge.sources.serial_line import SerialLineSource
from tests.edge.sources.emulators import pty_pair, run_line_emitter

CONFIG = Path(__file__).resolve().parents[3] / "config" / "sensor-types"
GGA = "GPGGA,123519,3524.2170,N,11635.0530,E,1,08,0.9,45.4,M,46.9,M,,"


def profile(name: str) -> SensorTypeProfile:
    return load_model(SensorTypeProfile, CONFIG / f"{name}.yaml")


def protocol(name: str) -> SerialLineProtocol:
    p = profile(name).protocol
    assert isinstance(p, SerialLineProtocol)
    return p


def test_framer_handles_partial_lines_bursts_and_noise() -> None:
    f = Framer(delimiter=b"\r\n", max_frame_bytes=16)
    assert f.feed(b"\x00\xffgarb") == []
    assert f.feed(b"age\r\n$A,1*") == [b"\x00\xffgarbage"]
    assert f.feed(b"00\r\n$B\r\n$C\r\n") == [b"$A,1*00", b"$B", b"$C"]
    assert f.feed(b"x" * 40) == []  # an over-long frame is dropped ...
    assert f.feed(b"yy\r\n$D\r\n") == [b"$D"]  # ... up to its delimiter, and framing resumes
    assert f.discarded == 1


def test_length_framing() -> None:
    f = Framer(delimiter=None, length=4)
    assert f.feed(b"abcdef") == [b"abcd"]
    assert f.feed(b"gh") == [b"efgh"]


@pytest.mark.parametrize(
    ("sentence", "ok"),
    [
        (nmea_sentence(GGA), True),
        ("$GPGSV,3,1,11,03,03,111,00,04,15,270,00,06,01,010,00,13,06,292,00*74", True),
        (nmea_sentence(GGA)[:-1] + "0", False),
        (nmea_sentence(GGA).replace("3524", "3525"), False),
        ("$GPGGA,1,2,3", False),
        ("GPGGA*00", False),
        ("$GPGGA*zz", False),
    ],
)
def test_nmea_checksum(sentence: str, ok: bool) -> None:
    assert nmea_checksum_ok(sentence) is ok


def test_nmea_gga_is_parsed_by_the_profile() -> None:
    values = parse_frame(protocol("geo.gps"), nmea_sentence(GGA).encode())
    assert values == {
        "latitude": pytest.approx(35 + 24.217 / 60),
        "longitude": pytest.approx(116 + 35.053 / 60),
        "fix_quality": 1,
        "satellites": 8,
        "hdop": pytest.approx(0.9),
        "altitude_m": pytest.approx(45.4),
    }
    south = parse_frame(
        protocol("geo.gps"), nmea_sentence(GGA.replace(",N,", ",S,").replace(",E,", ",W,")).encode()
    )
    assert south["latitude"] == pytest.approx(-(35 + 24.217 / 60))
    assert south["longitude"] == pytest.approx(-(116 + 35.053 / 60))


@pytest.mark.parametrize(
    ("frame", "error"),
    [
        (nmea_sentence(GGA)[:-2].encode() + b"00", "checksum"),
        (nmea_sentence("GPGGA,123519,,,,,0,00,,,M,,M,,").encode(), "latitude: empty value"),
        (nmea_sentence("GPGGA,123519,3524.2170,X,11635.0530,E,1,08,0.9,45.4").encode(), "hemisphere"),
        (nmea_sentence("GPGGA,1").encode(), "latitude: column 2 missing"),
        (nmea_sentence("GPGGA,1,2").encode(), "hemisphere '' is not"),
        (b"\xff\xfe$GP", "not ASCII"),
    ],
)
def test_bad_nmea_frames_say_why(frame: bytes, error: str) -> None:
    with pytest.raises(LineError, match=error):
        parse_frame(protocol("geo.gps"), frame)


def test_other_sentences_are_not_errors() -> None:
    with pytest.raises(NotForUs):
        parse_frame(protocol("geo.gps"), nmea_sentence("GPRMC,123519,A,4807.038,N,01131.000,E").encode())


@pytest.mark.parametrize(
    ("frame", "expected"),
    [
        (b"12,25.5,40", {"pm1_0": 12.0, "pm2_5": 25.5, "pm10": 40.0}),
        (b" 1 , 2 , 3 ", {"pm1_0": 1.0, "pm2_5": 2.0, "pm10": 3.0}),
    ],
)
def test_csv_lines(frame: bytes, expected: dict[str, float]) -> None:
    assert parse_frame(protocol("air.pm"), frame) == expected


@pytest.mark.parametrize(
    ("frame", "error"), [(b"12,x,40", "pm2_5: 'x' is not a number"), (b"12,13", "pm10: column 2")]
)
def test_bad_csv_lines(frame: bytes, error: str) -> None:
    with pytest.raises(LineError, match=error):
        parse_frame(protocol("air.pm"), frame)


def test_json_lines() -> None:
    p = SerialLineProtocol.model_validate(
        {
            "kind": "serial_line",
            "parser": "json",
            "fields": {"pm2_5": {"key": "pm25"}, "ok": {"key": "ok", "convert": "bool"}},
        }
    )
    assert parse_frame(p, b'{"pm25": 7, "ok": "on"}') == {"pm2_5": 7.0, "ok": True}
    with pytest.raises(LineError, match="key 'pm25' missing"):
        parse_frame(p, b'{"ok": 1}')
    with pytest.raises(LineError, match="not JSON"):
        parse_frame(p, b'{"pm25": ')


def source(port: str, type_name: str, device: str) -> SerialLineSource:
    p = profile(type_name)
    cfg = DeviceConfig(id=device, type=p.id, deadband={}, max_interval_s=0.001)
    return SerialLineSource(
        BusConfig(id=f"{device}-port", kind="serial_line", port=port, devices=[cfg]), [BoundDevice(cfg, p)]
    )


@pytest.mark.integration
def test_gps_emitter_with_partial_lines_and_noise() -> None:
    good = [nmea_sentence(GGA.replace("08", f"{n:02d}")) + "\r\n" for n in (5, 6, 7)]
    stream = (
        b"\x00\x13\xfe noise before the first frame\r\n"
        + good[0][:20].encode()  # a sentence cut in two writes
        + good[0][20:].encode()
        + nmea_sentence("GPRMC,123519,A,4807.038,N,01131.000,E").encode()
        + b"\r\n"
        + (nmea_sentence(GGA)[:-2] + "00\r\n").encode()  # bad checksum
        + good[1].encode()
        + good[2].encode()  # a burst of two
    )
    chunks = [stream[i : i + 7] for i in range(0, len(stream), 7)]
    with pty_pair() as pty:
        src = source(pty.gateway, "geo.gps", "gps-1")

        async def scenario() -> list[SourceBatch]:
            out: list[SourceBatch] = []
            join = None
            try:
                while len([r for b in out for r in b.readings]) < 3:
                    if join is None:
                        await asyncio.sleep(0)  # open the port first: a pty drops what nobody reads
                        src._open()
                        join = run_line_emitter(pty.device, chunks, gap_s=0.002)
                    out.append(await asyncio.wait_for(src.read(), 10))
            finally:
                await src.aclose()
                if join:
                    join()
            return out

        batches = asyncio.run(scenario())
    readings = [r for b in batches for r in b.readings]
    assert [r.values["satellites"] for r in readings] == [5, 6, 7]
    assert all(r.device == "gps-1" for r in readings)
    assert src.bad_frames == 2  # the noise line and the bad checksum; RMC is simply not ours


@pytest.mark.integration
def test_particulate_csv_emitter() -> None:
    with pty_pair() as pty:
        src = source(pty.gateway, "air.pm", "pm-1")

        async def scenario() -> list[SourceBatch]:
            src._open()
            join = run_line_emitter(pty.device, [b"12,25", b".5,40\n3,4,5\nbad,line\n"])
            try:
                return [await asyncio.wait_for(src.read(), 10) for _ in range(2)]
            finally:
                await src.aclose()
                join()

        first, second = asyncio.run(scenario())
    assert first.readings[0].values == {"pm1_0": 12.0, "pm2_5": 25.5, "pm10": 40.0}
    assert second.readings[0].values == {"pm1_0": 3.0, "pm2_5": 4.0, "pm10": 5.0}


@pytest.mark.integration
def test_a_silent_line_device_becomes_unavailable_then_available() -> None:
    with pty_pair() as pty:
        src = source(pty.gateway, "air.pm", "pm-1")
        src.stale_s = 0.3  # three expected intervals, shortened for the test

        async def scenario() -> list[SourceBatch]:
            src._open()
            try:
                first = await asyncio.wait_for(src.read(), 10)  # nothing arrives: unavailable
                join = run_line_emitter(pty.device, [b"1,2,3\n"])
                second = await asyncio.wait_for(src.read(), 10)
                join()
                return [first, second]
            finally:
                await src.aclose()

        silent, back = asyncio.run(scenario())
    assert [e.kind for e in silent.events] == ["device.unavailable"] and not silent.readings
    assert "no valid frame" in str(silent.events[0].attrs["reason"])
    assert [e.kind for e in back.events] == ["device.available"]
    assert back.readings[0].values == {"pm1_0": 1.0, "pm2_5": 2.0, "pm10": 3.0}
