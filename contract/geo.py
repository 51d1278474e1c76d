"""Coordinates and outlines of places: WGS-84 points, GeoJSON polygons, GCJ-02 input.

The registry stores WGS-84 (what GPS, GeoJSON and Leaflet speak). Chinese map services (AMap, Tencent,
天地图's Chinese-offset layers) show GCJ-02, the state-mandated offset datum, so coordinates read off
them arrive offset by a few hundred metres; :func:`gcj02_to_wgs84` takes that offset back out.

The GCJ-02 transform is written here rather than taken from a package: it is forty lines of published
arithmetic, and the packages that carry it (eviltransform, coord-convert) are unmaintained single-file
copies of the same formulas. The forward formula is the one every implementation shares; the inverse is
solved by fixed-point iteration to well under a centimetre, checked against eviltransform's test points.
"""

from __future__ import annotations

import math
from typing import Annotated

from pydantic import AfterValidator

_A = 6378245.0  # the Krasovsky 1940 ellipsoid GCJ-02 is defined on
_EE = 0.00669342162296594323


def _in_china(lat: float, lon: float) -> bool:
    """The rough box outside which GCJ-02 applies no offset (as every implementation has it)."""
    return 0.8293 <= lat <= 55.8271 and 72.004 <= lon <= 137.8347


def _offset(lat: float, lon: float) -> tuple[float, float]:
    x, y = lon - 105.0, lat - 35.0
    common = (20.0 * math.sin(6.0 * x * math.pi) + 20.0 * math.sin(2.0 * x * math.pi)) * 2.0 / 3.0
    dlat = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * math.sqrt(abs(x)) + common
    dlat += (20.0 * math.sin(y * math.pi) + 40.0 * math.sin(y / 3.0 * math.pi)) * 2.0 / 3.0
    dlat += (160.0 * math.sin(y / 12.0 * math.pi) + 320.0 * math.sin(y * math.pi / 30.0)) * 2.0 / 3.0
    dlon = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * math.sqrt(abs(x)) + common
    dlon += (20.0 * math.sin(x * math.pi) + 40.0 * math.sin(x / 3.0 * math.pi)) * 2.0 / 3.0
    dlon += (150.0 * math.sin(x / 12.0 * math.pi) + 300.0 * math.sin(x / 30.0 * math.pi)) * 2.0 / 3.0
    rad = lat / 180.0 * math.pi
    magic = 1 - _EE * math.sin(rad) ** 2
    dlat = dlat * 180.0 / ((_A * (1 - _EE)) / (magic * math.sqrt(magic)) * math.pi)
    dlon = dlon * 180.0 / (_A / math.sqrt(magic) * math.cos(rad) * math.pi)
    return dlat, dlon


def wgs84_to_gcj02(lat: float, lon: float) -> tuple[float, float]:
    if not _in_china(lat, lon):
        return lat, lon
    dlat, dlon = _offset(lat, lon)
    return lat + dlat, lon + dlon


def gcj02_to_wgs84(lat: float, lon: float) -> tuple[float, float]:
    """The WGS-84 point whose GCJ-02 image is (lat, lon), to better than 1e-9 degrees (≈ 0.1 mm)."""
    wlat, wlon = lat, lon
    for _ in range(30):
        glat, glon = wgs84_to_gcj02(wlat, wlon)
        dlat, dlon = glat - lat, glon - lon
        wlat, wlon = wlat - dlat, wlon - dlon
        if abs(dlat) < 1e-10 and abs(dlon) < 1e-10:
            break
    return wlat, wlon


def _check_latitude(value: float) -> float:
    if not -90.0 <= value <= 90.0:
        raise ValueError(f"latitude {value} is outside -90..90")
    return value


def _check_longitude(value: float) -> float:
    if not -180.0 <= value <= 180.0:
        raise ValueError(f"longitude {value} is outside -180..180")
    return value


Latitude = Annotated[float, AfterValidator(_check_latitude)]
Longitude = Annotated[float, AfterValidator(_check_longitude)]

MAX_RING_POINTS = 2_000  # a building or a grid, not a coastline


def _check_polygon(rings: list[list[list[float]]]) -> list[list[list[float]]]:
    """A GeoJSON Polygon's ``coordinates``: closed rings of [lon, lat] with at least four positions."""
    if not rings:
        raise ValueError("a polygon needs at least one ring")
    for n, ring in enumerate(rings):
        name = "outer ring" if n == 0 else f"hole {n}"
        if len(ring) > MAX_RING_POINTS:
            raise ValueError(f"{name} has {len(ring)} positions; at most {MAX_RING_POINTS}")
        if len(ring) < 4:
            raise ValueError(f"{name} has {len(ring)} positions; a closed ring needs at least 4")
        for position in ring:
            if len(position) != 2:
                raise ValueError(f"{name}: a position is [longitude, latitude], not {position}")
            _check_longitude(position[0])
            _check_latitude(position[1])
        if ring[0] != ring[-1]:
            raise ValueError(f"{name} does not close: its last position must repeat its first")
    return rings


PolygonCoordinates = Annotated[list[list[list[float]]], AfterValidator(_check_polygon)]
