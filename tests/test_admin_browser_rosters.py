"""Importing player cards in a real headless Chromium (as test_admin_browser.py): a 200-row XLSX with 3 bad rows
chosen in the page, its preview naming exactly those 3, the confirm writing the other 197; the import, preview
and result pages fit a phone's width. Screenshots go to tests/artifacts/ for a person to look at."""

from __future__ import annotations

import openpyxl

from tests.helpers.admin import add_admin
from tests.helpers.browser import PHONE, shot, sign_in

DESKTOP = {"width": 1280, "height": 900}
HEADER = ["姓名", "球衣号码", "手机", "性别", "生日", "身高", "体重", "位置", "球队", "入队日期"]


def fits(page, width: int) -> bool:
    """Nothing wider than the screen (a table may scroll inside its own box)."""
    return page.evaluate("document.documentElement.scrollWidth") <= width


def screenshots(page, name: str) -> None:
    for size, suffix in ((DESKTOP, "desktop"), (PHONE, "phone")):
        page.set_viewport_size(size)
        page.reload()
        shot(page, f"rosters-{name}-{suffix}")
        assert fits(page, size["width"]), (name, suffix)
    page.set_viewport_size(DESKTOP)


def test_a_200_row_sheet_with_3_bad_rows_imports_197(page, live_server, sql, tmp_path):
    add_admin(sql)
    teams = {name: sql("INSERT INTO teams (name) VALUES (%s) RETURNING id", name)[0]["id"] for name in ("猛龙", "飞虎")}
    wang = sql("INSERT INTO players (cn_name, number, mobile) VALUES ('王五', '23', '13900000005') RETURNING id"
               )[0]["id"]
    sql("INSERT INTO team_members (team_id, player_id) VALUES (%s, %s)", teams["猛龙"], wang)
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(HEADER)
    for n in range(1, 201):
        team = "猛龙" if n % 2 else "飞虎"
        sheet.append([f"球员{n:03d}", str(100 + n), f"138{n:08d}", "男" if n % 3 else "女", "2001-05-03",
                      170 + n % 30, 65.5, "后卫", team, "2024-09-01"])
    # Three bad rows (sheet rows 12, 52 and 123): a short phone, a team the club does not have, 王五's number.
    sheet.cell(12, 3, "1380000")
    sheet.cell(52, 9, "不存在的队")
    sheet.cell(123, 2, "23")
    sheet.cell(123, 9, "猛龙")
    path = tmp_path / "名单.xlsx"
    book.save(path)

    sign_in(page)
    page.goto("/admin/players")
    page.click("a:has-text('导入')")
    page.wait_for_url("**/admin/players/import")
    screenshots(page, "import")
    page.set_input_files("#sheet_file", str(path))
    page.click("button:has-text('上传并预览')")
    page.wait_for_selector("text=导入预览")
    assert "共 200 行：可导入 197 行，3 行有误" in page.locator(".tally").inner_text()
    bad = page.locator("tr.bad")
    assert [bad.nth(i).get_attribute("id") for i in range(bad.count())] == ["row-12", "row-52", "row-123"]
    assert "手机号码格式不正确" in bad.nth(0).inner_text()
    assert "球队「不存在的队」不存在" in bad.nth(1).inner_text()
    assert "球衣号码 23 在「猛龙」已被 王五 使用" in bad.nth(2).inner_text()
    assert page.locator("tbody tr").count() == 200
    assert sql("SELECT count(*) FROM players")[0]["count"] == 1
    screenshots(page, "preview")

    asked: list[str] = []
    page.on("dialog", lambda dialog: (asked.append(dialog.message), dialog.accept()))
    page.click("button:has-text('导入 197 行')")
    page.wait_for_url("**/admin/players/import/result")
    assert asked == ["确定导入 197 行？"]
    assert sql("SELECT count(*) FROM players")[0]["count"] == 198
    assert sql("SELECT count(*) FROM team_members")[0]["count"] == 198
    assert sql("SELECT count(*) FROM players WHERE mobile = '1380000' OR number = '23'")[0]["count"] == 1
    assert [e["after"]["created"] for e in sql("SELECT after FROM audit_log WHERE action = 'players.import'")] == [197]
    assert "第 12 行" in page.inner_text("main") and "第 123 行" in page.inner_text("main")
    screenshots(page, "result")

    # The imported cards, found by team in the list.
    page.goto(f"/admin/players?team={teams['飞虎']}")
    assert "共 99 条" in page.inner_text("h1")
    screenshots(page, "list-by-team")


def test_a_team_adds_a_player_picked_as_staff_type(page, live_server, sql):
    """The team page's picker: typing fills its list from the search (static/picker.js); a choice joins."""
    add_admin(sql)
    team = sql("INSERT INTO teams (name) VALUES ('飞虎') RETURNING id")[0]["id"]
    free = sql("INSERT INTO players (cn_name, number) VALUES ('自由人甲', '66') RETURNING id")[0]["id"]
    sql("INSERT INTO players (cn_name) VALUES ('别人')")
    sign_in(page)
    page.goto(f"/admin/teams/{team}")
    page.locator("#player").press_sequentially("自由")
    page.wait_for_selector("#player-options option", state="attached")
    options = page.eval_on_selector_all("#player-options option", "os => os.map(o => [o.value, o.label])")
    assert options == [[f"自由人甲（66号）#{free}", "无球队"]]
    page.fill("#player", options[0][0])
    page.click("button:has-text('入队')")
    page.wait_for_selector("text=球员已入队")
    assert sql("SELECT team_id FROM team_members WHERE player_id = %s", free) == [{"team_id": team}]
    screenshots(page, "team-picker")
    # A roster row's leave date is a card's control on a phone: it stays within the screen, not cut at the card.
    page.set_viewport_size(PHONE)
    page.reload()
    overhang = page.evaluate("Math.max(...[...document.querySelectorAll('table.list input')].map(i =>"
                             " i.getBoundingClientRect().right"
                             " - i.closest('.table-wrap').getBoundingClientRect().right))")
    assert overhang <= 0
