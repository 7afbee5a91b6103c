"""A match's sign-up sheet in a real headless Chromium (as test_admin_browser.py): attendance marked from the
page, a removal confirmed with its reason, the export downloaded; the page fits a phone's width.
Screenshots go to tests/artifacts/ for a person to look at."""

from __future__ import annotations

import concurrent.futures
import csv
import io
import json
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from tests.helpers.admin import add_admin
from tests.helpers.browser import PHONE, shot, sign_in, token_of

DESKTOP = {"width": 1280, "height": 900}


def test_attendance_marked_in_the_page_and_the_sheet_downloaded(page, live_server, sql):
    add_admin(sql)
    match = sql("INSERT INTO competitions (title, play_time, capacity) VALUES ('周六联赛第 5 轮', now() - interval"
                " '2 hours', 12) RETURNING id")[0]["id"]
    team = sql("INSERT INTO teams (name) VALUES ('建东猛龙队') RETURNING id")[0]["id"]
    names = ["张三", "李四", "王五丰收长名字的会员", "赵六"]
    for n, name in enumerate(names):
        user_id = sql("INSERT INTO users (openid, username, mobile, member_status, member_expire_time)"
                      " VALUES (%s, %s, %s, 1, now() + interval '1 year') RETURNING id",
                      f"o-browser-{n}", name, f"1390000000{n}")[0]["id"]
        player = sql("INSERT INTO players (user_id, cn_name) VALUES (%s, %s) RETURNING id", user_id, name)[0]["id"]
        sql("INSERT INTO team_members (team_id, player_id) VALUES (%s, %s)", team, player)
        sql("INSERT INTO competition_applies (competition_id, user_id, created_at)"
            " VALUES (%s, %s, now() - interval '3 days' + %s * interval '1 minute')", match, user_id, n)
    sign_in(page)
    asked: list[str] = []
    page.on("dialog", lambda dialog: (asked.append(dialog.message), dialog.accept()))
    page.goto(f"/admin/competitions/{match}")
    page.click("a:has-text('报名 4 / 12')")
    page.wait_for_url(f"**/admin/competitions/{match}/signups")

    rows = page.locator("table.signups tbody tr")
    rows.nth(1).locator("button:has-text('缺席')").click()
    page.wait_for_selector("text=李四：缺席")
    rows.nth(0).locator("button:has-text('到场')").click()
    page.wait_for_selector("text=张三：到场")
    assert "到场 1，缺席 1，未登记 2" in page.locator(".attendance-tally").inner_text()
    rows.nth(3).locator("input[name=reason]").fill("受伤")
    rows.nth(3).locator("button:has-text('移除')").click()
    page.wait_for_selector("text=已移除 赵六")
    assert asked == ["移除 赵六 的报名？原因：受伤"]
    page.click("button:has-text('其余全部登记为到场')")
    page.wait_for_selector("text=其余 1 人已登记为到场")
    assert [r["attended"] for r in sql("SELECT attended FROM competition_applies ORDER BY id")] == [True, False, True]

    with page.expect_download() as info:
        page.click("a:has-text('导出 CSV')")
    download = info.value
    assert download.suggested_filename.startswith(f"报名-{match}-") and download.suggested_filename.endswith(".csv")
    body = Path(download.path()).read_text(encoding="utf-8-sig")
    sheet = list(csv.reader(io.StringIO(body)))
    assert [(r[2], r[5], r[9]) for r in sheet[1:]] == [("张三", "建东猛龙队", "到场"), ("李四", "建东猛龙队", "缺席"),
                                                        ("王五丰收长名字的会员", "建东猛龙队", "到场")]
    with page.expect_download() as info:
        page.click("a:has-text('导出 Excel')")
    assert info.value.suggested_filename.endswith(".xlsx")

    for size, suffix in ((DESKTOP, "desktop"), (PHONE, "phone")):
        page.set_viewport_size(size)
        page.goto(f"/admin/competitions/{match}/signups")
        shot(page, f"signups-sheet-{suffix}")
        assert page.evaluate("document.documentElement.scrollWidth") <= size["width"], suffix
        assert page.evaluate("(() => { const w = document.querySelector('.table-wrap');"
                             " return w.scrollWidth <= w.clientWidth; })()"), suffix


def test_fifty_sign_ups_at_once_for_ten_places_and_the_sheet_shows_ten(page, live_server, sql):
    """50 members press 报名 at once (50 H5 requests in parallel) for a match of 10 places: 10 are taken, 40 are
    told it is full; the sheet in the console shows exactly those 10, "10 / 10"."""
    add_admin(sql)
    match = sql("INSERT INTO competitions (title, play_time, capacity, status) VALUES ('周日联赛决赛',"
                " now() + interval '3 days', 10, 1) RETURNING id")[0]["id"]
    tokens = [token_of(live_server, f"race-{n}") for n in range(50)]
    sql("UPDATE users SET member_status = 1, member_expire_time = now() + interval '1 year' WHERE username LIKE %s",
        "dev-race-%")

    def sign_up(token: str) -> tuple[int, int]:
        request = urllib.request.Request(live_server + "/api/v1/competition/apply/commit",
                                         data=urllib.parse.urlencode({"id": match}).encode(), method="POST",
                                         headers={"token": token})
        try:
            with urllib.request.urlopen(request) as resp:
                return resp.status, json.loads(resp.read()).get("error_code", 0)
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())["error_code"]

    with concurrent.futures.ThreadPoolExecutor(50) as pool:
        answers = list(pool.map(sign_up, tokens))
    assert sorted(answers).count((200, 0)) == 10 and answers.count((400, 10000)) == 40, answers
    taken = sql("SELECT count(*) FROM competition_applies WHERE competition_id = %s", match)[0]["count"]
    assert taken == 10
    sign_in(page)
    for size, suffix in ((DESKTOP, "desktop"), (PHONE, "phone")):
        page.set_viewport_size(size)
        page.goto(f"/admin/competitions/{match}/signups")
        assert '<strong class="signup-count">10</strong> / 10' in page.content()
        assert page.locator("table.signups tbody tr").count() == 10
        shot(page, f"signups-full-{suffix}")
        assert page.evaluate("document.documentElement.scrollWidth") <= size["width"]
