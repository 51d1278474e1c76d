"""More of what operators see, on top of the two seeded towns (tests/api/two_towns.py): evidence of every
kind (a threshold, a camera event with its UUID, a gateway's last will), system notes in a case's
timeline (alerts joining and clearing, a deadline warning, a supervision order), a silence of a rule with
a reason, and a dead letter. Everything goes in through the real code paths."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from alerts.engine import AlertEngine
from alerts.intake import CaseBook
from alerts.rules import load_rules
from alerts.silences import SilenceIn, SilenceStore
from api.settings import ApiSettings
from cases import actions
from cases.models import Case, Evidence
from cases.policy import CasePolicy
from common.db import make_engine
from contract import Event, Reading, StateMessage
from contract.catalog import load_catalog
from ingest.deadletters import DeadLetter, DeadLetterStore

COMMUNITY = "zhuganxiang"


@dataclass(frozen=True)
class Extra:
    gas_case: int  # threshold evidence, a deadline warning and a supervision order in its timeline
    camera_case: int  # a camera event's evidence (its UUID stored in the observation)
    gateway_case: int  # a gateway's last will
    camera_event: str


def seed_more(settings: ApiSettings) -> Extra:
    config = settings.config_dir
    policy = CasePolicy.load(config)
    catalog = load_catalog(config)
    now = datetime.now(UTC)
    ms = int(now.timestamp() * 1000)
    clock = [ms]
    engine = AlertEngine(load_rules(config, policy.categories), catalog, clock=lambda: clock[0])
    db = make_engine(settings.database_url)
    book = CaseBook(db, policy, timedelta(minutes=1))
    try:
        # Gas at 32 %LEL on two detectors of the north grid: one case, the second alert joins it; one clears.
        for offset, (device, value) in enumerate((("gas-0101", 32.0), ("gas-0201", 27.5), ("gas-0201", 2.0))):
            reading = Reading(device=device, ts=ms + offset, values={"lel_pct": value})
            book.apply(engine.on_reading(COMMUNITY, "gw-01", reading), now=now)
        # Something stays in the fire lane: a camera event, its id a UUID.
        event_id = uuid.uuid4()
        for phase, at in (("start", ms + 10), ("update", ms + 30_000)):
            event = Event.model_validate(
                {
                    "device": "cam-01",
                    "ts": at,
                    "id": str(event_id),
                    "kind": "camera.motion",
                    "phase": phase,
                    "attrs": {"zone": "fire-lane", "score": 0.81},
                }
            )
            book.apply(engine.on_event(COMMUNITY, "gw-01", event), now=now)
        clock[0] = ms + 60_000  # the camera rule's pending time has passed
        book.apply(engine.tick(), now=now)
        # The second gateway's last will: its link is down.
        book.apply(
            engine.on_state(COMMUNITY, "gw-02", StateMessage.model_validate({"online": False})), now=now
        )
        SilenceStore(db).add(
            SilenceIn.model_validate(
                {
                    "matchers": {"community": COMMUNITY, "rule": "gas-anomaly"},
                    "ends_at": now + timedelta(hours=6),
                    "comment": "燃气公司检修管线",
                }
            ),
            author="district_operator",
        )
        with Session(db) as session, session.begin():

            def case_of(rule: str) -> Case:
                evidence = session.scalars(select(Evidence).where(Evidence.rule_id == rule)).first()
                assert evidence is not None, f"no evidence of {rule}: the seed did not open its case"
                case = session.get(Case, evidence.case_id)
                assert case is not None
                return case

            gas = case_of("gas-lel-high")
            actions.warn_stage(
                session, gas, note=f"{gas.stage}: 80 % of the time used", actor="system:sla", now=now
            )
            actions.supervise(
                session, gas, level=1, addressed_to="g-north", unit="g-north", actor="system:sla", now=now
            )
            extra = Extra(
                gas.id, case_of("fire-lane-motion").id, case_of("gateway-offline").id, str(event_id)
            )
    finally:
        db.dispose()
    _dead_letter(settings)
    return extra


def _dead_letter(settings: ApiSettings) -> None:
    """A payload ingest could not read, as ingest stores it."""
    db = make_engine(settings.database_url)
    try:
        topic = f"yiwang/v1/{COMMUNITY}/gw-01/telemetry"
        DeadLetterStore(db).add_many(
            [DeadLetter(topic, "invalid: seq: Input should be a valid integer", b'{"seq": "x"}')]
        )
    finally:
        db.dispose()
