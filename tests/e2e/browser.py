"""What the browser tests share: the real `yiwang api` process on free ports, Debian's headless Chromium,
desktop and phone (360×740, touch) contexts, and the console's login form.

Plain helpers (the fixtures that use them are in tests/e2e/conftest.py); each test keeps its own data.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Playwright

from tests.platform import CONFIG_DIR, Service, wait_for
from yiwang.schema import create_all
from yiwang.servers import free_port

CHROMIUM = "/usr/bin/chromium"  # Debian's: no downloaded browser
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
API_START_S = 60.0  # generous: CI runs two test workers on a loaded two-core box
PHONE_WIDTH, PHONE_HEIGHT = 360, 740
PHONE: dict[str, Any] = {
    "viewport": {"width": PHONE_WIDTH, "height": PHONE_HEIGHT},
    "is_mobile": True,
    "has_touch": True,
    "device_scale_factor": 2,
}
DESKTOP: dict[str, Any] = {"viewport": {"width": 1280, "height": 800}}
# Every browser test runs on the embedded SQLite default and on a real PostgreSQL.
DATABASES = ["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)]


def launch_chromium(playwright: Playwright) -> Browser:
    return playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)


def fresh_database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database of the kind ``request.param`` names (one of :data:`DATABASES`)."""
    if request.param == "sqlite":
        database_url = f"sqlite:///{tmp_path}/yiwang.db"
        create_all(database_url)
        return database_url
    url: str = request.getfixturevalue("postgres_schema_url")  # migrated, as in production
    return url


@dataclass(frozen=True)
class ApiProcess:
    base: str
    service: Service

    @property
    def pid(self) -> int:
        assert self.service.proc is not None
        return self.service.proc.pid


def api_env(database_url: str, tmp_path: Path, **extra: str) -> dict[str, str]:
    """The usual settings of a test API: its database, a SQLite series store, the shipped config."""
    return {
        "YIWANG_DATABASE_URL": database_url,
        "YIWANG_SERIES_URL": f"sqlite:///{tmp_path}/series.db",
        "YIWANG_CONFIG_DIR": str(CONFIG_DIR),
        **extra,
    }


@contextmanager
def api_process(
    tmp_path: Path, env: Mapping[str, str], ready_path: str = "/console/login", timeout: float = API_START_S
) -> Iterator[ApiProcess]:
    """`yiwang api` with ``env`` on a free port, once ``ready_path`` answers 200; it must exit cleanly."""
    port = free_port()
    api = Service(["api"], {**env, "YIWANG_HTTP_PORT": str(port)}, tmp_path, tmp_path / "api.log").start()
    base = f"http://127.0.0.1:{port}"

    def up() -> bool:
        try:
            return httpx.get(f"{base}{ready_path}", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_for(up, timeout, f"the API at {base}{ready_path} (log: {api.log_path})")
    except AssertionError:
        api.stop()
        raise AssertionError(f"the API did not start; log:\n{api.log()}") from None
    yield ApiProcess(base, api)
    assert api.stop() == 0, api.log()


def desktop(browser: Browser, locale: str = "zh-CN", **options: Any) -> BrowserContext:
    """A desktop context (Playwright's 1280×720 unless ``options`` give a viewport)."""
    return browser.new_context(locale=locale, **options)


def phone(browser: Browser, locale: str = "zh-CN", **options: Any) -> BrowserContext:
    """A 360×740 touch phone."""
    return browser.new_context(locale=locale, **{**PHONE, **options})


def sign_in(page: Page, username: str, password: str, *, tap: bool = False) -> None:
    """Fill in and send the console's login form, which ``page`` shows (``tap``: with a finger)."""
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    if tap:
        page.tap("button[type=submit]")
    else:
        page.click("button[type=submit]")


def landed(base: str) -> Callable[[str], bool]:
    """Where a signed-in person lands: the console, or the phone view for field roles."""
    return lambda url: url in (f"{base}/console", f"{base}/console/field")


def signed_in(
    context: BrowserContext, base: str, username: str, password: str, lang: str | None = None
) -> Page:
    """A new page of ``context``, signed in (from the login page in ``lang`` when given)."""
    page = context.new_page()
    page.goto(f"{base}/console/login?lang={lang}" if lang else f"{base}/console")
    sign_in(page, username, password)
    page.wait_for_url(landed(base))
    return page
