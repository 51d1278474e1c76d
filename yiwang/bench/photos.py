"""Photo uploads through the real route: a phone's 4 MB picture accepted, checked, re-encoded and stored.

``photo_ms`` times ``POST /api/v1/cases/{id}/attachments`` against a running API (the one ``yiwang bench
api`` starts); ``run`` starts its own throw-away API for a figure on its own. The photo is made here:
a 4,000 × 3,000 JPEG of smooth colour with sensor-like noise, about 4 MB at quality 92, which is what
a phone camera writes and what a re-encoder finds hard (noise does not compress).
"""

from __future__ import annotations

import random
import statistics
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from io import BytesIO
from pathlib import Path
from typing import Any

import httpx
from PIL import Image, ImageChops

from api import accounts
from cases.actions import CaseFlow, Report
from cases.policy import CasePolicy
from common.db import make_engine
from yiwang.bench.api import BenchError, relational_store
from yiwang.schema import create_all
from yiwang.servers import free_port
from yiwang.supervisor import Child, Supervisor, env_with, self_command

PHOTO_WIDTH, PHOTO_HEIGHT = 4000, 3000
NOISE_SIGMA = 9.0  # grey levels: a phone sensor's noise indoors
PHOTO_QUALITY = 92


def noisy_photo(
    width: int = PHOTO_WIDTH,
    height: int = PHOTO_HEIGHT,
    *,
    sigma: float = NOISE_SIGMA,
    quality: int = PHOTO_QUALITY,
    seed: int = 22,
) -> bytes:
    """A camera-like JPEG: soft colour gradients (a scene) plus sensor-like noise in every channel."""
    scene = Image.merge(
        "RGB",
        [
            Image.linear_gradient("L").resize((width, height)),
            Image.radial_gradient("L").resize((width, height)),
            Image.linear_gradient("L").rotate(90).resize((width, height)),
        ],
    )
    noise = Image.merge("RGB", [_noise(width, height, sigma, random.Random(seed + c)) for c in range(3)])
    noisy = ImageChops.add(scene, noise, scale=1.0, offset=-128)  # noise is centred on 128
    out = BytesIO()
    noisy.save(out, "JPEG", quality=quality)
    return out.getvalue()


def _noise(width: int, height: int, sigma: float, rng: random.Random) -> Image.Image:
    """Uniform noise centred on 128 with standard deviation ``sigma`` (random bytes squeezed by a table:
    far faster than Pillow's Gaussian noise on 12 million pixels, and as hard on the encoder)."""
    raw = Image.frombytes("L", (width, height), rng.randbytes(width * height))
    spread = sigma * 3**0.5 / 128  # a uniform ±a has standard deviation a/√3
    return raw.point([round(128 + (v - 128) * spread) for v in range(256)])


def photo_ms(http: httpx.Client, case_id: int, *, uploads: int = 5) -> dict[str, Any]:
    """Upload ``uploads`` different noisy 4 MB photos to ``case_id`` through ``http`` (an authenticated
    client of a running API), after one warm-up; the milliseconds per accepted upload.

    Each photo is new (another seed), so every upload is decoded, re-encoded and written: the store
    keeps one file per content and would skip the write of a repeat.
    """
    photos = [noisy_photo(seed=seed) for seed in range(uploads + 1)]
    samples = []
    for number, photo in enumerate(photos):
        started = time.perf_counter()
        answer = http.post(
            f"/api/v1/cases/{case_id}/attachments", files={"file": ("photo.jpg", photo, "image/jpeg")}
        )
        elapsed = (time.perf_counter() - started) * 1000
        if answer.status_code != httpx.codes.CREATED:
            raise BenchError(f"the photo upload was refused: HTTP {answer.status_code} {answer.text[:200]}")
        if number > 0:  # the first warms the process (Pillow's codecs, the connection pool)
            samples.append(elapsed)
    stored = answer.json()
    return {
        "photo_bytes_in": round(statistics.mean(len(p) for p in photos)),
        "photo_bytes_stored": stored["bytes"],
        "photo_size_stored": f"{stored['width']}x{stored['height']}",
        "photo_ms": round(statistics.median(samples), 1),
        "photo_max_ms": round(max(samples), 1),
    }


def run(config_dir: Path, *, uploads: int = 5, allow_sqlite: bool = True) -> dict[str, Any]:
    """A throw-away API (PostgreSQL when installed) with one reported case; ``photo_ms`` against it."""
    policy = CasePolicy.load(config_dir)
    with relational_store(allow_sqlite, "photo") as (url, kind), tempfile.TemporaryDirectory() as tmp:
        create_all(url)
        db = make_engine(url)
        try:
            user = accounts.create_user(db, "bench-photos", "bench photos pw", role="district_operator")
            token = accounts.issue_token(db, user)
            community = next(iter(policy.organisation.towns)).communities[0]
            grid = next(g for g, c in _grids(config_dir) if c == community)
            report = Report(community, grid, next(iter(policy.categories)), "photo bench")
            case_id, _ = CaseFlow(db, policy).report(report, actor="bench-photos")
        finally:
            db.dispose()
        with _api_with_photos(url, config_dir, Path(tmp)) as base:
            headers = {"Authorization": f"Bearer {token}"}
            with httpx.Client(base_url=base, headers=headers, timeout=60) as http:
                figures = photo_ms(http, case_id, uploads=uploads)
    return {"area": "photos", "store": kind, **figures}


@contextmanager
def _api_with_photos(url: str, config_dir: Path, work: Path) -> Iterator[str]:
    """`yiwang api` as its own process, its photos kept in ``work`` (not the data directory)."""
    port = free_port()
    env = env_with(
        {
            "YIWANG_DATABASE_URL": url,
            "YIWANG_SERIES_URL": f"sqlite:///{work}/series.db",
            "YIWANG_ATTACHMENTS_DIR": str(work / "attachments"),
            "YIWANG_CONFIG_DIR": str(config_dir.resolve()),
            "YIWANG_HTTP_PORT": str(port),
            "YIWANG_LOG_LEVEL": "WARNING",
        }
    )
    supervisor = Supervisor(env, log_path=work / "api.log")
    try:
        supervisor.start(Child("api", self_command("api"), port))
        yield f"http://127.0.0.1:{port}"
    finally:
        supervisor.stop_all()


def _grids(config_dir: Path) -> list[tuple[str, str]]:
    """(grid, community) of the pilot communities' files."""
    from contract.catalog import load_catalog

    catalog = load_catalog(config_dir)
    return [(g.id, c.id) for c in catalog.communities.values() for g in c.grids]
