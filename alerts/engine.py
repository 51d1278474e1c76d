"""The rule engine: readings, events and gateway states in, alert transitions out.

Pure (no I/O): the service feeds it the live MQTT stream and a wall clock, and hands the transitions
to the case book. Per-sample conditions run in event time (the readings' own timestamps, so a backlog
drained after an outage is judged as it happened); staleness, `for` timers and silences run on the
wall clock in ``tick``.

A gateway is offline only in fact: its last state says offline and nothing from it has arrived
since. A reading or event from it proves it online at once: its devices' alerts are no longer
inhibited and its gateway-offline alert resolves (flapping or not). A planned stop
(``reason: stopped``) is maintenance: its devices are inhibited, but no gateway alert fires.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from alerts.conditions import Condition, Verdict, condition_for
from alerts.lifecycle import AlertState, Kind, due, lose_data, step
from alerts.rules import Rule, Scalar, plan_swap
from alerts.silences import Labels, Matchers, Silence
from contract import Event, Reading, StateMessage
from contract.catalog import Catalog, Community, Device, DeviceInfo, DeviceState

EVENT_VERDICTS: dict[str, list[Verdict]] = {
    "start": [Verdict.BREACH],
    "update": [Verdict.BREACH],
    "end": [Verdict.CLEAR],
    # An instant event (a tamper seen once) fires and resolves at once; the case it opens stays open.
    "instant": [Verdict.BREACH, Verdict.CLEAR],
}
DATA_STALE_FACTOR = 3.0  # a device silent for 3 expected intervals leaves its alerts unknown
DATA_STALE_MIN_MS = 30_000
# A `for` timer confirms a condition that the series keeps reporting. Silent for longer than this many
# sample intervals (the series' own cadence), and never less than SILENT_MIN_MS (the service's own
# batching and timer jitter), the series' pending alert waits for its next sample instead of firing
# on the timer alone (see ``AlertEngine.tick``).
SILENT_AFTER_INTERVALS = 3
SILENT_MIN_MS = 1_000
# A case's evidence keeps the readings the engine saw before an alert fired. Bounded twice: the last
# WINDOW_READINGS readings of a device's field, of which those within WINDOW_MS of the newest.
WINDOW_READINGS = 60
WINDOW_MS = 30 * 60_000
Sample = tuple[int, Scalar]  # (ts_ms, value)
# What a re-indexed community's devices had seen: last-seen times and evidence rings, by key.
_Kept = tuple[dict[tuple[str, str], int], dict[tuple[str, str, str], deque[Sample]]]


def wall_ms() -> int:
    return int(time.time() * 1000)


@dataclass(frozen=True, slots=True)
class Subject:
    """What an alert is about: a device, a gateway, or (for composites) a grid."""

    community: Community
    grid: str
    gateway: str | None = None
    device: Device | None = None

    @property
    def key(self) -> str:
        return self.device.id if self.device else self.gateway or self.grid

    @property
    def location(self) -> str:
        if self.device:
            return self.device.location
        # A place in the operators' words, as device locations are: the gateway by its name.
        named = next((g.name for g in self.community.gateways if g.id == self.gateway and g.name), None)
        return f"网关 {named or self.gateway}" if self.gateway else ""

    @property
    def building(self) -> str | None:
        return self.device.building if self.device else None


@dataclass(frozen=True, slots=True)
class Transition:
    fingerprint: str
    rule: Rule
    subject: Subject
    kind: Kind
    ts_ms: int
    observed: dict[str, Scalar] = field(default_factory=dict)
    silenced: bool = False
    inhibited: bool = False
    # Firing transitions of reading rules: the readings of the rule's field the engine had seen when
    # the alert fired, oldest first, the triggering one included (empty for other transitions).
    readings: tuple[Sample, ...] = ()
    # The alert's flap mark after this transition: a flapping alert's re-fire stays in its case.
    flapping: bool = False

    @property
    def opens_case(self) -> bool:
        return self.kind == "firing" and not (self.silenced or self.inhibited)


def fingerprint(rule: Rule, subject: Subject) -> str:
    """An alert's identity: one rule on one scope key (like Alertmanager's label-set fingerprint)."""
    return f"{rule.id}|{subject.community.id}|{subject.key}"


@dataclass
class _Series:
    rule: Rule
    subject: Subject
    condition: Condition | None
    alert: AlertState = field(default_factory=AlertState)
    # The series' newest sample: its own time, when it arrived (wall ms) and the gap to the one before
    # it (the series' cadence). Checkpointed: a restart does not change when the sensor was last heard.
    heard_ts_ms: int = 0
    heard_wall_ms: int = 0
    gap_ms: int = 0

    def heard(self, ts_ms: int, wall_ms: int) -> None:
        """A sample of the series; a redelivered or older one proves nothing about now."""
        if ts_ms <= self.heard_ts_ms:
            return
        if self.heard_ts_ms:
            self.gap_ms = ts_ms - self.heard_ts_ms
        self.heard_ts_ms, self.heard_wall_ms = ts_ms, wall_ms


@dataclass(slots=True)
class GatewayFact:
    """What is known of a gateway: online, or offline since a state said so (and why)."""

    online: bool
    planned: bool = False  # offline by a clean stop (maintenance), not by a lost link or power
    said_ms: int = 0  # the offline state's own time: readings measured before it prove nothing

    @property
    def down(self) -> bool:
        return not self.online

    def dump(self) -> list[Any]:
        return [self.online, self.planned, self.said_ms]


class AlertEngine:
    def __init__(
        self,
        rules: Iterable[Rule],
        catalog: Catalog,
        *,
        communities: Iterable[str] | None = None,
        clock: Callable[[], int] = wall_ms,
    ) -> None:
        self._rules = list(rules)
        self._catalog, self._clock = catalog, clock
        self._communities = set(communities) if communities else set(catalog.communities)
        self._series: dict[str, _Series] = {}
        self._silences: list[Silence] = []
        self._gateways: dict[tuple[str, str], GatewayFact] = {}
        self._gateway_rules = [r for r in self._rules if r.gateway_offline is not None]
        # Gateways whose data proved them online after an offline state: the service updates the
        # fleet page with them (at most one entry per gateway, so bounded by the catalog).
        self.revived: set[tuple[str, str]] = set()
        self._partitioned = communities is not None
        self.reported: dict[tuple[str, str], int] = {}  # when each device really last reported (wall ms)
        self._last_seen: dict[tuple[str, str], int] = {}
        self._recent: dict[tuple[str, str, str], deque[Sample]] = {}
        self._index(catalog)
        self._composites = [r for r in self._rules if r.composite is not None]
        self._component_ids = {c for r in self._composites for c in r.composite.rules}  # type: ignore[union-attr]
        self._component_firing: dict[tuple[str, str, str], set[str]] = {}
        self._component_last_ms: dict[tuple[str, str, str], int] = {}

    # The catalog last indexed, and per community the devices indexed of it: a registry change
    # re-indexes only the communities whose entries the new catalog does not share with this one.
    _indexed: Catalog | None = None
    _indexed_devices: dict[str, list[DeviceInfo]]
    _maintenance_of: dict[str, list[Silence]]
    _devices: list[DeviceInfo]
    _rules_by_device: dict[tuple[str, str], list[Rule]]
    _rings: dict[tuple[str, str], list[tuple[str, deque[Sample]]]]
    _registry_silences: list[Silence]

    def _index(self, catalog: Catalog) -> set[str]:
        """What a reading needs, per device of the catalog: its rules and the rings of their fields.

        Only the communities that changed since the catalog last indexed are re-indexed (all of them the
        first time); the others' devices keep everything. Kept across a registry change even in a
        changed community: the time each device was last seen and the rings of fields still watched,
        so a reload neither calls devices stale nor empties their evidence windows. Returns the
        communities re-indexed.
        """
        start = self._clock()
        previous, self._indexed, self._catalog = self._indexed, catalog, catalog
        if previous is None:
            self._indexed_devices, self._maintenance_of = {}, {}
            self._rules_by_device, self._rings = {}, {}
            self._recent, self._registry_silences = {}, []
        if not self._partitioned:
            self._communities = set(catalog.communities)
        changed = catalog.changed_since(previous)
        for community in changed:
            kept = self._forget(community)
            if community in self._communities:
                self._learn(catalog, community, start, kept)
        # In the catalog's order, as a full index would list them.
        self._devices = [d for c in catalog.communities for d in self._indexed_devices.get(c, ())]
        self._registry_silences = [s for c in catalog.communities for s in self._maintenance_of.get(c, ())]
        return changed

    def _forget(self, community: str) -> _Kept:
        """Drop a community's index; what its devices had seen is handed back for :meth:`_learn`."""
        kept_seen: dict[tuple[str, str], int] = {}
        kept_rings: dict[tuple[str, str, str], deque[Sample]] = {}
        for info in self._indexed_devices.pop(community, ()):
            key = (community, info.device.id)
            if key in self._last_seen:
                kept_seen[key] = self._last_seen.pop(key)
            self._rules_by_device.pop(key, None)
            for name, ring in self._rings.pop(key, ()):
                kept_rings[(*key, name)] = ring
                self._recent.pop((*key, name), None)
        self._maintenance_of.pop(community, None)
        return kept_seen, kept_rings

    def _learn(self, catalog: Catalog, community: str, start: int, kept: _Kept) -> None:
        kept_seen, kept_rings = kept
        # Retired devices are gone for the rules (ingest dead-letters their readings).
        devices = [d for d in catalog.devices_of(community) if d.device.state != DeviceState.RETIRED]
        self._indexed_devices[community] = devices
        watched = [(r, r.field) for r in self._rules]  # Rule.field is worked out at each access
        for d in devices:
            key = (community, d.device.id)
            self._last_seen[key] = kept_seen.get(key, start)
            matching = [(r, name) for r, name in watched if r.scope.matches(d)]
            self._rules_by_device[key] = [r for r, _ in matching]
            # Only the fields some rule watches get a ring: one per (community, device, field), shared
            # by the device's rules on that field. Made up front so a reading costs one lookup.
            rings = self._rings[key] = []
            for name in sorted({name for _, name in matching if name is not None}):
                ring = kept_rings.get((*key, name)) or deque(maxlen=WINDOW_READINGS)
                self._recent[(*key, name)] = ring
                rings.append((name, ring))
        # A device the registry puts in maintenance (or not yet installed) is judged and recorded but
        # opens no case: as if under a maintenance window that says why.
        self._maintenance_of[community] = [
            Silence(
                0,
                "maintenance",
                Matchers(community=community, device=d.device.id),
                datetime.min.replace(tzinfo=UTC),
                datetime.max.replace(tzinfo=UTC),
                "registry",
                f"device {d.device.state.value} in the registry",
            )
            for d in devices
            if d.device.state in (DeviceState.MAINTENANCE, DeviceState.PLANNED)
        ]

    def use_catalog(self, catalog: Catalog) -> None:
        """A registry change, while running: alerts in flight keep their state (pending timers, windows,
        baselines); alerts of a device that moved follow it to its new grid. Only the communities that
        changed are re-indexed and their alerts re-placed."""
        changed = self._index(catalog)
        for fp, series in self._series.items():
            if series.subject.community.id in changed:
                subject = self._placed(fp)
                if subject is not None:
                    series.subject = subject

    def _placed(self, fp: str) -> Subject | None:
        """An alert's subject in the catalog now: ``_subject_of`` by lookups instead of a scan of every
        device (a device, else a gateway, else a grid)."""
        _rule, community, key = fp.split("|", 2)
        if community in self._communities:
            info = self._catalog.device_in(community, key)
            if info is not None and info.device.state != DeviceState.RETIRED:
                return _subject(info)
        home = self._gateway_home(community, key)
        if home is not None:
            return home
        community_cfg = self._catalog.communities.get(community)
        if community_cfg and any(g.id == key for g in community_cfg.grids):
            return Subject(community_cfg, key)
        return None

    # -- state the service manages ----------------------------------------------------------------

    def set_silences(self, silences: list[Silence]) -> None:
        self._silences = silences

    @property
    def firing(self) -> frozenset[str]:
        return frozenset(fp for fp, s in self._series.items() if s.alert.status == "firing")

    def status(self, fp: str) -> str:
        series = self._series.get(fp)
        return series.alert.status if series else "inactive"

    # -- inputs -----------------------------------------------------------------------------------

    def on_reading(self, community: str, gateway: str, reading: Reading) -> list[Transition]:
        info = self._info(community, gateway, reading.device)
        if info is None:
            return []  # ingest dead-letters unknown devices; the engine has nothing to say about them
        now = self._clock()
        out = self._heard_from(community, gateway, reading.ts, now)
        self._last_seen[(community, info.device.id)] = self.reported[(community, info.device.id)] = now
        for name, ring in self._rings[(community, info.device.id)]:
            if (value := reading.values.get(name)) is not None:
                ring.append((reading.ts, value))
        subject = _subject(info)
        for rule in self._rules_by_device[(community, info.device.id)]:
            if rule.stale is not None:
                # Data clears a deadman; one that never fired has nothing to clear (the common case,
                # once per reading, so it skips the lookup of a series that does not need to exist).
                series = self._series.get(fingerprint(rule, subject))
                if series is not None and series.alert.status != "inactive":
                    out += self._judge(rule, subject, Verdict.CLEAR, reading.ts, now, {})
            field_name = rule.field
            if field_name is None or field_name not in reading.values:
                continue
            value = reading.values[field_name]
            out += self._judge(rule, subject, None, reading.ts, now, {field_name: value}, value)
        return out + self._composite(out, now)

    def on_event(self, community: str, gateway: str, event: Event) -> list[Transition]:
        info = self._info(community, gateway, event.device)
        if info is None:
            return []
        now = self._clock()
        out = self._heard_from(community, gateway, event.ts, now)
        self._last_seen[(community, info.device.id)] = self.reported[(community, info.device.id)] = now
        for rule in self._rules_by_device[(community, info.device.id)]:
            match = rule.event
            if match is None:
                continue
            if event.kind == match.clear_kind:
                verdicts = [Verdict.CLEAR]
            elif event.kind == match.kind and all(event.attrs.get(k) == v for k, v in match.attrs.items()):
                verdicts = [Verdict.BREACH] if match.clear_kind else EVENT_VERDICTS[event.phase]
            else:
                continue
            observed: dict[str, Scalar] = {"event_id": str(event.id), "phase": event.phase, **event.attrs}
            for verdict in verdicts:
                out += self._judge(rule, _subject(info), verdict, event.ts, now, observed)
        return out + self._composite(out, now)

    def on_state(self, community: str, gateway: str, state: StateMessage) -> list[Transition]:
        """A gateway's retained state or last will.

        Online resolves its gateway alert. A last will (offline, no reason) fires it; a planned stop
        (``reason: stopped``) fires nothing. Either way its devices' data stops: their alerts become
        unknown and stay inhibited until the gateway is heard from again.
        """
        if community not in self._communities or self._gateway_home(community, gateway) is None:
            return []
        now = self._clock()
        ts = state.ts or now
        if state.online:
            return self._gateway_up(community, gateway, ts, now, {"online": True})
        self._gateways[(community, gateway)] = GatewayFact(False, state.planned_stop, state.ts or 0)
        observed: dict[str, Scalar] = {"online": False}
        if state.reason is not None:
            observed["reason"] = state.reason
        verdict = Verdict.CLEAR if state.planned_stop else Verdict.BREACH
        out = self._judge_gateway(community, gateway, verdict, ts, now, observed)
        for series in self._series.values():
            subject = series.subject
            if subject.gateway == gateway and subject.community.id == community and subject.device:
                out += self._emit(series, lose_data(series.alert), ts, {})
        return out

    def gateway_down(self, community: str, gateway: str) -> bool:
        """Offline in fact: its last state said offline and nothing from it arrived since."""
        fact = self._gateways.get((community, gateway))
        return fact is not None and fact.down

    def stopped_gateways(self) -> frozenset[tuple[str, str]]:
        """Gateways offline by a planned stop (maintenance)."""
        return frozenset(key for key, fact in self._gateways.items() if fact.down and fact.planned)

    def tick(self) -> list[Transition]:
        """Timers: `for` durations, stale devices, silences that ended.

        A pending alert of a per-sample rule fires on its timer only while its series is live
        (:meth:`_silent`): a sensor whose last sample breached and which then went quiet has not shown
        the condition holding for the `for` duration. Its next sample decides (a breach fires at once,
        the duration having passed; a clear cancels), or the data-stale check cancels it.
        """
        now = self._clock()
        out: list[Transition] = []
        for series in list(self._series.values()):
            if series.alert.status == "pending" and not self._silent(series, now):
                out += self._emit(series, due(series.alert, series.rule, now), series.alert.since_ms, {})
        for info in self._devices:
            out += self._check_stale(info, now)
        for series in self._series.values():
            if series.alert.status == "firing" and series.alert.silenced and not any(self._muted(series)):
                out += self._emit(series, ["firing"], now, {"silence_ended": True})
        return out + self._composite(out, now)

    def _silent(self, series: _Series, now: int) -> bool:
        """No sample from a per-sample rule's series for longer than SILENT_AFTER_INTERVALS intervals.

        The interval is the series' own cadence, the gap between its last two samples (a sensor
        reporting ten times a second is silent after a second, not after three of the ten seconds its
        profile allows; one reporting less often than its profile says is judged by what it does);
        before its second sample, the device profile's expected interval. Event, deadman, gateway and
        composite rules are judged on timers and facts, never silent here.
        """
        device = series.subject.device
        if series.rule.field is None or device is None:
            return False
        interval_ms: float = series.gap_ms
        if interval_ms <= 0:
            info = self._catalog.device_in(series.subject.community.id, device.id)
            if info is None:
                return True  # gone from the registry: nothing will confirm it
            interval_ms = info.profile.expected_interval_s * 1000
        return now - series.heard_wall_ms > max(SILENT_AFTER_INTERVALS * interval_ms, SILENT_MIN_MS)

    # -- checkpoints --------------------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """The whole state at once; the service takes it in pieces (:meth:`snapshot_series`)."""
        return {"series": self.snapshot_series(self.series_keys()), "gateways": self.snapshot_gateways()}

    def series_keys(self) -> list[str]:
        return list(self._series)

    def snapshot_series(self, fingerprints: Iterable[str]) -> dict[str, Any]:
        """These series' state (those still kept), each as it is now.

        Series are independent of each other, so a snapshot may be assembled from pieces taken a few
        ticks apart: each piece holds the stream's thread a few milliseconds instead of the whole
        state's ~60 ms (a quiet machine; 190 ms loaded) at once.
        """
        # The evidence rings are left out: they decide nothing, and full they would add about a fifth
        # to a checkpoint written every 30 s (1,000 devices: 2.2 MB of JSON on 9.8 MB). After a
        # restart a ring refills from live readings; until then a firing carries the shorter window.
        out: dict[str, Any] = {}
        for fp in fingerprints:
            s = self._series.get(fp)
            if s is not None:
                out[fp] = {
                    "rule": s.rule.id,
                    "version": s.rule.version,
                    "alert": s.alert.dump(),
                    "condition": s.condition.dump() if s.condition else None,
                    "heard": [s.heard_ts_ms, s.heard_wall_ms, s.gap_ms],
                }
        return out

    def snapshot_gateways(self) -> list[list[Any]]:
        return [[c, g, *fact.dump()] for (c, g), fact in self._gateways.items()]

    def restore(self, snapshot: dict[str, Any]) -> None:
        rules = {r.id: r for r in self._rules}
        for c, g, online, *rest in snapshot.get("gateways", []):
            planned, said_ms = (bool(rest[0]), int(rest[1])) if len(rest) == 2 else (False, 0)
            self._gateways[(c, g)] = GatewayFact(bool(online), planned, said_ms)
        for fp, saved in snapshot.get("series", {}).items():
            rule = rules.get(saved["rule"])
            subject = self._subject_of(fp)
            if rule is None or subject is None:
                continue  # the rule or device is gone from the configuration
            series = _Series(rule, subject, condition_for(rule), AlertState.load(saved["alert"]))
            if heard := saved.get("heard"):
                series.heard_ts_ms, series.heard_wall_ms, series.gap_ms = (int(x) for x in heard)
            if series.condition is not None and saved.get("condition") and saved["version"] == rule.version:
                series.condition.load(saved["condition"])  # a changed rule starts its window afresh
            self._series[fp] = series
            if rule.gateway_offline is not None and series.alert.status == "firing" and subject.gateway:
                # A gateway alert fired after the last checkpoint: offline until the gateway is heard.
                self._gateways.setdefault((subject.community.id, subject.gateway), GatewayFact(False))
            if rule.id in self._component_ids and series.alert.status == "firing":
                self._component_firing.setdefault((subject.community.id, subject.grid, rule.id), set()).add(
                    fp
                )

    # -- internals --------------------------------------------------------------------------------

    def _heard_from(self, community: str, gateway: str, ts_ms: int, now: int) -> list[Transition]:
        """A reading or event from the gateway: proof that it is online (unless measured before it
        said it went offline, e.g. a message redelivered to a restarted service)."""
        fact = self._gateways.get((community, gateway))
        if fact is not None and (fact.online or ts_ms < fact.said_ms):
            return []
        if fact is not None:
            self.revived.add((community, gateway))
        return self._gateway_up(community, gateway, ts_ms, now, {"online": True, "heard": "data"})

    def _gateway_up(
        self, community: str, gateway: str, ts_ms: int, now: int, observed: dict[str, Scalar]
    ) -> list[Transition]:
        if self.gateway_down(community, gateway):
            # Back online: its spooled backlog follows. Silence counts from now, not from the cut, or
            # a tick in between would call every one of its devices stale (a false case).
            for d in self._devices:
                if d.community.id == community and d.gateway.id == gateway:
                    self._last_seen[(community, d.device.id)] = now
        self._gateways[(community, gateway)] = GatewayFact(True)
        return self._judge_gateway(community, gateway, Verdict.CLEAR, ts_ms, now, observed)

    def _judge_gateway(
        self,
        community: str,
        gateway: str,
        verdict: Verdict,
        ts_ms: int,
        now: int,
        observed: dict[str, Scalar],
    ) -> list[Transition]:
        home = self._gateway_home(community, gateway)
        if home is None:
            return []
        out: list[Transition] = []
        for rule in self._gateway_rules:
            if rule.scope.community in (None, community):
                # Online (or stopped on purpose) is a fact: it resolves the alert even while flapping.
                out += self._judge(rule, home, verdict, ts_ms, now, observed, fact=verdict is Verdict.CLEAR)
        return out

    def is_unknown(self, community: str, gateway: str, device: str) -> bool:
        """A device of this engine's communities that its catalog does not name (retired ones it names)."""
        return community in self._communities and self._catalog.device(community, gateway, device) is None

    def _info(self, community: str, gateway: str, device: str) -> DeviceInfo | None:
        if community not in self._communities:
            return None
        info = self._catalog.device(community, gateway, device)
        return None if info is None or info.device.state == DeviceState.RETIRED else info

    def _gateway_home(self, community: str, gateway: str) -> Subject | None:
        """A gateway's alerts belong to the grid of its first device."""
        community_cfg = self._catalog.communities.get(community)
        gw = next((g for g in community_cfg.gateways if g.id == gateway), None) if community_cfg else None
        if community_cfg is None or gw is None or not gw.devices:
            return None
        return Subject(community_cfg, gw.devices[0].grid, gateway=gateway)

    def _subject_of(self, fp: str) -> Subject | None:
        _rule, community, key = fp.split("|", 2)
        info = next((d for d in self._devices if d.community.id == community and d.device.id == key), None)
        if info is not None:
            return _subject(info)
        home = self._gateway_home(community, key)
        if home is not None:
            return home
        community_cfg = self._catalog.communities.get(community)
        if community_cfg and any(g.id == key for g in community_cfg.grids):
            return Subject(community_cfg, key)
        return None

    def _window(self, series: _Series) -> tuple[Sample, ...]:
        """The evidence window of a firing alert: its field's recent readings, oldest first."""
        device, name = series.subject.device, series.rule.field
        ring = self._recent.get((series.subject.community.id, device.id, name)) if device and name else None
        if not ring:
            return ()
        # A redelivered reading is the same point (series + timestamp): it appears once.
        by_ts = dict(ring)
        newest = max(by_ts)
        return tuple(sorted((t, v) for t, v in by_ts.items() if newest - t <= WINDOW_MS))

    def _judge(
        self,
        rule: Rule,
        subject: Subject,
        verdict: Verdict | None,
        ts_ms: int,
        now: int,
        observed: dict[str, Scalar],
        value: Scalar | None = None,
        *,
        fact: bool = False,
    ) -> list[Transition]:
        fp = fingerprint(rule, subject)
        series = self._series.get(fp)
        if series is None:
            series = self._series[fp] = _Series(rule, subject, condition_for(rule))
        if verdict is None:
            assert series.condition is not None
            assert value is not None
            series.heard(ts_ms, now)
            verdict = series.condition.update(ts_ms, value)
        kinds = step(series.alert, verdict, rule, ts_ms, now, fact=fact)
        silenced_firing = series.alert.status == "firing" and series.alert.silenced
        if not kinds and verdict is Verdict.BREACH and silenced_firing and not any(self._muted(series)):
            # Fired while muted (e.g. its gateway seemed offline): a breach once unmuted opens the case
            # now, with this reading as evidence, rather than at the next tick.
            kinds = ["firing"]
        return self._emit(series, kinds, ts_ms, observed)

    def _muted(self, series: _Series) -> tuple[bool, bool]:
        """(silenced, inhibited) for the alert right now."""
        subject, rule = series.subject, series.rule
        now = datetime.fromtimestamp(self._clock() / 1000, UTC)
        labels = Labels(
            subject.community.id,
            subject.grid,
            subject.device.id if subject.device else None,
            subject.gateway,
            rule.id,
            rule.category,
        )
        active = [
            s for s in (*self._silences, *self._registry_silences) if s.active(now) and s.matches(labels)
        ]
        gateway_down = subject.device is not None and self.gateway_down(
            subject.community.id, subject.gateway or ""
        )
        inhibited = gateway_down or any(s.kind == "maintenance" for s in active)
        return any(s.kind == "silence" for s in active), inhibited

    def _emit(
        self, series: _Series, kinds: list[Kind], ts_ms: int, observed: dict[str, Scalar]
    ) -> list[Transition]:
        if not kinds:
            return []
        silenced, inhibited = self._muted(series)
        if "firing" in kinds:
            series.alert.silenced = silenced or inhibited
        fp = fingerprint(series.rule, series.subject)
        window = self._window(series) if "firing" in kinds else ()
        return [
            Transition(
                fp,
                series.rule,
                series.subject,
                k,
                ts_ms,
                dict(observed),
                silenced,
                inhibited,
                readings=window if k == "firing" else (),
                flapping=series.alert.flapping,
            )
            for k in kinds
        ]

    def _check_stale(self, info: DeviceInfo, now: int) -> list[Transition]:
        key = (info.community.id, info.device.id)
        age = now - self._last_seen[key]
        expected_ms = info.profile.expected_interval_s * 1000
        out: list[Transition] = []
        if age > max(DATA_STALE_FACTOR * expected_ms, DATA_STALE_MIN_MS):
            for rule in self._rules_by_device[key]:
                series = self._series.get(fingerprint(rule, _subject(info)))
                # Only alerts judged on the device's data lose their footing; event alerts do not.
                if series is not None and rule.field is not None:
                    out += self._emit(series, lose_data(series.alert), now, {})
        gateway_down = self.gateway_down(info.community.id, info.gateway.id)
        for rule in self._rules_by_device[key]:
            if rule.stale is None or gateway_down:
                continue  # an offline gateway raises its own alert instead of one per device
            limit = max(rule.stale.factor * expected_ms, rule.stale.min_s * 1000)
            if age > limit:
                out += self._judge(
                    rule, _subject(info), Verdict.BREACH, now, now, {"silent_s": round(age / 1000)}
                )
        return out

    def _composite(self, transitions: list[Transition], now: int) -> list[Transition]:
        touched: set[tuple[str, str]] = set()
        for t in transitions:
            if t.rule.id not in self._component_ids:
                continue
            key = (t.subject.community.id, t.subject.grid, t.rule.id)
            firing = self._component_firing.setdefault(key, set())
            if t.kind == "firing":
                firing.add(t.fingerprint)
                self._component_last_ms[key] = now
            elif t.kind in ("resolved", "unknown"):
                firing.discard(t.fingerprint)
            touched.add((t.subject.community.id, t.subject.grid))
        out: list[Transition] = []
        for community, grid in touched:
            community_cfg = self._catalog.communities[community]
            for rule in self._composites:
                spec = rule.composite
                assert spec is not None
                if rule.scope.community not in (None, community) or rule.scope.grid not in (None, grid):
                    continue
                recent = [
                    bool(self._component_firing.get((community, grid, c)))
                    or now - self._component_last_ms.get((community, grid, c), -(10**15))
                    <= spec.window_s * 1000
                    for c in spec.rules
                ]
                any_firing = any(self._component_firing.get((community, grid, c)) for c in spec.rules)
                met = all(recent) if spec.op == "all" else any(recent)
                verdict = (
                    Verdict.BREACH
                    if met and any_firing
                    else Verdict.CLEAR
                    if not any_firing
                    else Verdict.HOLD
                )
                out += self._judge(
                    rule, Subject(community_cfg, grid), verdict, now, now, {"rules": ",".join(spec.rules)}
                )
        return out

    # -- rules changed while running (#28) --------------------------------------------------------------

    def use_rules(self, rules: Iterable[Rule]) -> list[Transition]:
        """A new rule set, while running. A rule whose id and version did not change keeps everything
        (pending timer, windows, baselines); a new version of a rule keeps its alerts' state but starts
        its condition afresh, as a restored checkpoint does; a removed rule's open alerts resolve.
        Returns those resolutions, to be committed like any transition."""
        new = list(rules)
        swap = plan_swap(self._rules, new)
        by_id = {r.id: r for r in new}
        now = self._clock()
        out: list[Transition] = []
        for fp, series in list(self._series.items()):
            rule_id = series.rule.id
            if rule_id in swap.removed:
                if series.alert.status in ("pending", "firing", "unknown"):
                    out += self._emit(series, ["resolved"], now, {"rule_removed": True})
                del self._series[fp]
            elif rule_id in swap.changed:
                series.rule = by_id[rule_id]
                series.condition = condition_for(series.rule)
            else:
                series.rule = by_id[rule_id]  # equal to the old one: its state is untouched
        self._rules = new
        self._gateway_rules = [r for r in new if r.gateway_offline is not None]
        self._composites = [r for r in new if r.composite is not None]
        self._component_ids = {c for r in self._composites for c in r.composite.rules}  # type: ignore[union-attr]
        self._component_firing = {
            k: v for k, v in self._component_firing.items() if k[2] in self._component_ids
        }
        self._rewire()
        return out

    def _rewire(self) -> None:
        """Which rules watch each indexed device, and the rings of their fields, for the rules now: a
        ring still watched is kept (its evidence window), one no longer watched is dropped."""
        recent: dict[tuple[str, str, str], deque[Sample]] = {}
        for info in self._devices:
            key = (info.community.id, info.device.id)
            rules = self._rules_by_device[key] = [r for r in self._rules if r.scope.matches(info)]
            rings: list[tuple[str, deque[Sample]]] = []
            for name in sorted({r.field for r in rules if r.field is not None}):
                ring = self._recent.get((*key, name)) or deque(maxlen=WINDOW_READINGS)
                recent[(*key, name)] = ring
                rings.append((name, ring))
            self._rings[key] = rings
        self._recent = recent


def _subject(info: DeviceInfo) -> Subject:
    return Subject(info.community, info.device.grid, gateway=info.gateway.id, device=info.device)
