"""Gateways the platform hears from but the registry does not know: shown, never silently dropped.

A box with valid broker credentials whose gateway is not in the registry (registered in another
district's copy, removed by an import, a typo in its gateway file) still sends. Its state lands in the
fleet status (alerts/fleet.py) and its data in the dead letters as unknown devices; the fleet page
lists it as an *unknown gateway* with its latest letters, so someone registers it or turns it off.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from alerts.fleet import GatewayStatus, gateway_states
from api.accounts import User
from api.deps import Resources
from api.routes.deadletters import DeadLetterFilter, DeadLetterOut, dead_letter_groups, dead_letter_page
from api.scope import sees_area
from contract.ids import ID_RE

UNKNOWN_SHOWN = 50
"""Unknown gateways listed at most: more than a handful means a misconfigured district, not a list."""
LETTERS_SHOWN = 3


@dataclass(slots=True)
class UnknownGateway:
    community: str
    gateway: str
    status: GatewayStatus | None = None
    letters: int = 0
    recent: list[DeadLetterOut] = field(default_factory=list)

    @property
    def last_heard(self) -> datetime | None:
        times = [self.status.updated_at] if self.status else []
        times += [letter.received_at for letter in self.recent]
        return max(times, default=None)


def unknown_gateways(resources: Resources, user: User) -> list[UnknownGateway]:
    """Gateways heard from (a state message or dead letters) that the registry does not know, in the
    user's jurisdiction (by the community their topic names), newest first."""
    known = {(c.id, g.id) for c in resources.catalog.communities.values() for g in c.gateways}
    found: dict[tuple[str, str], UnknownGateway] = {}
    for place, status in gateway_states(resources.db).items():
        if place not in known:
            found[place] = UnknownGateway(*place, status=status)
    for group in dead_letter_groups(resources.db, DeadLetterFilter()):
        place = (group.community, group.gateway)
        if place in known or not (ID_RE.fullmatch(group.community) and ID_RE.fullmatch(group.gateway)):
            continue
        found.setdefault(place, UnknownGateway(*place)).letters += group.count
    visible = [u for u in found.values() if sees_area(user, resources.policy, u.community)]
    visible.sort(key=lambda u: (-(u.status.updated_at.timestamp() if u.status else 0), -u.letters, u.gateway))
    shown = visible[:UNKNOWN_SHOWN]
    for unknown in shown:
        letters = dead_letter_page(resources.db, DeadLetterFilter(gateway=unknown.gateway), LETTERS_SHOWN * 4)
        unknown.recent = [letter for letter in letters if letter.community == unknown.community][
            :LETTERS_SHOWN
        ]
    return shown
