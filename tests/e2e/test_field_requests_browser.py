"""A worker asks for more time on the phone, the office approves on the desktop (#22), in Debian's
headless Chromium against the real API process on SQLite and a real PostgreSQL: the worker (360×740,
touch) signs for a case and requests an extension with hours and a reason; the phone says it waits for
approval; a district operator at a desktop sees the request on the case page and approves it; the
deadline moves by the working hours asked, and the open phone page shows the new deadline and who
approved without a reload; the bell tells the worker too."""

from __future__ import annotations

from datetime import datetime

import pytest
from playwright.sync_api import Browser, expect
from sqlalchemy import select
from sqlalchemy.orm import Session

from cases.models import Case, CaseEvent
from common.db import make_engine
from tests.e2e.test_console_browser import browser  # noqa: F401 - Debian's Chromium, headless
from tests.e2e.test_field_phone import DESKTOP, Live, assign, fits, live, phone_sign_in  # noqa: F401

pytestmark = [pytest.mark.e2e, pytest.mark.browser]


def stored(live: Live, case_id: int) -> tuple[datetime, list[CaseEvent]]:  # noqa: F811
    """The case's deadline and its extend events, as the database holds them."""
    db = make_engine(live.database_url)
    with Session(db) as session:
        case = session.get(Case, case_id)
        assert case is not None
        extends = list(
            session.scalars(
                select(CaseEvent).where(CaseEvent.case_id == case_id, CaseEvent.action == "extend")
            )
        )
        deadline = case.deadline
    db.dispose()
    return deadline, extends


def test_the_worker_requests_an_extension_and_the_operator_approves_it(
    browser: Browser,  # noqa: F811
    live: Live,  # noqa: F811
) -> None:
    db = make_engine(live.database_url)
    with Session(db) as session:
        flood = session.scalars(select(Case.id)).one()
    db.dispose()
    assign(live, flood)

    phone, worker = phone_sign_in(browser, live)
    worker.goto(f"{live.base}/console/field/cases/{flood}")
    worker.locator("form[data-action=sign] button").tap()
    expect(worker.locator("#case-state")).to_have_attribute("data-state", "HANDLING", timeout=10_000)
    deadline_before = worker.locator("#case-deadline").inner_text()
    before, _ = stored(live, flood)

    form = worker.locator("form[data-action=request_extension]")
    form.locator("input[name=hours]").fill("24")
    form.locator("textarea[name=reason]").fill("水泵配件周五才到")
    form.locator("button").tap()
    waiting = worker.locator(".waiting[data-request=request_extension]")
    expect(waiting).to_contain_text("等待审批", timeout=10_000)
    expect(waiting).to_contain_text("延期 24 小时，理由：水泵配件周五才到")
    expect(worker.locator("form[data-action=request_extension]")).to_have_count(0)  # not asked twice
    fits(worker)
    assert stored(live, flood) == (before, [])  # asking moved nothing

    desk = browser.new_context(**DESKTOP, locale="zh-CN")  # type: ignore[arg-type]
    operator = desk.new_page()
    operator.goto(f"{live.base}/console/login?lang=zh")
    operator.fill("input[name=username]", "op")
    operator.fill("input[name=password]", "op-pass")
    operator.click("button[type=submit]")
    operator.wait_for_url(f"{live.base}/console")
    operator.goto(f"{live.base}/console/cases/{flood}")
    request = operator.locator("#requests .request[data-request=request_extension]")
    expect(request).to_contain_text("李娜")
    expect(request).to_contain_text("延期 24 小时，理由：水泵配件周五才到")
    request.locator("form[data-action=approve-request_extension] input[name=note]").fill("同意，周五前完成")
    with operator.expect_navigation():
        request.locator("form[data-action=approve-request_extension] button").click()
    expect(operator.locator("#requests")).to_have_count(0)
    expect(operator.locator("#timeline")).to_contain_text("批准李娜的延期申请：延期 24 小时")

    after, extends = stored(live, flood)
    assert after > before and len(extends) == 1
    assert (extends[0].data["approved_by"], extends[0].data["requested_by"]) == ("op", "li.na")

    # The phone follows without a reload: the new deadline, the approval, and nothing waiting.
    expect(worker.locator("#case-deadline")).not_to_have_text(deadline_before, timeout=10_000)
    expect(worker.locator("#timeline")).to_contain_text("批准李娜的延期申请：延期 24 小时")
    expect(worker.locator(".waiting")).to_have_count(0)
    fits(worker)
    worker.reload()  # and so it stays
    expect(worker.locator("#case-deadline")).not_to_have_text(deadline_before)
    expect(worker.locator(".waiting")).to_have_count(0)
    # The bell on the phone tells the worker the answer (the in-app notification of the extension).
    worker.locator("#bell summary").tap()
    expect(worker.locator("#bell-list")).to_contain_text("您的延期申请已批准", timeout=10_000)
    desk.close()
    phone.close()
