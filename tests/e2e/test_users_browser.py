"""Accounts in a real headless Chromium (Debian's), driven by Playwright, against the real API process on
SQLite and a real PostgreSQL: an admin gives a person an account on a desktop, the person sets their
password from the one-time link on a 360×740 phone, deactivation throws the phone's live session out;
the accounts page fits a phone in both languages; the case page's assignee is picked from the unit."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright

from api import accounts
from api.settings import ApiSettings
from common.db import make_engine
from tests.factories import open_flooding_cases
from tests.platform import CONFIG_DIR, Service, wait_for
from yiwang.schema import create_all
from yiwang.servers import free_port

pytestmark = [pytest.mark.e2e, pytest.mark.browser]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-quic", "--disable-sync"]
PHONE = {
    "viewport": {"width": 360, "height": 740},
    "is_mobile": True,
    "has_touch": True,
    "device_scale_factor": 2,
}
DESKTOP = {"viewport": {"width": 1280, "height": 800}}
ADMIN_PASSWORD = "admin-pass-for-tests"
TOWN_PASSWORD = "town-pass-for-tests"
WORKER_PASSWORD = "worker-pass-for-tests"
NEW_PASSWORD = "plum-river-47-cloud"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)])
def console(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The real API process with an admin, a town operator (wang.wei) and a grid worker (zhou.qiang)."""
    port = free_port()
    if request.param == "sqlite":
        database_url = f"sqlite:///{tmp_path}/yiwang.db"
        create_all(database_url)
    else:
        database_url = request.getfixturevalue("postgres_schema_url")
    settings = ApiSettings(
        database_url=database_url,
        series_url=f"sqlite:///{tmp_path}/series.db",
        config_dir=CONFIG_DIR,
        http_port=port,
    )
    db = make_engine(settings.database_url)
    accounts.create_user(db, "root", ADMIN_PASSWORD, role="admin", display_name="管理员")
    accounts.create_user(
        db, "wang.wei", TOWN_PASSWORD, "town_operator", "王伟", town="yuehe", person="wang.wei"
    )
    accounts.create_user(
        db,
        "zhou.qiang",
        WORKER_PASSWORD,
        "grid_worker",
        "周强",
        community="zhuganxiang",
        grid="g-middle",
        person="zhou.qiang",
    )
    db.dispose()
    open_flooding_cases(settings.database_url, [datetime.now(UTC)])
    env = {
        "YIWANG_DATABASE_URL": settings.database_url,
        "YIWANG_SERIES_URL": settings.series_url,
        "YIWANG_CONFIG_DIR": str(CONFIG_DIR),
        "YIWANG_HTTP_PORT": str(port),
    }
    api = Service(["api"], env, tmp_path, tmp_path / "api.log").start()
    base = f"http://127.0.0.1:{port}"

    def up() -> bool:
        try:
            return httpx.get(f"{base}/console/login", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    wait_for(up, 90, f"the console; log:\n{api.log()}")  # a loaded 2-core box starts slowly
    yield base
    assert api.stop() == 0


def context(browser: Browser, device: Mapping[str, Any], locale: str) -> BrowserContext:
    return browser.new_context(locale=locale, **device)


def sign_in(ctx: BrowserContext, base: str, username: str, password: str, lang: str = "zh") -> Page:
    page = ctx.new_page()
    page.goto(f"{base}/console/login?lang={lang}")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_url(lambda url: url in (f"{base}/console", f"{base}/console/field"))  # field roles: phone
    return page


def fits_the_screen(page: Page) -> bool:
    """No sideways scrolling: the page is no wider than the window."""
    return bool(page.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth"))


def test_an_account_is_made_on_a_desktop_and_its_password_set_on_a_phone(
    browser: Browser, console: str, tmp_path: Path
) -> None:
    base = console
    admin = sign_in(context(browser, DESKTOP, "zh-CN"), base, "root", ADMIN_PASSWORD)
    admin.click("#nav-users")
    admin.wait_for_url(f"{base}/console/users")
    assert admin.locator("h2").first.inner_text() == "账号管理"
    admin.select_option("#create-account select[name=username]", "li.na")
    admin.click("#create-account button[type=submit]")
    link = admin.locator("#one-time-link")
    assert link.get_attribute("data-username") == "li.na" and "只显示这一次" in link.inner_text()
    url = admin.locator("#link-url").input_value()
    assert url.startswith(f"{base}/console/welcome/")
    row = admin.locator("#accounts tr[data-username='li.na']")
    assert (
        "网格员" in row.inner_text() and "待设置密码" in row.inner_text() and "北区网格" in row.inner_text()
    )
    admin.screenshot(path=str(tmp_path / "users-desktop-zh.png"), full_page=True)

    phone = context(browser, PHONE, "en-US").new_page()
    phone.goto(url + "?lang=en")
    assert phone.locator("#welcome-username").inner_text() == "li.na"
    assert fits_the_screen(phone)
    phone.fill("input[name=password]", NEW_PASSWORD)
    phone.fill("input[name=repeat]", NEW_PASSWORD + "!")
    phone.click("button[type=submit]")
    assert phone.locator("#welcome-error").inner_text() == "The two passwords differ."
    phone.fill("input[name=password]", "short")  # the browser's own check (minlength) stops this one
    phone.fill("input[name=password]", "abababababab")
    phone.fill("input[name=repeat]", "abababababab")
    phone.click("button[type=submit]")
    assert "4 different characters" in phone.locator("#welcome-error").inner_text()
    assert fits_the_screen(phone)
    phone.screenshot(path=str(tmp_path / "welcome-phone-en.png"), full_page=True)
    phone.fill("input[name=password]", NEW_PASSWORD)
    phone.fill("input[name=repeat]", NEW_PASSWORD)
    phone.click("button[type=submit]")
    phone.wait_for_url(f"{base}/console")  # signed in straight away
    assert phone.locator("#nav-users").count() == 0  # a grid worker manages no accounts

    # The link was single-use: opened again (in Chinese), it says so and asks for nothing.
    again = context(browser, PHONE, "zh-CN").new_page()
    again.goto(url + "?lang=zh")
    assert again.locator("#welcome-refused").get_attribute("data-refusal") == "used"
    assert "已经用过" in again.locator("#welcome-refused").inner_text()
    assert again.locator("input[name=password]").count() == 0 and fits_the_screen(again)

    # Deactivated on the desktop: the phone's live session is refused on its next request.
    admin.goto(f"{base}/console/users")
    admin.locator("#accounts tr[data-username='li.na'] button[data-do=deactivate]").click()
    admin.wait_for_url(f"{base}/console/users")
    assert admin.locator("#accounts tr[data-username='li.na']").get_attribute("data-active") == "false"
    phone.goto(f"{base}/console")
    assert phone.url == f"{base}/console/login"


@pytest.mark.parametrize(
    ("lang", "locale", "title"), [("zh", "zh-CN", "账号管理"), ("en", "en-US", "Accounts")]
)
def test_the_accounts_page_keeps_a_town_operator_to_the_town_and_fits_a_phone(
    browser: Browser, console: str, tmp_path: Path, lang: str, locale: str, title: str
) -> None:
    base = console
    town = sign_in(context(browser, PHONE, locale), base, "wang.wei", TOWN_PASSWORD, lang)
    town.goto(f"{base}/console/users")
    assert town.locator("h2").first.inner_text() == title
    people = town.locator("#create-account select[name=username] option").evaluate_all(
        "options => options.map(o => o.value)"
    )
    assert "li.na" in people and "liu.yang" not in people  # the water department is not the town's
    shown = town.locator("#accounts tr[data-username]").evaluate_all(
        "rows => rows.map(r => r.dataset.username)"
    )
    assert set(shown) == {"wang.wei", "zhou.qiang"}  # not the admin's
    assert "root" not in town.content() and "town_operator" not in town.inner_text("main")
    assert fits_the_screen(town)
    town.screenshot(path=str(tmp_path / f"users-phone-{lang}.png"), full_page=True)

    worker = sign_in(context(browser, DESKTOP, locale), base, "zhou.qiang", WORKER_PASSWORD, lang)
    assert worker.locator("#nav-users").count() == 0
    response = worker.goto(f"{base}/console/users")
    assert response is not None and response.status == 403
    assert worker.locator("#users-forbidden").is_visible()


def test_the_assignee_is_picked_from_the_people_of_the_cases_grid(browser: Browser, console: str) -> None:
    base = console
    town = sign_in(context(browser, DESKTOP, "zh-CN"), base, "wang.wei", TOWN_PASSWORD)
    town.locator("#cases tbody tr a").first.click()
    for action in ("accept", "verify"):
        town.locator(f"form[data-action={action}] button[type=submit]").click()
        town.wait_for_load_state()
    picker = town.locator("form[data-action=assign] select[name=assignee]")
    options = picker.locator("option").evaluate_all("options => options.map(o => [o.value, o.textContent])")
    assert options[0] == ["li.na", "李娜"]  # the grid's on duty, first, by name
    assert ["zhao.lei", "赵磊"] in options and ["wang.wei", "王伟"] in options
    assert all(value != "liu.yang" for value, _ in options)  # a department's handler is no assignee here
    # A forged choice is refused by the server, which names it.
    picker.evaluate("select => { select.options[0].value = 'nobody.here'; }")
    town.locator("form[data-action=assign] button[type=submit]").click()
    town.wait_for_load_state()
    assert "nobody.here" in town.locator(".error[role=alert]").inner_text()
    assert town.locator("#case-state").get_attribute("data-state") == "FILED"
    town.select_option("form[data-action=assign] select[name=assignee]", "zhao.lei")
    town.locator("form[data-action=assign] button[type=submit]").click()
    town.wait_for_load_state()
    assert town.locator("#case-state").get_attribute("data-state") == "ASSIGNED"
