"""Sensor types and rules changed while the platform runs (#28).

Profiles and rule files are stored versioned (``registry.definitions``); every service follows the
store's revision and applies a change within seconds (ingest validates readings of a new type, the
alert engine swaps its rules keeping the state of unchanged ones). A change is checked completely
before anything is stored: a refused one leaves the running set as it was. District admins and
operators change them; everyone signed in reads them. Writes are audited by the middleware, and each
stored version keeps who made it and from where. The body's size is checked before any parsing.
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime
from typing import Annotated, Any
from weakref import WeakKeyDictionary

from fastapi import APIRouter, HTTPException, Query, Request, Response, status
from pydantic import BaseModel
from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool

from alerts.rules import (
    Rule,
    check_rules,
    config_definitions,
    parse_rules,
    rule_document,
    rules_of_files,
    with_rule,
)
from api.accounts import User
from api.deps import CurrentUser, Resources, ResourcesDep
from api.errors import problem
from api.scope import may_change_definitions
from contract.errors import ContractError
from contract.profiles import SensorTypeProfile
from registry import definitions
from registry.definitions import MAX_DOCUMENT_BYTES, DefinitionConflict
from registry.live_definitions import LiveDefinitions

log = logging.getLogger(__name__)
router = APIRouter(prefix="/api/v1", tags=["sensor-types"])
DEFAULT_RULE_FILE = "api"
FILE_NAME = r"^[a-z0-9][a-z0-9_-]{0,95}$"
_YAML_BODY = {
    "requestBody": {
        "content": {"application/yaml": {"schema": {"type": "string"}}, "application/json": {}},
        "required": True,
    }
}

# -- the definitions the API runs on ------------------------------------------------------------------

_live: WeakKeyDictionary[Engine, LiveDefinitions] = WeakKeyDictionary()  # one per app's database
_live_lock = threading.Lock()


def live_definitions(resources: Resources) -> LiveDefinitions:
    """The app's view of the stored definitions, brought up to date (one row read when nothing moved).

    The API's rule list follows it: ``resources.rules`` is swapped when the stored rule files change.
    Reading never writes: until something is stored, config/'s rules are the ones served.
    """
    with _live_lock:
        live = _live.get(resources.db)
        if live is None:
            live = _live[resources.db] = LiveDefinitions(resources.db)
    if live.refresh() and live.current is not None and live.current.rule_files:
        files = ((f.name, f.document) for f in live.current.rule_files.values())
        try:
            resources.rules = rules_of_files(files, resources.categories)
        except ContractError as err:
            log.warning("api: keeping the last good rules: %s", err)
    return live


def seeded(resources: Resources) -> LiveDefinitions:
    """Before the first change: the store seeded from ``config/`` (if no service seeded it yet), so a
    type or rule added here joins config/'s instead of hiding them."""
    live = live_definitions(resources)
    if live.current is not None and live.current.profiles and live.current.rule_files:
        return live  # seeded already: config/ is not read again for every change
    definitions.seed_if_empty(
        resources.db, *config_definitions(resources.settings.config_dir, resources.categories)
    )
    return live_definitions(resources)


def running_rules(resources: Resources) -> list[Rule]:
    """The rules as stored now (``/rules`` serves these)."""
    live_definitions(resources)
    return resources.rules


def known_types(resources: Resources) -> dict[str, SensorTypeProfile]:
    """Every sensor type a rule may name: those stored, and those the catalog runs on."""
    current = live_definitions(resources).current
    return {**resources.catalog.profiles, **(current.profiles if current else {})}


def _require_change(user: User) -> None:
    if not may_change_definitions(user):
        raise HTTPException(
            status.HTTP_403_FORBIDDEN, "only district admins and operators change sensor types and rules"
        )


async def _body(request: Request) -> bytes:
    """The body, refused with 413 when over the limit: by its declared length before reading it, and
    by its size before parsing (the app's body limit bounds what is read at all)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_DOCUMENT_BYTES:
        raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, _too_large(int(declared)))
    body = await request.body()
    if len(body) > MAX_DOCUMENT_BYTES:
        raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, _too_large(len(body)))
    return body


def _too_large(size: int) -> str:
    return f"request body: {size:,} bytes, more than the {MAX_DOCUMENT_BYTES:,} allowed for one document"


# -- sensor types ---------------------------------------------------------------------------------------


class SensorTypeVersion(BaseModel):
    id: str
    version: int
    name: str
    name_zh: str
    description: str
    fields: dict[str, dict[str, Any]]
    events: list[str]
    expected_interval_s: float
    protocol: str | None
    source: str
    author: str
    created_at: datetime | None


class SensorTypeOut(BaseModel):
    name: str
    newest: str
    versions: list[SensorTypeVersion]


class SensorTypeStored(BaseModel):
    id: str
    stored: bool  # False: that exact version was already stored with this content
    revision: int


def _version_out(
    profile: SensorTypeProfile, source: str, author: str, at: datetime | None
) -> SensorTypeVersion:
    return SensorTypeVersion(
        id=profile.id,
        version=int(profile.id.rsplit("@", 1)[1]),
        name=profile.name,
        name_zh=profile.name_zh,
        description=profile.description,
        fields={k: v.model_dump(exclude_none=True, exclude_defaults=True) for k, v in profile.fields.items()},
        events=list(profile.events),
        expected_interval_s=profile.expected_interval_s,
        protocol=profile.protocol.kind if profile.protocol else None,
        source=source,
        author=author,
        created_at=at,
    )


@router.get("/sensor-types", response_model=list[SensorTypeOut])
def list_sensor_types(resources: ResourcesDep, _user: CurrentUser) -> list[SensorTypeOut]:
    """Every sensor type with all its versions, oldest first (devices name the exact version)."""
    live_definitions(resources)
    stored = definitions.stored_profiles(resources.db)
    versions = [_version_out(s.profile, s.source, s.author, s.created_at) for s in stored] or [
        _version_out(p, "config", "", None) for p in resources.catalog.profiles.values()
    ]
    by_name: dict[str, list[SensorTypeVersion]] = {}
    for v in versions:
        by_name.setdefault(v.id.rsplit("@", 1)[0], []).append(v)
    return [
        SensorTypeOut(
            name=name,
            newest=max(vs, key=lambda v: v.version).id,
            versions=sorted(vs, key=lambda v: v.version),
        )
        for name, vs in sorted(by_name.items())
    ]


@router.post(
    "/sensor-types",
    response_model=SensorTypeStored,
    status_code=status.HTTP_201_CREATED,
    responses={
        200: {"description": "That version is already stored with this content: nothing changed"},
        403: problem("Only district admins and operators change sensor types"),
        409: problem("The id is stored with other content: a new version needs a new id (name@N+1)"),
        413: problem(f"The profile is larger than {MAX_DOCUMENT_BYTES:,} bytes"),
        422: problem("The profile is invalid; the reason names the field and the shape expected"),
    },
    openapi_extra=_YAML_BODY,
)
async def add_sensor_type(
    request: Request, response: Response, resources: ResourcesDep, user: CurrentUser
) -> SensorTypeStored:
    """Store a sensor-type profile (YAML or JSON, as under config/sensor-types/) as a new version.

    A version never changes once stored; ``air.co2@2`` is stored beside ``air.co2@1``, and devices
    move to it when the registry says so. Every service runs it within seconds.
    """
    _require_change(user)
    body = await _body(request)
    return await run_in_threadpool(_store_profile, body, response, resources, user)


def _store_profile(body: bytes, response: Response, resources: Resources, user: User) -> SensorTypeStored:
    try:
        profile = definitions.parse_profile(body, "profile")
        seeded(resources)
        definitions.check_profiles_fit(resources.db, [("profile", profile)])
        stored = definitions.add_profile(resources.db, profile, source="api", author=user.username)
    except ContractError as err:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(err)) from err
    except DefinitionConflict as err:
        raise HTTPException(status.HTTP_409_CONFLICT, str(err)) from err
    if not stored:
        response.status_code = status.HTTP_200_OK
    resources.live.refresh()  # the API's own catalog knows the type at once (a device may name it)
    return SensorTypeStored(id=profile.id, stored=stored, revision=definitions.revision(resources.db))


# -- rules --------------------------------------------------------------------------------------------


class RulesApplied(BaseModel):
    file: str
    version: int | None  # the rule file's version stored; None when it already had this content
    rules: list[str]
    revision: int


def checked_rules(
    body: bytes, resources: Resources, *, file_expected: bool = False
) -> tuple[list[Rule], bool]:
    """The rules of a body (one rule, or a rule file), checked against the sensor types, categories
    and running rules; ContractError naming the rule and field otherwise."""
    document = definitions.read_document(body, "request body")
    rules, as_file = parse_rules(document, "request body", file_expected=file_expected)
    check_rules(
        rules,
        "request body",
        types=known_types(resources),
        categories=resources.categories,
        running=resources.rules,
        prefix="rules" if as_file else "",
    )
    return rules, as_file


@router.post(
    "/rules",
    response_model=RulesApplied,
    responses={
        403: problem("Only district admins and operators change rules"),
        413: problem(f"The body is larger than {MAX_DOCUMENT_BYTES:,} bytes"),
        422: problem("The rule or rule file is invalid; the reason names the rule and field"),
    },
    openapi_extra=_YAML_BODY,
)
async def apply_rules(
    request: Request,
    resources: ResourcesDep,
    user: CurrentUser,
    file: Annotated[
        str | None,
        Query(
            pattern=FILE_NAME, description="The rule file to store; one rule goes to the file holding its id."
        ),
    ] = None,
) -> RulesApplied:
    """Apply one rule or a rule file (``rules: [...]``, YAML or JSON); the alert engine runs it within
    seconds. A changed rule needs a new version; an unchanged id and version keeps its running state."""
    _require_change(user)
    body = await _body(request)
    return await run_in_threadpool(_store_rules, body, file, resources, user)


def _store_rules(body: bytes, file: str | None, resources: Resources, user: User) -> RulesApplied:
    try:
        live = seeded(resources)
        rules, as_file = checked_rules(body, resources)
        current = live.current
        files = {f.name: f.document for f in current.rule_files.values()} if current else {}
        if as_file:
            name, document = file or DEFAULT_RULE_FILE, rule_document(rules)
        else:
            name, document = with_rule(files, rules[0], file or DEFAULT_RULE_FILE)
        # The whole set it makes: a rule id in another file is refused here, not at every service.
        rules_of_files({**files, name: document}.items(), resources.categories)
        stored = definitions.put_rule_file(resources.db, name, document, source="api", author=user.username)
    except ContractError as err:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(err)) from err
    live_definitions(resources)  # the API's own list serves the new set at once
    return RulesApplied(
        file=name,
        version=stored,
        rules=[r.id for r in rules],
        revision=definitions.revision(resources.db),
    )
