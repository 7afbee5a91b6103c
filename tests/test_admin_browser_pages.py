"""Console pages at phone width in a real headless Chromium (as test_admin_browser.py): what staff use from a
phone fits the screen. Screenshots go to tests/artifacts/ for a person to look at."""

from __future__ import annotations

from tests.helpers.admin import add_admin
from tests.helpers.browser import shot, sign_in

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}


def test_chat_moderation_fits_a_phone(page, live_server, sql):
    add_admin(sql, "mod", "moderator")
    sql("INSERT INTO lives (id, title, stream_name, live_status)"
        " VALUES (41, '决赛：建东猛龙 vs 城南勇士', 'final41', 1)")
    uid = sql("INSERT INTO users (openid, username) VALUES ('o-fan', '一位很热情的球迷朋友') RETURNING id")[0]["id"]
    for content in ("加油建东！今天一定要赢下这场比赛", "裁判是个大傻瓜", "好球"):
        sql("INSERT INTO chat_messages (room_id, user_id, uuid, content, user_info, msg_time)"
            " VALUES (41, %s, '000000000000-1', %s, '{\"username\": \"一位很热情的球迷朋友\"}', now())", uid, content)
    sign_in(page, "mod")
    page.set_viewport_size(DESKTOP)
    page.goto("/admin/chat/41")
    page.wait_for_selector("#messages li.message >> text=裁判是个大傻瓜")
    shot(page, "pages-chat-desktop")
    page.set_viewport_size(PHONE)
    page.goto("/admin/chat/41")
    page.wait_for_selector("#messages li.message >> text=裁判是个大傻瓜")
    shot(page, "pages-chat-phone")
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    body = page.locator("#messages li.message .body").first.bounding_box()
    assert body["width"] >= 200, body
    for button in page.locator("#messages li.message a.button, #messages li.message button").all():
        box = button.bounding_box()
        assert box["x"] + box["width"] <= PHONE["width"], box


def test_short_labels_stay_on_one_line_and_thumbnails_are_whole(page, live_server, sql):
    add_admin(sql, "boss", "owner")
    sign_in(page)
    page.set_viewport_size(DESKTOP)
    page.goto("/admin/orders")
    shot(page, "pages-orders-desktop")
    for head in page.locator("table.list th").all():
        box = head.bounding_box()
        # One line of a 1rem heading with its padding is well under 60 px; a wrapped one is taller.
        assert box["height"] < 60, (head.inner_text(), box)
    fit = page.evaluate("""() => { const i = document.createElement('img'); i.className = 'thumb';
        document.body.append(i); return getComputedStyle(i).objectFit; }""")
    assert fit == "contain"
    page.set_viewport_size(PHONE)
    page.goto("/admin/orders")
    shot(page, "pages-orders-phone")


def test_the_dashboard_tells_matches_apart_and_links_to_its_lists(page, live_server, sql):
    add_admin(sql, "boss", "owner")
    for n in ("第三轮", "第四轮"):
        sql("INSERT INTO competitions (title, play_time) VALUES (%s, now() + interval '3 days')",
            f"青竹篮球俱乐部 对 猛龙篮球俱乐部 城市联赛常规赛 {n}")
    sign_in(page)
    for size, name in ((DESKTOP, "pages-dashboard-desktop"), (PHONE, "pages-dashboard-phone")):
        page.set_viewport_size(size)
        page.goto("/admin/dashboard")
        shot(page, name)
        # What is drawn (the tspans), not the tooltip.
        names = page.locator("svg a text").evaluate_all(
            "els => els.map(e => [...e.querySelectorAll('tspan')].map(t => t.textContent).join(''))")
        assert len(names) == 2 and names[0] != names[1] and names[0].endswith("第三轮"), names
        assert page.evaluate("document.documentElement.scrollWidth") <= size["width"]
    page.locator("svg a").first.click()
    page.wait_for_url("**/admin/competitions/*")
    page.goto("/admin/dashboard")
    page.locator("a.figure", has_text="有效会员").click()
    page.wait_for_url("**/admin/members?status=1")
