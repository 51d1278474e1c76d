"""Demo mode only: one account per role, each bound to a person of the organisation, with a fresh
password written to the demo's credentials file (``accounts``: role → username and password).

Roles nobody in ``config/organisation.yaml`` holds get a demo person (``demo.<role>``), stored as a
run-time change of the organisation like any person added through the API. The district operator's
account is the demo operator's (``api.accounts.ensure_demo_operator``).
"""

from __future__ import annotations

import json
import secrets
from pathlib import Path
from typing import get_args

from sqlalchemy import Engine

from api import accounts
from api.account_binding import UNIT_KIND, bind, stored_grids
from cases.organisation import Organisation, Person, Role
from cases.policy import CasePolicy
from cases.public_channels import channel_for_key, create_channel, list_channels
from common.private_files import write_private

_NAMES = {
    "admin": "演示·系统管理员",
    "supervisor": "演示·督查员",
    "inspector": "演示·纪检监督员",
    "building_head": "演示·楼长",
    "street_steward": "演示·小巷管家",
}


def _demo_unit(organisation: Organisation, grids: dict[str, str], kind: str) -> str:
    units = {
        "district": organisation.district.id,
        "town": organisation.towns[0].id,
        "department": organisation.departments[0].id if organisation.departments else "",
        # The grid the organisation's first grid worker works for: the demo's people meet there.
        "grid": next((p.unit for p in organisation.people_in("grid_worker")), min(grids, default="")),
    }
    return units[kind]


def _person_for(organisation: Organisation, grids: dict[str, str], role: str) -> Person:
    """Someone of the organisation in the role, or a demo person for it (not yet stored)."""
    found = next(iter(organisation.people_in(role)), None)
    if found is not None:
        return found
    kind = UNIT_KIND[accounts.ROLES[role]]
    unit = _demo_unit(organisation, grids, kind)
    posts = [r for r in get_args(Role) if UNIT_KIND.get(accounts.ROLES.get(r, ("?",))) == kind]
    post = role if role in get_args(Role) else posts[0]
    return Person(
        username=f"demo.{role.replace('_', '-')}", name=_NAMES.get(role, f"演示·{role}"), role=post, unit=unit
    )


def ensure_demo_logins(db: Engine, config_dir: Path, credentials_path: Path) -> dict[str, dict[str, str]]:
    """Every role's demo account with a new password; added to the credentials file under ``accounts``
    (and the grid worker's also as ``grid_worker``)."""
    policy = CasePolicy.load(config_dir, db)
    assert policy.store is not None  # loaded with a database
    grids = stored_grids(db, config_dir)
    logins: dict[str, dict[str, str]] = {}
    for role in accounts.ROLES:
        if role == "district_operator":
            continue  # the demo operator
        person = _person_for(policy.organisation, grids, role)
        if policy.organisation.person(person.username) is None:
            policy.store.put_person(person, author="demo", grids=set(grids))
        binding = bind(policy.organisation, grids, person.username, role)
        password = secrets.token_urlsafe(12)
        if accounts.find_user(db, person.username) is None:
            accounts.create_user(
                db, person.username, password, role, person.name, person=person.username, **binding.scope
            )
        else:
            accounts.change_role(db, person.username, role, binding.scope)
            accounts.reactivate(db, person.username)
            accounts.set_password(db, person.username, password)
        logins[role] = {"username": person.username, "password": password}
    credentials = (
        json.loads(credentials_path.read_text(encoding="utf-8")) if credentials_path.exists() else {}
    )
    credentials |= {"accounts": logins}
    credentials["open311_api_key"] = _demo_channel_key(db, credentials.get("open311_api_key"), grids)
    if "grid_worker" in logins:
        credentials["grid_worker"] = logins["grid_worker"]
    write_private(credentials_path, json.dumps(credentials, indent=2, ensure_ascii=False) + "\n")
    return logins


DEMO_CHANNEL = "演示·公众上报页"


def _demo_channel_key(db: Engine, kept: object, grids: dict[str, str]) -> str:
    """The key of the demo's public channel (the /report page's, also good for Open311): the one kept
    in the credentials file while it still works, else a new channel's (a key is shown only once)."""
    if isinstance(kept, str) and (channel := channel_for_key(db, kept)) is not None and channel.enabled:
        return kept
    taken = {c.name for c in list_channels(db)}
    name = next(n for i in range(1, 10_000) if (n := DEMO_CHANNEL + (f"·{i}" if i > 1 else "")) not in taken)
    communities = sorted(set(grids.values()))
    _channel, key = create_channel(db, name, communities, town=None, serves_page=True, actor="demo")
    return key
