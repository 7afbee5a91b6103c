"""Notices in a real headless Chromium (as test_admin_browser.py): a kind's settings saved and a refused mapping
shown red, a staff notice previewed then sent with its progress, a member's notices; each page fits a phone.
Screenshots go to tests/artifacts/ for a person to look at."""

from __future__ import annotations

from tests.helpers.admin import add_admin
from tests.helpers.browser import PHONE, shot, sign_in

DESKTOP = {"width": 1280, "height": 900}


def fits(page, size: dict, name: str) -> None:
    page.set_viewport_size(size)
    shot(page, name)
    assert page.evaluate("document.documentElement.scrollWidth") <= size["width"], name


def test_notice_settings_a_staff_notice_and_a_members_notices(page, live_server, sql):
    add_admin(sql, "notices-boss")
    sign_in(page, "notices-boss")
    page.goto("/admin/notices")
    page.click("a:has-text('通知设置')")
    page.wait_for_url("**/admin/notices/settings")
    card = page.locator("#kind-signup_confirmed")
    card.locator("input[name=template_id]").fill("Fe8cdGx0NLb-t1-signup")
    card.locator("textarea[name=fields]").fill("thing1=match\ntime2=start\nphrase3=venue")
    card.locator("button:has-text('保存')").click()
    page.wait_for_selector("text=未保存：第 3 行：phrase3 不能填「venue」")
    assert page.locator("#kind-signup_confirmed textarea[name=fields]").input_value().endswith("phrase3=venue")
    fits(page, DESKTOP, "notices-settings-refused-desktop")
    card = page.locator("#kind-signup_confirmed")
    card.locator("textarea[name=fields]").fill("thing1=match\ntime2=start\nthing3=venue\nphrase4=status")
    card.locator("input[name=sms_template_code]").fill("SMS_480012345")
    card.locator("button:has-text('保存')").click()
    page.wait_for_selector("text=「报名成功」已保存")
    assert sql("SELECT template_id, sms_template_code FROM notice_kinds WHERE kind = 'signup_confirmed'") == [
        {"template_id": "Fe8cdGx0NLb-t1-signup", "sms_template_code": "SMS_480012345"}]
    fits(page, DESKTOP, "notices-settings-desktop")
    fits(page, PHONE, "notices-settings-phone")
    page.set_viewport_size(DESKTOP)

    team = sql("INSERT INTO teams (name) VALUES ('通知测试队') RETURNING id")[0]["id"]
    users = []
    for n in range(25):
        user_id = sql("INSERT INTO users (openid, username, mobile, member_status, member_expire_time)"
                      " VALUES (%s, %s, %s, 1, now() + interval '1 year') RETURNING id",
                      f"o-notice-{n}", f"球员{n + 1:02d}", f"1370000{n:04d}")[0]["id"]
        player = sql("INSERT INTO players (user_id, cn_name) VALUES (%s, %s) RETURNING id", user_id, f"球员{n + 1:02d}")
        sql("INSERT INTO team_members (team_id, player_id) VALUES (%s, %s)", team, player[0]["id"])
        users.append(user_id)
    page.goto("/admin/notices/new")
    page.select_option("#audience", "team")
    assert page.locator("#match").is_hidden() and page.locator("#team").is_visible()
    page.select_option("#team", str(team))
    page.fill("#title", "周六训练改到室内馆")
    page.fill("#content", "因天气原因，周六 9:00 训练改到体育中心室内馆，请带室内鞋")
    fits(page, DESKTOP, "notices-new-desktop")
    page.set_viewport_size(DESKTOP)
    page.click("button:has-text('预览收件人')")
    page.wait_for_selector("text=确认发送给 25 人")
    assert "共 25 人" in page.locator("main").inner_text()
    fits(page, DESKTOP, "notices-preview-desktop")
    fits(page, PHONE, "notices-preview-phone")
    page.set_viewport_size(DESKTOP)
    page.click("button:has-text('确认发送给 25 人')")
    page.wait_for_url("**/admin/notices/campaigns/*")
    page.wait_for_selector("text=已开始发送")
    fits(page, DESKTOP, "notices-progress-desktop")
    # The page refreshes itself while the job sends (no AppID here: they are written to the log).
    page.wait_for_selector("text=已完成：25 / 25", timeout=30_000)
    fits(page, DESKTOP, "notices-done-desktop")
    fits(page, PHONE, "notices-done-phone")
    page.set_viewport_size(DESKTOP)

    # A member's page: what they were sent, by which channel, and why one failed.
    sql("INSERT INTO notices (kind, user_id, event_key, data, state, channel, text, error, sent_at) VALUES"
        " ('signup_confirmed', %s, 'browser:1', '{}', 'sent', 'wechat', '球员01，你已报名「秋季联赛第 3 轮」，"
        "2026年12月12日 15:00，体育中心', '', now()),"
        " ('payment_received', %s, 'browser:2', '{}', 'sms', 'sms',"
        " '已收到199.00元（年度会员），会员有效期至2027年12月6日',"
        " '公众号：会员未关注公众号（43004）', now()),"
        " ('match_reminder', %s, 'browser:3', '{}', 'failed', 'wechat',"
        " '你报名的「秋季联赛第 3 轮」将于2026年12月12日 15:00开始',"
        " '微信拒绝：40037 invalid template_id', NULL)", *[users[0]] * 3)
    page.goto(f"/admin/members/{users[0]}")
    notices = page.locator("#notices").inner_text()
    for text in ("俱乐部通知", "周六训练改到室内馆", "已发送（短信）", "43004", "失败", "40037"):
        assert text in notices, text
    page.locator("#notices").scroll_into_view_if_needed()
    fits(page, DESKTOP, "notices-member-desktop")
    fits(page, PHONE, "notices-member-phone")
    page.set_viewport_size(DESKTOP)
    page.goto("/admin/notices")
    overview = page.locator("main").inner_text()
    assert "周六训练改到室内馆" in overview and "未配置公众号 AppID" in overview
    fits(page, DESKTOP, "notices-overview-desktop")
    fits(page, PHONE, "notices-overview-phone")
