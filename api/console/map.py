"""The console's map: a community's grids, buildings, devices and open cases, drawn by Leaflet.

Leaflet is vendored under ``/static/vendor/leaflet`` (no CDN): the page's script and data come from this
origin, so the console's strict Content-Security-Policy holds. There is no base layer unless the
deployment names a tile service (``YIWANG_MAP_TILE_URL``); the map page alone then lets images come
from exactly that service's origins.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request, status
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from api.console.i18n import STATE_NAMES
from api.console.i18n_map import MAP_TEXT
from api.console.web import ConsoleUser, language, page
from api.deps import ResourcesDep
from api.routes.map import community_map
from api.scope import sees_area
from api.security_headers import console_csp
from api.settings import ApiSettings
from contract.ids import ID_PATTERN

router = APIRouter(include_in_schema=False)
CommunityId = Annotated[str, Path(pattern=ID_PATTERN)]


def _tile_layer(settings: ApiSettings) -> dict[str, Any] | None:
    if not settings.map_tile_url:
        return None
    return {
        "url": settings.map_tile_url,
        "subdomains": settings.map_tile_subdomains,
        "attribution": settings.map_tile_attribution,
    }


@router.get("/console/map", response_class=HTMLResponse, response_model=None)
def map_index(request: Request, resources: ResourcesDep, user: ConsoleUser) -> Response:
    """The first community of the jurisdiction (the others are one click away on its page)."""
    visible = sorted(c for c in resources.catalog.communities if sees_area(user, resources.policy, c))
    if not visible:
        return page(
            request, resources, "map.html", user=user, community=None, communities=[], **_words(request)
        )
    return RedirectResponse(f"/console/map/{visible[0]}", status_code=status.HTTP_303_SEE_OTHER)


# Before the page's route: a community id has no dot, so the two never match the same path.
@router.get("/console/map/{community}.geojson", response_model=None)
def map_data(
    community: CommunityId, request: Request, resources: ResourcesDep, user: ConsoleUser
) -> Response:
    """The same FeatureCollection as ``GET /api/v1/communities/{community}/map``, for the session."""
    return JSONResponse(community_map(resources, user, community, language(request)))


@router.get("/console/map/{community}", response_class=HTMLResponse, response_model=None)
def map_page(
    community: CommunityId, request: Request, resources: ResourcesDep, user: ConsoleUser
) -> Response:
    catalog = resources.catalog
    if community not in catalog.communities or not sees_area(user, resources.policy, community):
        return RedirectResponse("/console/map", status_code=status.HTTP_303_SEE_OTHER)
    visible = [
        (c.id, c.name)
        for c in sorted(catalog.communities.values(), key=lambda c: c.id)
        if sees_area(user, resources.policy, c.id)
    ]
    tiles = _tile_layer(resources.settings)
    response = page(
        request,
        resources,
        "map.html",
        user=user,
        community=catalog.communities[community],
        communities=visible,
        tiles=json.dumps(tiles, ensure_ascii=False) if tiles else "",
        **_words(request),
    )
    if tiles is not None:
        response.headers["Content-Security-Policy"] = console_csp(resources.settings.map_tile_origins())
    return response


def _words(request: Request) -> dict[str, Any]:
    """The words the script draws markers with (the template has the whole catalogue as ``t``)."""
    lang = language(request)
    return {"map_words": json.dumps({**MAP_TEXT[lang], "states": STATE_NAMES[lang]}, ensure_ascii=False)}
