"""A match's result and box score entered in a real headless Chromium (as test_admin_browser.py), then read
through the H5 match detail and its report rendered as a phone shows it; the season's statistics page. The
pages fit a phone's width. Screenshots go to tests/artifacts/ for a person to look at."""

from __future__ import annotations

import json
import urllib.request

from tests.helpers.admin import add_admin
from tests.helpers.browser import PHONE, shot, sign_in, token_of

DESKTOP = {"width": 1280, "height": 900}
# As the player-data page inserts `description`: into a narrow column, as HTML.
H5_PAGE = """<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body {{ margin: 0; font: 15px/1.6 "Noto Sans CJK SC", sans-serif; background: #f5f5f5; }}
.report {{ background: #fff; margin: 10px; padding: 12px; border-radius: 8px; }}
h1 {{ font-size: 17px; margin: 0 0 6px; }} .score {{ font-size: 20px; font-weight: 700; color: #c8283a; }}</style>
</head><body><div class="report"><h1>{title}</h1><p class="score" id="score"></p><div id="description"></div></div>
</body></html>"""
PLAYERS = [("张三", "7", "40", "8"), ("李四", "23", "30", "12"), ("王五丰收长名字的球员", "11", "16", "3"),
           ("赵六", "5", "", "")]


def _fits(page, width: int, selector: str | None = None) -> None:
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    if selector:
        assert page.evaluate(f"(() => {{ const w = document.querySelector('{selector}');"
                             " return w.scrollWidth <= w.clientWidth || getComputedStyle(w).overflowX === 'auto'; })()")


def test_a_box_score_entered_in_the_page_shows_in_the_h5_report(page, live_server, sql):
    add_admin(sql)
    team = sql("INSERT INTO teams (name) VALUES ('建东猛龙') RETURNING id")[0]["id"]
    match = sql("INSERT INTO competitions (title, play_time, description, status) VALUES ('周六联赛第 5 轮',"
                " now() - interval '2 hours', '<p>猛龙主场迎战青竹队，四节均领先。</p>', 1) RETURNING id")[0]["id"]
    sql("INSERT INTO competition_teams (competition_id, team_id) VALUES (%s, %s)", match, team)
    ids = {}
    for name, number, _, _ in PLAYERS:
        ids[name] = sql("INSERT INTO players (cn_name, number) VALUES (%s, %s) RETURNING id", name, number)[0]["id"]
        sql("INSERT INTO team_members (team_id, player_id, joined_at) VALUES (%s, %s, now() - interval '1 year')",
            team, ids[name])

    sign_in(page)
    page.goto(f"/admin/competitions/{match}")
    page.click("a:has-text('录入比赛结果与技术统计')")
    page.wait_for_url(f"**/admin/competitions/{match}/result")
    assert page.locator("#team_id").input_value() == str(team)
    page.fill("#new_opponent", "青竹队")
    page.fill("#club_score", "88")
    page.fill("#opponent_score", "76")
    for n, (club, opponent) in enumerate([(20, 18), (22, 20), (24, 18), (22, 20)], 1):
        page.fill(f"#p{n}-club", str(club))
        page.fill(f"#p{n}-opponent", str(opponent))
    for name, _, points, rebounds in PLAYERS:
        if points:
            page.fill(f"#b-{ids[name]}-minutes", "30")
            page.fill(f"#b-{ids[name]}-points", points)
            page.fill(f"#b-{ids[name]}-rebounds", rebounds)
    page.click("button:has-text('保存比赛结果')")
    page.wait_for_selector("text=比赛结果已保存")
    # 40 + 30 + 16 = 86 of 88: saved, with the warning.
    assert "得分合计 86 与比分 88 不符" in page.locator(".warning.banner").inner_text()
    page.fill(f"#b-{ids['王五丰收长名字的球员']}-points", "18")
    page.click("button:has-text('保存比赛结果')")
    page.wait_for_selector("text=比赛结果已保存")
    assert page.locator(".warning.banner").count() == 0

    for size, suffix in ((DESKTOP, "desktop"), (PHONE, "phone")):
        page.set_viewport_size(size)
        page.goto(f"/admin/competitions/{match}/result")
        shot(page, f"results-entry-{suffix}")
        _fits(page, size["width"], "table.box")
        page.goto("/admin/stats")
        shot(page, f"results-season-{suffix}")
        _fits(page, size["width"], "table.players")
    assert "建东猛龙" in page.locator("table.teams").inner_text()

    request = urllib.request.Request(f"{live_server}/api/v1/competition/{match}",
                                     headers={"token": token_of(live_server)})
    answer = json.loads(urllib.request.urlopen(request).read())
    assert answer["score"] == "建东猛龙 88 : 76 青竹队"
    assert answer["description"].startswith("<p>猛龙主场迎战青竹队，四节均领先。</p>")

    page.set_viewport_size(PHONE)
    # A page of its own origin, as the H5 app's: the console's Content-Security-Policy is not the pages'.
    page.goto("about:blank")
    page.set_content(H5_PAGE.format(title="周六联赛第 5 轮"))
    page.evaluate("([score, html]) => { document.getElementById('score').textContent = score;"
                  " document.getElementById('description').innerHTML = html; }",
                  [answer["score"], answer["description"]])
    shot(page, "results-h5-report-phone")
    rows = page.locator("#description table").nth(1).locator("tbody tr")
    assert rows.count() == 4  # three players and the totals
    assert rows.nth(0).locator("td").nth(0).inner_text() == "张三 #7"
    assert rows.nth(3).inner_text().split() == ["合计", "90", "88", "23", "0", "0", "0", "0", "0"]
    _fits(page, PHONE["width"], "#description .box-score")
