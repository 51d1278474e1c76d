"""The console's fleet page (gateways and devices, as last heard) and rule noise report."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session

from alerts.outcomes import RuleOutcome, rule_outcomes
from api.console.unknown_gateways import unknown_gateways
from api.console.web import ConsoleUser, page
from api.deps import ResourcesDep
from api.routes.devices import visible_devices, visible_gateways
from registry.desired import fleet_config_drifts
from registry.rollout_models import ensure_tables
from registry.rollouts import GatewayPhase, fleet_versions, latest_rollouts

router = APIRouter(include_in_schema=False)


@router.get("/console/fleet", response_class=HTMLResponse, response_model=None)
def fleet_page(request: Request, resources: ResourcesDep, user: ConsoleUser) -> Response:
    devices = visible_devices(resources, user)
    gateways = visible_gateways(resources, user)
    # A gateway stopped on purpose (its last state says ``reason: stopped``) is maintenance: its
    # devices are silent by design, noted as such rather than shown as failures.
    stopped = {
        (g.community, g.gateway)
        for g in gateways
        if g.online is False and (g.state or {}).get("reason") == "stopped"
    }
    # Desired (the registry) against reported (the gateway's last state): drift is flagged per gateway.
    drift = fleet_config_drifts(resources.db, {(g.community, g.gateway): g.state for g in gateways})
    # Agent versions: what runs, what should, how the last attempt ended; the rollouts behind them.
    ensure_tables(resources.db)
    seen = {(g.community, g.gateway): g for g in gateways}
    with Session(resources.db) as session:
        versions = [
            v
            for v in fleet_versions(
                session,
                {k: g.state for k, g in seen.items()},
                {k: g.online for k, g in seen.items()},
            )
            if (v.community, v.gateway) in seen
        ]
        rollouts = latest_rollouts(session, 5)
    failures = {
        "failed": sum(v.phase is GatewayPhase.FAILED for v in versions),
        "rolled_back": sum(v.phase is GatewayPhase.ROLLED_BACK for v in versions),
    }
    return page(
        request,
        resources,
        "fleet.html",
        user=user,
        gateways=gateways,
        drift=drift,
        unknown=unknown_gateways(resources, user),
        stopped=stopped,
        versions=versions,
        rollouts=rollouts,
        failures=failures,
        devices=sorted(devices, key=lambda d: (not d.silent, d.gateway, d.device)),
    )


@router.get("/console/rules", response_class=HTMLResponse, response_model=None)
def rules_page(request: Request, resources: ResourcesDep, user: ConsoleUser) -> Response:
    """Which rules are noisy: fired, silenced, voided as false alarms, recovered before anyone acted."""
    outcomes = rule_outcomes(resources.db)
    rows = [(rule, outcomes.get(rule.id, RuleOutcome(rule.id))) for rule in resources.rules]
    # Noisiest first: what was voided or recovered by itself, relative to what fired.
    rows.sort(key=lambda r: -(r[1].cases_voided + r[1].self_recovered + r[1].flapping) / max(r[1].fired, 1))
    return page(request, resources, "rules.html", user=user, rows=rows)
