"""The README's screenshots, taken from today's console: the demo platform started as `yiwang up` starts
it (free ports, a temporary directory), run until the simulated community has opened cases, then
photographed by a real headless Chromium in 简体中文 and English, at desktop size and — for the field
worker's page — at a phone's 360×740.

So ``docs/screenshots/`` never shows a console that no longer exists: regenerate with
``yiwang screenshots --out docs/screenshots``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import httpx

from yiwang.polling import first_answer
from yiwang.servers import free_port

if TYPE_CHECKING:
    from playwright.sync_api import ViewportSize

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]
DESKTOP: ViewportSize = {"width": 1440, "height": 900}
PHONE: ViewportSize = {"width": 360, "height": 740}
LANGUAGES = ("zh", "en")
LOCALES = {"zh": "zh-CN", "en": "en-US"}
# The simulated community raises an anomaly this often: cases appear within a minute of the start.
ANOMALY_PERIOD_S = "8"
MAX_CREDENTIALS_BYTES = 1024 * 1024
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Shot:
    """One page to photograph: ``path`` may name ``{case}`` (an open case) and ``{device}``."""

    name: str
    path: str
    phone: bool = False  # the field worker's view, signed in as the demo's grid worker


SHOTS: tuple[Shot, ...] = (
    Shot("queue", "/console"),
    Shot("case", "/console/cases/{case}"),
    Shot("kpis", "/console/kpis"),
    Shot("map", "/console/map"),
    Shot("wall", "/console/wall"),
    Shot("device", "/console/devices/{device}"),
    Shot("field", "/console/field", phone=True),
)
SHOT_NAMES = tuple(s.name for s in SHOTS)


class ScreenshotError(RuntimeError):
    """The demo did not come up, produced no cases, or a page could not be photographed."""


@dataclass(frozen=True, slots=True)
class Demo:
    base_url: str
    credentials: dict[str, Any]
    workdir: Path
    log: Path


def wait_for(check: Callable[[], T | None], timeout_s: float, what: str, log: Path | None = None) -> T:
    """``check()``'s first truthy answer within ``timeout_s``; ScreenshotError naming ``what`` otherwise."""
    found = first_answer(check, timeout_s, interval_s=0.5)
    if found:
        return found
    tail = log.read_text(errors="replace")[-3000:] if log is not None and log.exists() else ""
    raise ScreenshotError(f"timed out after {timeout_s:.0f} s waiting for {what}\n{tail}")


def _environment(http_port: int, mqtt_port: int, config_dir: Path) -> dict[str, str]:
    """The caller's environment without its own Yiwang settings (stores, ports, spools stay in the
    temporary directory), plus the demo's ports and configuration."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("YIWANG_")}
    return env | {
        "YIWANG_HTTP_PORT": str(http_port),
        "YIWANG_MQTT_PORT": str(mqtt_port),
        "YIWANG_CONFIG_DIR": str(config_dir),
        "YIWANG_ANOMALY_PERIOD_S": ANOMALY_PERIOD_S,
        "YIWANG_INGEST_METRICS_PORT": "0",  # no fixed port to collide with a demo already running
    }


@contextmanager
def demo_platform(config_dir: Path, startup_s: float = 120.0) -> Iterator[Demo]:
    """`yiwang up` in a temporary directory on free ports, until the block ends (then stopped with
    Ctrl-C, as a person would)."""
    http_port, mqtt_port = free_port(), free_port()
    with tempfile.TemporaryDirectory(prefix="yiwang-screenshots-") as tmp:
        workdir = Path(tmp)
        log = workdir / "up.log"
        with log.open("ab") as out:
            proc = subprocess.Popen(  # this interpreter running our own CLI
                [sys.executable, "-m", "yiwang", "up"],
                cwd=workdir,
                env=_environment(http_port, mqtt_port, config_dir.resolve()),
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        base = f"http://127.0.0.1:{http_port}"
        try:
            wait_for(lambda: _healthy(base, proc), startup_s, "a healthy demo platform", log)
            credentials = _credentials(workdir / "var/demo/credentials.json")
            yield Demo(base, credentials, workdir, log)
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()


def _healthy(base: str, proc: subprocess.Popen[bytes]) -> bool:
    if proc.poll() is not None:
        raise ScreenshotError(f"`yiwang up` exited with {proc.returncode}")
    try:
        return httpx.get(f"{base}/healthz", timeout=3).status_code == 200
    except httpx.HTTPError:
        return False


def _credentials(path: Path) -> dict[str, Any]:
    if path.stat().st_size > MAX_CREDENTIALS_BYTES:
        raise ScreenshotError(f"{path} is larger than {MAX_CREDENTIALS_BYTES} bytes")
    found: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return found


def _api(demo: Demo, path: str, **params: str) -> dict[str, Any]:
    answer = httpx.get(
        demo.base_url + path,
        params=params,
        headers={"Authorization": f"Bearer {demo.credentials['token']}"},
        timeout=10,
    )
    answer.raise_for_status()
    found: dict[str, Any] = answer.json()
    return found


def wait_for_cases(demo: Demo, timeout_s: float = 180.0) -> int:
    """The newest case's id, once the simulated community has opened one."""

    def newest() -> int | None:
        items = _api(demo, "/api/v1/cases")["items"]
        return int(items[0]["id"]) if items else None

    return wait_for(newest, timeout_s, "the simulated community's first case", demo.log)


def reporting_device(demo: Demo) -> str:
    """``community/device`` of a device that has reported (a water level first: its chart has a rule's
    threshold drawn)."""

    def found() -> str | None:
        seen = [d for d in _api(demo, "/api/v1/devices", limit="500")["items"] if d["last_seen"]]
        seen.sort(key=lambda d: (not d["type"].startswith("water."), d["device"]))
        return f"{seen[0]['community']}/{seen[0]['device']}" if seen else None

    return wait_for(found, 60, "a device that has reported", demo.log)


def capture(
    demo: Demo, out_dir: Path, shots: Sequence[Shot], languages: Sequence[str], settle_s: float = 2.0
) -> list[Path]:
    """Each shot in each language as ``<name>.<lang>.png`` in ``out_dir``; returns the files written."""
    from playwright.sync_api import sync_playwright

    out_dir.mkdir(parents=True, exist_ok=True)
    values = {"case": str(wait_for_cases(demo))}
    if any("{device}" in s.path for s in shots):
        values["device"] = reporting_device(demo)
    operator = (demo.credentials["username"], demo.credentials["password"])
    worker_login = demo.credentials.get("grid_worker") or {}
    worker = (worker_login.get("username", ""), worker_login.get("password", ""))
    written = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            for lang in languages:
                for shot in shots:
                    if shot.phone:
                        context = browser.new_context(
                            viewport=PHONE, has_touch=True, is_mobile=True, locale=LOCALES[lang]
                        )
                        who = worker
                    else:
                        context = browser.new_context(viewport=DESKTOP, locale=LOCALES[lang])
                        who = operator
                    try:
                        page = context.new_page()
                        _sign_in(page, demo.base_url, lang, who)
                        page.goto(f"{demo.base_url}{shot.path.format(**values)}?lang={lang}")
                        page.wait_for_load_state("networkidle", timeout=15_000)
                        time.sleep(settle_s)  # live pages draw their first figures after loading
                        target = out_dir / f"{shot.name}.{lang}.png"
                        page.screenshot(path=str(target), full_page=not shot.phone)
                        written.append(target)
                    finally:
                        context.close()
        finally:
            browser.close()
    return written


def _sign_in(page: Any, base: str, lang: str, login: tuple[str, str]) -> None:
    """Sign in through the login form in ``lang`` (the choice is kept by cookie from there on)."""
    if not all(login):
        raise ScreenshotError("the demo's credentials file has no login for this view")
    page.goto(f"{base}/console/login?lang={lang}")
    page.fill("input[name=username]", login[0])
    page.fill("input[name=password]", login[1])
    page.click("button[type=submit]")
    page.wait_for_url(lambda url: "/console/login" not in url, timeout=15_000)


def take_screenshots(
    out_dir: Path,
    config_dir: Path,
    names: Sequence[str] = SHOT_NAMES,
    languages: Sequence[str] = LANGUAGES,
) -> list[Path]:
    """Start the demo, wait for its cases, photograph ``names`` in ``languages`` into ``out_dir``."""
    unknown = [n for n in names if n not in SHOT_NAMES]
    if unknown:
        raise ScreenshotError(f"unknown page(s) {', '.join(unknown)}: choose from {', '.join(SHOT_NAMES)}")
    wrong = [lang for lang in languages if lang not in LANGUAGES]
    if wrong:
        raise ScreenshotError(f"unknown language(s) {', '.join(wrong)}: choose from zh, en")
    shots = [s for s in SHOTS if s.name in names]
    with demo_platform(config_dir) as demo:
        return capture(demo, out_dir, shots, languages)
