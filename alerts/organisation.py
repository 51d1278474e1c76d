"""The organisation cases move through: district → towns (镇/街道) → communities, and departments."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, model_validator

from alerts.rules import CategoryCode
from contract.catalog import load_model
from contract.ids import Id


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Unit(_Model):
    id: Id
    name: str


class Town(Unit):
    communities: list[Id] = Field(default_factory=list)


class Department(Unit):
    categories: list[CategoryCode] = Field(default_factory=list, description="Case categories it accepts.")


class CallUp(_Model):
    """镇呼区应: how fast a district department responds to and resolves a town's call."""

    respond_hours: float = Field(default=2, gt=0)
    resolve_hours: float = Field(default=48, gt=0)


class Person(_Model):
    username: str = Field(min_length=1, max_length=64)
    name: str
    role: str
    unit: Id = Field(description="The grid, town or department the person works for.")
    leader: bool = False


class Roster(_Model):
    """Who is on duty for a unit: the primary, or the backup while the primary is away."""

    unit: Id
    primary: str
    backup: str
    away: list[str] = Field(default_factory=list)

    def on_duty(self) -> str:
        return self.backup if self.primary in self.away else self.primary


class Organisation(_Model):
    district: Unit
    towns: list[Town] = Field(min_length=1)
    departments: list[Department] = Field(default_factory=list)
    call_up: CallUp = Field(default_factory=CallUp)
    people: list[Person] = Field(default_factory=list)
    rosters: list[Roster] = Field(default_factory=list)

    @model_validator(mode="after")
    def _rosters_name_known_people(self) -> Organisation:
        known = {p.username for p in self.people}
        for roster in self.rosters:
            for who in (roster.primary, roster.backup):
                if who not in known:
                    raise ValueError(f"roster of {roster.unit}: {who!r} is not among people")
        return self

    def roster(self, unit: str) -> Roster | None:
        return next((r for r in self.rosters if r.unit == unit), None)

    def leader_of(self, unit: str) -> str | None:
        return next((p.username for p in self.people if p.unit == unit and p.leader), None)

    @model_validator(mode="after")
    def _each_community_has_one_town(self) -> Organisation:
        seen: dict[str, str] = {}
        for town in self.towns:
            for community in town.communities:
                if community in seen:
                    raise ValueError(
                        f"community {community!r} belongs to both {seen[community]} and {town.id}"
                    )
                seen[community] = town.id
        return self

    def town_of(self, community: str) -> str:
        return next((t.id for t in self.towns if community in t.communities), "")

    def department(self, department_id: str) -> Department | None:
        return next((d for d in self.departments if d.id == department_id), None)


def load_organisation(config_dir: Path) -> Organisation:
    return load_model(Organisation, config_dir / "organisation.yaml")
