"""The console's records in a real headless Chromium (as test_admin_browser.py): a refund after a partial one
starts from an empty amount and its confirmation states the amount; a refusal is a red alert.
Screenshots go to tests/artifacts/ for a person to look at."""

from __future__ import annotations

from tests.helpers.admin import add_admin
from tests.helpers.browser import PHONE, paid_order, shot, sign_in


def test_a_second_refund_is_not_prefilled_and_its_confirmation_states_the_amount(page, live_server, sql):
    add_admin(sql)
    order = paid_order(live_server, sql)
    sign_in(page)
    asked: list[str] = []
    # The first refund is confirmed, the second one's question is read and declined.
    page.on("dialog", lambda dialog: (asked.append(dialog.message),
                                      dialog.accept() if len(asked) == 1 else dialog.dismiss()))
    page.goto("/admin/orders")
    page.click(f"a:has-text('{order['order_no']}')")
    page.fill("#amount", "50.00")
    page.fill("form.refund-form #reason", "场地维修，部分退款")
    page.click("button:has-text('退款')")
    page.wait_for_selector("text=（50.00 元）：已退款")
    assert page.input_value("#amount") == ""
    page.fill("#amount", "20.00")
    page.fill("form.refund-form #reason", "补差")
    page.click("button:has-text('退款')")
    assert asked[-1] == "确定退款 20.00 元？原因：补差"
    shot(page, "records-refund-form")
    page.set_viewport_size(PHONE)
    shot(page, "records-refund-form-phone")
    assert sql("SELECT count(*) FROM refunds")[0]["count"] == 1


def test_a_refused_delete_is_a_red_alert(page, live_server, sql):
    add_admin(sql)
    match = sql("INSERT INTO competitions (title, play_time) VALUES ('周六联赛第 5 轮', now() + interval '2 days')"
                " RETURNING id")[0]["id"]
    sql("INSERT INTO videos (competition_id, title) VALUES (%s, 'v')", match)
    sign_in(page)
    page.on("dialog", lambda dialog: dialog.accept())
    page.goto(f"/admin/competitions/{match}")
    page.click("form[action$='/delete'] button")
    alert = page.locator("[role=alert]")
    assert "不能删除" in alert.inner_text() and "请先处理" in alert.inner_text()
    assert alert.evaluate("el => getComputedStyle(el).color") == "rgb(185, 28, 28)"
    assert page.locator("p.flash").count() == 0
    shot(page, "records-refusal")
    page.set_viewport_size(PHONE)
    shot(page, "records-refusal-phone")
