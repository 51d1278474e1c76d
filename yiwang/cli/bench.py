"""`yiwang bench <area> --json`: benchmarks against real components, each with its ceiling."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from yiwang.cli.root import app

BENCH_AREAS = ("case-latency", "edge", "alerts", "camera", "ingest", "api", "registry", "soak")


@app.command()
def bench(
    area: Annotated[str, typer.Argument(help=f"What to measure: {', '.join(BENCH_AREAS)}.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    trials: Annotated[int, typer.Option(min=1, help="Repetitions.")] = 20,
    embedded_broker: Annotated[
        bool, typer.Option(help="Use the embedded broker instead of Mosquitto.")
    ] = False,
    seconds: Annotated[float, typer.Option(min=1, help="Load duration per phase (ingest).")] = 15.0,
    replicas: Annotated[int, typer.Option(min=1, help="Ingest processes (ingest; >1: shared sub).")] = 1,
    rounds: Annotated[
        int, typer.Option(min=1, help="Batched rounds between ceilings; the median ratio counts (ingest).")
    ] = 5,
    minutes: Annotated[float, typer.Option(min=0.1, help="Soak duration at half capacity (soak).")] = 30.0,
    plot_dir: Annotated[Path | None, typer.Option(help="Write the soak's PNG curves here (soak).")] = None,
    registry_communities: Annotated[
        int,
        typer.Option(
            min=0, help="Ingest against a registry of this many communities × 1,000 devices (ingest)."
        ),
    ] = 0,
    cases: Annotated[
        int, typer.Option(min=1_000, help="Cases to load, ten events each (api): 1000000 is ten years.")
    ] = 100_000,
    allow_sqlite: Annotated[
        bool, typer.Option(help="Measure on SQLite when PostgreSQL is not installed (api, registry).")
    ] = False,
) -> None:
    """Benchmark against real components on this machine, with a ceiling measured in the same run."""
    import json

    from common.settings import ServiceSettings
    from yiwang.bench import case_latency

    if area not in BENCH_AREAS:
        raise typer.BadParameter(f"unknown area {area!r}; one of {', '.join(BENCH_AREAS)}")
    if area == "edge":
        from yiwang.bench import edge as edge_bench
        from yiwang.bench import edge_recovery

        config_dir = ServiceSettings().config_dir
        # A 60 s broker outage and a minute of CPU time each, as the figures are defined.
        result = edge_bench.run(config_dir) | edge_recovery.run(config_dir, outage_s=60.0, cpu_seconds=60.0)
    elif area == "api":
        from yiwang.bench import BenchError
        from yiwang.bench import api as api_bench

        try:
            result = api_bench.run(ServiceSettings().config_dir, cases=cases, allow_sqlite=allow_sqlite)
        except BenchError as err:
            typer.echo(f"bench api: {err}", err=True)
            raise typer.Exit(2) from err
    elif area == "registry":
        from yiwang.bench import BenchError
        from yiwang.bench import registry as registry_bench

        try:
            result = registry_bench.run(ServiceSettings().config_dir, allow_sqlite=allow_sqlite)
        except BenchError as err:
            typer.echo(f"bench registry: {err}", err=True)
            raise typer.Exit(2) from err
    elif area == "alerts":
        from yiwang.bench import alerts as alerts_bench

        result = alerts_bench.run(ServiceSettings().config_dir)
    elif area == "ingest":
        from yiwang.bench import ingest as ingest_bench

        result = ingest_bench.run(
            ServiceSettings().config_dir,
            seconds=seconds,
            replicas=replicas,
            rounds=rounds,
            registry_communities=registry_communities,
        )
    elif area == "soak":
        from yiwang.bench import soak as soak_bench

        result = soak_bench.run(ServiceSettings().config_dir, minutes=minutes, plot_dir=plot_dir)
    elif area == "camera":
        from yiwang.bench import camera as camera_bench

        # Here --trials is the number of development seeds (14 clips each); held-out uses 3× as many.
        result = camera_bench.run(seeds=min(trials, 5))
    else:
        result = case_latency.run(
            ServiceSettings().config_dir, trials=trials, embedded_broker=embedded_broker
        )
    typer.echo(json.dumps(result) if as_json else json.dumps(result, indent=2, ensure_ascii=False))
