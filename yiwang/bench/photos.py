"""Photo uploads through the real route: a phone's 4 MB picture accepted, checked, re-encoded and stored.

``photo_ms`` times ``POST /api/v1/cases/{id}/attachments`` against a running API (the one ``yiwang bench
api`` starts, as ``photo_ms`` in its JSON). The photo is made here:
a 4,000 × 3,000 JPEG of smooth colour with sensor-like noise, about 4 MB at quality 92, which is what
a phone camera writes and what a re-encoder finds hard (noise does not compress).
"""

from __future__ import annotations

import random
import statistics
import time
from io import BytesIO
from typing import Any

import httpx
from PIL import Image, ImageChops

from yiwang.bench import BenchError

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
