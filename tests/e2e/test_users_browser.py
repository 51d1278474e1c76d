"""Accounts in a real headless Chromium (Debian's), driven by Playwright, against the real API process on
SQLite and a real PostgreSQL: an admin gives a person an account on a desktop, the person sets their
password from the one-time link on a 360×740 phone, deactivation throws the phone's live session out;
the accounts page fits a phone in both languages; the case page's assignee is picked from the unit."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page

from api import accounts
from common.db import make_engine
from tests.e2e import browser as chromium
from tests.e2e.browser import DESKTOP
from tests.factories import open_flooding_cases

pytestmark = [pytest.mark.e2e, pytest.mark.browser]
ADMIN_PASSWORD = "admin-pass-for-tests"
TOWN_PASSWORD = "town-pass-for-tests"
WORKER_PASSWORD = "worker-pass-for-tests"
NEW_PASSWORD = "plum-river-47-cloud"


@pytest.fixture(params=chromium.DATABASES)
def console(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The real API process with an admin, a town operator (wang.wei) and a grid worker (zhou.qiang)."""
    database_url = chromium.fresh_database(request, tmp_path)
    db = make_engine(database_url)
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
    open_flooding_cases(database_url, [datetime.now(UTC)])
    with chromium.api_process(tmp_path, chromium.api_env(database_url, tmp_path)) as api:
        yield api.base


def fits_the_screen(page: Page) -> bool:
    """No sideways scrolling: the page is no wider than the window."""
    return bool(page.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth"))


def test_an_account_is_made_on_a_desktop_and_its_password_set_on_a_phone(
    browser: Browser, console: str, tmp_path: Path
) -> None:
    base = console
    admin = chromium.signed_in(
        chromium.desktop(browser, "zh-CN", **DESKTOP), base, "root", ADMIN_PASSWORD, "zh"
    )
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

    phone = chromium.phone(browser, "en-US").new_page()
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
    again = chromium.phone(browser, "zh-CN").new_page()
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
    town = chromium.signed_in(chromium.phone(browser, locale), base, "wang.wei", TOWN_PASSWORD, lang)
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

    worker = chromium.signed_in(
        chromium.desktop(browser, locale, **DESKTOP), base, "zhou.qiang", WORKER_PASSWORD, lang
    )
    assert worker.locator("#nav-users").count() == 0
    response = worker.goto(f"{base}/console/users")
    assert response is not None and response.status == 403
    assert worker.locator("#users-forbidden").is_visible()


def test_the_assignee_is_picked_from_the_people_of_the_cases_grid(browser: Browser, console: str) -> None:
    base = console
    town = chromium.signed_in(
        chromium.desktop(browser, "zh-CN", **DESKTOP), base, "wang.wei", TOWN_PASSWORD, "zh"
    )
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
