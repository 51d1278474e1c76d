"""GCJ-02 ↔ WGS-84 against eviltransform's published test points, and the inverse's precision."""

from __future__ import annotations

import pytest

from contract.geo import gcj02_to_wgs84, wgs84_to_gcj02

# (wgs lat, wgs lon, gcj lat, gcj lon): Shanghai, Shenzhen, Beijing from eviltransform's test suite.
POINTS = [
    (31.1774276, 121.5272106, 31.17530398364597, 121.531541859215),
    (22.543847, 113.912316, 22.540796131694766, 113.9171764808363),
    (39.911954, 116.377817, 39.91334545536069, 116.38404722455657),
]


@pytest.mark.parametrize(("wlat", "wlon", "glat", "glon"), POINTS)
def test_forward_matches_the_reference(wlat: float, wlon: float, glat: float, glon: float) -> None:
    lat, lon = wgs84_to_gcj02(wlat, wlon)
    assert lat == pytest.approx(glat, abs=1e-9) and lon == pytest.approx(glon, abs=1e-9)


@pytest.mark.parametrize(("wlat", "wlon", "glat", "glon"), POINTS)
def test_inverse_recovers_wgs84_to_a_tenth_of_a_millimetre(
    wlat: float, wlon: float, glat: float, glon: float
) -> None:
    lat, lon = gcj02_to_wgs84(glat, glon)
    assert lat == pytest.approx(wlat, abs=1e-8) and lon == pytest.approx(wlon, abs=1e-8)


def test_outside_china_there_is_no_offset() -> None:
    assert wgs84_to_gcj02(51.5, -0.12) == (51.5, -0.12)
    assert gcj02_to_wgs84(51.5, -0.12) == (51.5, -0.12)
