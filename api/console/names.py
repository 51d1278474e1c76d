"""What the console calls things: categories, grids, buildings, rules, stages, devices and people by their
names in the user's language, never by the ids the data uses. Templates get one ``Names`` per page."""

from __future__ import annotations

from dataclasses import dataclass

from alerts.rules import Rule
from api.console.i18n import RULE_NAMES, TEXT
from api.deps import Resources
from contract.catalog import Community, DeviceInfo


@dataclass(frozen=True, slots=True)
class Names:
    lang: str
    resources: Resources

    @property
    def words(self) -> dict[str, str]:
        return TEXT[self.lang]

    def category(self, code: str) -> str:
        category = self.resources.categories.get(code)
        if category is None:
            return self.words.get("dash", "—")
        return category.name_zh if self.lang == "zh" else category.name_en

    def community(self, community_id: str) -> str:
        community = self.resources.catalog.communities.get(community_id)
        return community.name if community else "—"

    def _community(self, community_id: str | None) -> list[Community]:
        communities = self.resources.catalog.communities
        if community_id is not None and community_id in communities:
            return [communities[community_id]]
        return list(communities.values())  # grid ids are unique district-wide

    def grid(self, grid_id: str | None, community_id: str | None = None) -> str:
        for community in self._community(community_id):
            for grid in community.grids:
                if grid.id == grid_id:
                    return grid.name
        return "—"

    def building(self, building_id: str | None, community_id: str | None = None) -> str:
        for community in self._community(community_id):
            for grid in community.grids:
                for building in grid.buildings:
                    if building.id == building_id:
                        return building.name
        return "—"

    def gateway(self, gateway_id: str, community_id: str | None = None) -> str:
        for community in self._community(community_id):
            for gateway in community.gateways:
                if gateway.id == gateway_id:
                    return gateway.name or gateway.id
        return gateway_id

    def rule_of(self, rule_id: str) -> Rule | None:
        return next((r for r in self.resources.rules if r.id == rule_id), None)

    def rule(self, rule_id: str | None) -> str:
        if not rule_id:
            return "—"
        named = RULE_NAMES[self.lang].get(rule_id)
        if named:
            return named
        rule = self.rule_of(rule_id)
        return rule.description if rule and rule.description else rule_id

    def stage(self, stage: str | None) -> str:
        return self.words.get(f"stage_{stage}", "—") if stage else "—"

    def severity(self, severity: str) -> str:
        return self.words.get(f"sev_{severity}", severity)

    def type_name(self, info: DeviceInfo) -> str:
        return self.profile(info.profile.id)

    def profile(self, type_ref: str) -> str:
        """A sensor type (``water.level@1``) by its name in the user's language."""
        profile = self.resources.catalog.profiles.get(type_ref)
        if profile is None:
            return self.words["ev_reading"]
        return (profile.name_zh or profile.name) if self.lang == "zh" else profile.name

    def device(self, device_id: str, community_id: str) -> str:
        """A device in words: its type and where it is (``水位 · 3号楼地下室``); its number when the
        registry no longer knows it."""
        info = self.resources.catalog.device_in(community_id, device_id)
        if info is None:
            return device_id
        where = info.device.location or self.grid(info.device.grid, community_id)
        return f"{self.type_name(info)} · {where}"

    def subject(self, key: str, community_id: str) -> str:
        """What an alert is about (its subject key): a device, a gateway or a grid."""
        if self.resources.catalog.device_in(community_id, key) is not None:
            return self.device(key, community_id)
        for community in self._community(community_id):
            if any(g.id == key for g in community.gateways):
                return self.words["ev_gateway"].format(name=self.gateway(key, community_id))
        grid = self.grid(key, community_id)
        return grid if grid != "—" else key

    def person(self, username: str | None) -> str:
        """A person by name (as the organisation lists them); system actors by what they are."""
        if not username:
            return "—"
        if username.startswith("system:"):
            return self.words.get(f"actor_{username}", self.words["system_actor"])
        if username.startswith("public:"):  # a resident, through a public channel (#22)
            return self.words["pub_actor"].format(channel=username.removeprefix("public:"))
        person = next((p for p in self.resources.policy.organisation.people if p.username == username), None)
        if person is not None:
            return person.name
        unit = self.unit(username)  # supervision orders go to a person or to a unit
        return unit if unit != "—" else username

    def unit(self, unit_id: str) -> str:
        """A department, town, the district or a grid by its name."""
        org = self.resources.policy.organisation
        for unit in (*org.departments, *org.towns, org.district):
            if unit.id == unit_id:
                return unit.name
        return self.grid(unit_id)

    def department(self, department_id: str | None) -> str:
        if not department_id:
            return "—"
        departments = self.resources.policy.organisation.departments
        found = next((d for d in departments if d.id == department_id), None)
        return found.name if found else department_id
