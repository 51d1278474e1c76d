"""Where a resident's report is: a building of the community, or the phone's position mapped to a grid.

A position inside a grid's polygon is that grid's; one just outside every polygon (GPS wanders by tens of
metres) goes to the grid whose outline is nearest, up to ``NEAR_ENOUGH_M``; further away it is refused,
so a report never lands in a grid it has nothing to do with.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

from cases.public_channels import Place
from contract.catalog import Community

NEAR_ENOUGH_M = 300.0
_EARTH_M = 6_371_000.0
Ring = Sequence[Sequence[float]]  # GeoJSON: [longitude, latitude] pairs


class PlaceRefused(ValueError):
    """No grid fits what the resident said; the message says what to do instead."""


def _outer(polygon: Sequence[Ring] | None) -> Ring:
    return polygon[0] if polygon else ()


def centre(polygon: Sequence[Ring] | None) -> tuple[float, float] | None:
    """A polygon's vertex average as (lat, lon): good enough for a building or a block."""
    ring = _outer(polygon)
    points = ring[:-1] if len(ring) > 1 and ring[0] == ring[-1] else ring
    if not points:
        return None
    return sum(p[1] for p in points) / len(points), sum(p[0] for p in points) / len(points)


def _inside(lat: float, lon: float, ring: Ring) -> bool:
    inside = False
    for (x1, y1), (x2, y2) in zip(ring, [*ring[1:], ring[0]], strict=True):
        if (y1 > lat) != (y2 > lat) and lon < x1 + (lat - y1) * (x2 - x1) / (y2 - y1):
            inside = not inside
    return inside


def _metres(lat: float, lon: float, ring: Ring) -> float:
    """Distance from a point to a ring's outline, on a local flat projection (fine over a community)."""
    scale = math.cos(math.radians(lat))
    px, py = lon * scale, lat
    best = math.inf
    for (x1, y1), (x2, y2) in zip(ring, [*ring[1:], ring[0]], strict=True):
        ax, bx = x1 * scale, x2 * scale
        dx, dy = bx - ax, y2 - y1
        length = dx * dx + dy * dy
        t = 0.0 if length == 0 else max(0.0, min(1.0, ((px - ax) * dx + (py - y1) * dy) / length))
        best = min(best, math.hypot(px - (ax + t * dx), py - (y1 + t * dy)))
    return math.radians(best) * _EARTH_M


def building_place(communities: Iterable[Community], building: str) -> Place:
    """A building's grid and centre; PlaceRefused when no community of the channel has it."""
    for community in communities:
        for grid in community.grids:
            for candidate in grid.buildings:
                if candidate.id == building:
                    point = centre(candidate.polygon)
                    lat, lon = point if point else (None, None)
                    return Place(community.id, grid.id, building, lat, lon)
    raise PlaceRefused(f"unknown building {building!r}: choose one from the list")


def position_place(communities: Iterable[Community], lat: float, lon: float) -> Place:
    """The grid at (or nearest to) a position; PlaceRefused when no grid outline is near enough."""
    if not (-90 <= lat <= 90 and -180 <= lon <= 180) or math.isnan(lat) or math.isnan(lon):
        raise PlaceRefused("the position is not a latitude and longitude")
    nearest: tuple[float, Place] | None = None
    for community in communities:
        for grid in community.grids:
            ring = _outer(grid.polygon)
            if len(ring) < 3:
                continue
            place = Place(community.id, grid.id, None, lat, lon)
            if _inside(lat, lon, ring):
                return place
            distance = _metres(lat, lon, ring)
            if nearest is None or distance < nearest[0]:
                nearest = (distance, place)
    if nearest is None or nearest[0] > NEAR_ENOUGH_M:
        raise PlaceRefused("the position is outside the community: choose a building instead")
    return nearest[1]
