"""Rosters in and out through the console: a sheet (CSV or XLSX) uploaded, every row previewed with its errors
and nothing written, the confirm writing exactly the rows valid then in one transaction with one audit entry;
junk refused; cards and a team's roster exported and read back; the list's team filter, the player picker's
search, the links between a member and their card; every new page closed to moderators."""

from __future__ import annotations

import csv
import datetime as dt
import html
import io
import re
import zipfile

import aiohttp
import openpyxl
import pytest

from jiandong.services import rosters
from tests.helpers.admin import add_admin, csrf, png, sign_in

HEADER = ["姓名", "球衣号码", "手机", "性别", "生日", "身高", "体重", "位置", "球队", "入队日期"]


@pytest.fixture
async def console(client, sql):
    add_admin(sql, "writer", "editor")
    assert (await sign_in(client, "writer")).status == 302
    return client


def csv_file(rows, header=HEADER, bom=True) -> bytes:
    out = io.StringIO()
    csv.writer(out).writerows([header, *rows])
    return ("\ufeff" if bom else "").encode() + out.getvalue().encode()


def xlsx_file(rows, header=HEADER) -> bytes:
    book = openpyxl.Workbook()
    sheet = book.active
    for row in [header, *rows]:
        sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


async def upload(client, data, name: str = "球员.csv"):
    form = aiohttp.FormData()
    form.add_field("csrf_token", await csrf(client, "/admin/players/import"))
    form.add_field("sheet_file", data, filename=name, content_type="application/octet-stream")
    return await client.post("/admin/players/import", data=form, allow_redirects=False)


async def preview(client, data: bytes, name: str = "球员.csv") -> tuple[str, str]:
    """Upload a sheet: the preview's address and page."""
    resp = await upload(client, data, name)
    assert resp.status == 303, await resp.text()
    where = resp.headers["Location"]
    page = await client.get(where)
    assert page.status == 200
    return where, await page.text()


def row_problems(page: str) -> dict[int, list[str]]:
    """Each previewed row's errors (an empty list: the row can be imported)."""
    found = {}
    for line, cells in re.findall(r'<tr id="row-(\d+)"[^>]*>(.*?)</tr>', page, re.S):
        found[int(line)] = [html.unescape(e) for e in re.findall(r'<span class="error-text">([^<]*)</span>', cells)]
    return found


async def confirm(client, where: str):
    token = await csrf(client, where)
    return await client.post(where, data={"csrf_token": token}, allow_redirects=False)


def counts(sql) -> tuple[int, int, int]:
    return (sql("SELECT count(*) FROM players")[0]["count"], sql("SELECT count(*) FROM team_members")[0]["count"],
            sql("SELECT count(*) FROM audit_log")[0]["count"])


@pytest.fixture
def club(sql):
    """Two teams: 猛龙 with 王五 (number 23) and 飞虎 with 赵六 (phone 13900000006); ids by name."""
    teams = {name: sql("INSERT INTO teams (name) VALUES (%s) RETURNING id", name)[0]["id"] for name in ("猛龙", "飞虎")}
    for name, number, mobile, team in (("王五", "23", "13900000005", "猛龙"), ("赵六", "7", "13900000006", "飞虎")):
        player = sql("INSERT INTO players (cn_name, number, mobile, position) VALUES (%s, %s, %s, '后卫') RETURNING id",
                     name, number, mobile)[0]["id"]
        sql("INSERT INTO team_members (team_id, player_id) VALUES (%s, %s)", teams[team], player)
    return teams


# -- reading --------------------------------------------------------------------------------------

async def test_a_csv_with_a_bom_and_its_columns_in_any_order_is_read(console, sql):
    header = ["手机", "姓名", "备注", "球衣号码", "性别"]
    rows = [["138 0013 8000", "张三", "不导入的列", "9", "男"], ["", "李四", "", "", "女"]]
    for data in (csv_file(rows, header), csv_file(rows, header, bom=False),
                 # Excel on a Chinese Windows saves CSV as GB18030.
                 ("\n".join(",".join(r) for r in [header, *rows]) + "\n").encode("gb18030")):
        _, page = await preview(console, data)
        assert row_problems(page) == {2: [], 3: []}
        assert "可导入 2 行" in page and "138 0013 8000" in page and "不导入的列" not in page
    assert counts(sql) == (0, 0, 0)


async def test_an_xlsx_with_number_and_date_cells_is_read(console, sql, club):
    rows = [[23.0, "飞龙", 13800138000, dt.datetime(2001, 5, 3), "男", 180, 72.5, "中锋", "飞虎", "2024-09-01"]]
    _, page = await preview(console, xlsx_file(rows, ["球衣号码", "姓名", "手机", "生日", "性别", "身高", "体重",
                                                       "位置", "球队", "入队日期"]), "球员.xlsx")
    assert row_problems(page) == {2: []}
    assert "13800138000" in page and "2001-05-03" in page and "可导入 1 行" in page


# -- the preview ----------------------------------------------------------------------------------

async def test_each_kind_of_error_is_found_on_its_own_row(console, sql, club):
    rows = [
        ["张三", "9", "13800000001", "男", "2000-01-02", "181", "75", "前锋", "猛龙", "2024-09-01"],  # 2: good
        ["李四", "10", "12345", "", "", "", "", "", "", ""],  # 3: bad phone
        ["钱七", "11", "", "", "", "", "", "", "雷霆", ""],  # 4: unknown team
        ["孙八", "23", "", "", "", "", "", "", "猛龙", ""],  # 5: 23 is 王五's in 猛龙
        ["周九", "9", "", "", "", "", "", "", "猛龙", ""],  # 6: 9 is row 2's in 猛龙
        ["赵六", "", "13900000006", "", "", "", "", "", "猛龙", ""],  # 7: 赵六 is in 飞虎
        ["", "12", "13800000002", "", "", "", "", "", "", ""],  # 8: no name
        ["吴十", "", "13800000001", "", "", "", "", "", "", ""],  # 9: row 2's phone again
        ["郑一", "1000", "", "不详", "2000-13-01", "", "", "", "", "明天"],  # 10: the cells' own rules
        ["王五", "23", "13900000005", "", "", "", "", "", "猛龙", ""],  # 11: 王五 again in his own team: fine
    ]
    _, page = await preview(console, csv_file(rows))
    found = row_problems(page)
    assert found[2] == [] and found[11] == []
    assert len(found[3]) == 1 and found[3][0].startswith("手机：手机号码格式不正确")
    assert found[4] == ["球队「雷霆」不存在"]
    assert found[5] == ["球衣号码 23 在「猛龙」已被 王五 使用"]
    assert found[6] == ["球衣号码 9 与第 2 行重复（同一球队）"]
    assert found[7] == ["该球员目前在「飞虎」，请先办理离队"]
    assert found[8] == ["姓名：必填"]
    assert found[9] == ["手机号与第 2 行重复"]
    assert found[10][0] == "球衣号码：球衣号码须为 0~999 的数字" and len(found[10]) == 4
    assert any(p.startswith("性别") for p in found[10]) and any(p.startswith("生日") for p in found[10])
    assert "入队日期：须为 YYYY-MM-DD，如 2024-09-01" in found[10]
    assert "可导入 2 行" in page and "8 行有误" in page and "导入 2 行</button>" in page


async def test_the_preview_writes_nothing(console, sql, club):
    before = counts(sql)
    where, _ = await preview(console, csv_file([["张三", "9", "13800000001", "", "", "", "", "", "猛龙", ""]]))
    # Seen again (a reload): still nothing written.
    assert (await console.get(where)).status == 200
    assert counts(sql) == before
    assert sql("SELECT cn_name FROM players WHERE cn_name = '张三'") == []


async def test_the_preview_says_which_rows_update_a_card_and_whose(console, sql, club):
    """A row whose phone a card has updates that card at the confirm: the preview says so, naming it."""
    wang = sql("SELECT id FROM players WHERE cn_name = '王五'")[0]["id"]
    _, page = await preview(console, csv_file([["王小五", "23", "13900000005", "", "", "", "", "", "", ""],
                                               ["张三", "9", "13800000001", "", "", "", "", "", "", ""]]))
    assert f'更新已有球员卡 <a href="/admin/players/{wang}">王五</a>（按手机号）' in page
    assert "可导入：新建球员卡" in page and "（其中 1 行按手机号更新已有球员卡）" in page


# -- the confirm ----------------------------------------------------------------------------------

async def test_the_confirm_writes_exactly_the_valid_rows_with_one_audit_entry(console, sql, club, settings):
    rows = [
        ["张三", "9", "13800000001", "男", "2000-01-02", "181", "75.5", "前锋", "猛龙", "2024-09-01"],
        ["李四", "10", "12345", "", "", "", "", "", "", ""],
        ["无队", "", "", "女", "", "", "", "", "", ""],
        # 王五 matched by phone: his number changes, blank cells keep his card's values.
        ["王五", "32", "13900000005", "", "", "", "", "", "", ""],
        ["孙八", "7", "", "", "", "", "", "", "飞虎", ""],  # 7 is 赵六's
    ]
    where, page = await preview(console, csv_file(rows))
    assert "可导入 3 行" in page
    before = counts(sql)
    resp = await confirm(console, where)
    assert resp.status == 303 and resp.headers["Location"] == "/admin/players/import/result"
    result = await (await console.get(resp.headers["Location"])).text()
    assert re.search(r"<dt>新建球员卡</dt><dd>2</dd>.*<dt>更新球员卡</dt><dd>1</dd>.*<dt>加入球队</dt><dd>1</dd>"
                     r".*<dt>未导入</dt><dd>2 行", result, re.S)
    assert "第 3 行" in result and "第 6 行" in result
    assert counts(sql) == (before[0] + 2, before[1] + 1, before[2] + 1)
    # The join date is the club's day.
    zhang = sql("SELECT p.*, tm.team_id, (tm.joined_at AT TIME ZONE %s)::date AS joined FROM players p"
                " JOIN team_members tm ON tm.player_id = p.id WHERE cn_name = '张三'", settings.timezone)[0]
    assert (zhang["number"], zhang["mobile"], zhang["sex"], zhang["birthday"], zhang["stature"], str(zhang["weight"]),
            zhang["position"], zhang["team_id"], zhang["joined"]) == (
        "9", "13800000001", 1, dt.date(2000, 1, 2), 181, "75.5", "前锋", club["猛龙"], dt.date(2024, 9, 1))
    wang = sql("SELECT number, position FROM players WHERE mobile = '13900000005'")
    assert wang == [{"number": "32", "position": "后卫"}]
    assert sql("SELECT sex FROM players WHERE cn_name = '无队'") == [{"sex": 2}]
    assert sql("SELECT count(*) FROM players WHERE cn_name IN ('李四', '孙八')")[0]["count"] == 0
    entry = sql("SELECT action, admin_name, summary, after FROM audit_log")[0]
    assert (entry["action"], entry["admin_name"]) == ("players.import", "writer")
    assert entry["summary"] == "导入球员卡「球员.csv」"
    assert entry["after"] == {"file": "球员.csv", "rows": 5, "created": 2, "updated": 1, "joined": 1, "skipped": 2}
    # Confirmed once: the same confirm again (a double click, a resend) writes nothing more.
    assert (await confirm(console, where)).status == 404
    assert counts(sql) == (before[0] + 2, before[1] + 1, before[2] + 1)


async def test_a_row_that_became_invalid_after_the_preview_is_not_written(console, sql, club):
    rows = [["张三", "9", "", "", "", "", "", "", "猛龙", ""], ["李四", "10", "", "", "", "", "", "", "猛龙", ""]]
    where, page = await preview(console, csv_file(rows))
    assert "可导入 2 行" in page
    # Meanwhile someone gives number 10 in 猛龙 to 王五.
    sql("UPDATE players SET number = '10' WHERE cn_name = '王五'")
    assert (await confirm(console, where)).status == 303
    result = await (await console.get("/admin/players/import/result")).text()
    assert "球衣号码 10 在「猛龙」已被 王五 使用" in result
    assert [r["cn_name"] for r in sql("SELECT cn_name FROM players ORDER BY id")] == ["王五", "赵六", "张三"]
    assert sql("SELECT after->>'skipped' AS n FROM audit_log")[0]["n"] == "1"


async def test_an_import_is_confirmed_only_by_the_account_that_uploaded_it(console, sql, make_client):
    where, _ = await preview(console, csv_file([["张三", "", "", "", "", "", "", "", "", ""]]))
    add_admin(sql, "other", "editor")
    other = await make_client()
    await sign_in(other, "other")
    assert (await other.get(where)).status == 404
    assert (await confirm(other, where)).status == 404
    assert counts(sql) == (0, 0, 0)
    assert (await confirm(console, where)).status == 303


# -- junk -----------------------------------------------------------------------------------------

@pytest.mark.parametrize(("name", "data", "says"), [
    ("photo.xlsx", png(), "无法识别的文件"),
    # Chosen but empty (an empty file has a name; a file input left empty sends none).
    ("empty.csv", b"", "empty.csv：文件是空的"),
    ("empty.xlsx", b"", "empty.xlsx：文件是空的"),
    ("", b"", "请选择要导入的"),
    ("blank.csv", b"\xef\xbb\xbf\r\n\r\n", "文件是空的"),
    ("no-name.csv", csv_file([["9", "13800000001"]], ["球衣号码", "手机"]), "须有「姓名」列"),
    ("zip.xlsx", b"PK\x03\x04" + b"\x00junk" * 100, "无法识别的 XLSX 文件"),
    ("latin.csv", "姓名\n".encode() + b"\xff\xfe\xfd\x80\n", "无法识别的文件编码"),
    # Written by a program, never opened in Excel: the formula's value was never worked out, so it reads empty.
    ("formula.xlsx", xlsx_file([['=CONCAT("王","强")', "13800000000"]], ["姓名", "手机"]), "公式没有计算结果"),
])
async def test_junk_is_refused_with_a_page_saying_why(console, sql, name, data, says):
    resp = await upload(console, data, name)
    assert resp.status == 400
    body = await resp.text()
    assert says in body and "未导入" in body and 'name="sheet_file"' in body
    assert counts(sql) == (0, 0, 0)


async def test_too_many_rows_or_bytes_are_refused(console, sql):
    resp = await upload(console, csv_file([["张三"]] * 10_001, ["姓名"]))
    assert resp.status == 400 and "一次最多导入 10000 行" in await resp.text()
    resp = await upload(console, io.BytesIO(b"\xe5\xa7\x93\xe5\x90\x8d\n" + b"a" * (2 * 1024 * 1024)))
    assert resp.status == 413 and "文件过大" in await resp.text()


# -- exports --------------------------------------------------------------------------------------

async def test_cards_and_a_roster_export_with_the_import_columns(console, sql, club, settings):
    sql("UPDATE players SET birthday = '1999-02-03', sex = 1, weight = 80.5, stature = 190 WHERE cn_name = '王五'")
    sql("INSERT INTO players (cn_name, number) VALUES ('=SUM(A1)', '5')")
    resp = await console.get("/admin/players/export.csv")
    assert resp.status == 200 and resp.headers["Content-Disposition"].startswith("attachment")
    sheet = list(csv.reader(io.StringIO((await resp.read()).decode("utf-8-sig"))))
    assert sheet[0][:10] == HEADER
    assert sheet[1][:10] == ["王五", "23", "13900000005", "男", "1999-02-03", "190", "80.5", "后卫", "猛龙",
                             dt.datetime.now(settings.tz).date().isoformat()]  # joined today, the club's day
    assert [r[0] for r in sheet[1:]] == ["王五", "赵六", "'=SUM(A1)"]
    # Read back by the import, the guard is taken off: the name is the card's own again.
    assert [row.cells["姓名"] for row in rosters.parse(await (await console.get("/admin/players/export.csv")).read())
            ][-1] == "=SUM(A1)"
    resp = await console.get("/admin/players/export.xlsx")
    book = openpyxl.load_workbook(io.BytesIO(await resp.read()), read_only=True)
    values = list(book.worksheets[0].iter_rows(values_only=True))
    assert list(values[0][:10]) == HEADER and values[1][:3] == ("王五", "23", "13900000005") and len(values) == 4

    resp = await console.get(f"/admin/teams/{club['飞虎']}/roster.csv")
    roster = list(csv.reader(io.StringIO((await resp.read()).decode("utf-8-sig"))))
    assert [r[:3] + r[8:9] for r in roster[1:]] == [["赵六", "7", "13900000006", "飞虎"]]
    resp = await console.get(f"/admin/teams/{club['猛龙']}/roster.xlsx")
    book = openpyxl.load_workbook(io.BytesIO(await resp.read()), read_only=True)
    assert [r[0] for r in book.worksheets[0].iter_rows(values_only=True)] == ["姓名", "王五"]
    assert (await console.get("/admin/teams/999999/roster.csv")).status == 404
    # The template is the header alone.
    resp = await console.get("/admin/players/import/template.csv")
    assert (await resp.read()).decode("utf-8-sig").strip() == ",".join(HEADER)
    resp = await console.get("/admin/players/import/template.xlsx")
    book = openpyxl.load_workbook(io.BytesIO(await resp.read()), read_only=True)
    assert [list(r) for r in book.worksheets[0].iter_rows(values_only=True)] == [HEADER]


# -- the list, the picker, the links ----------------------------------------------------------------

async def test_the_player_list_filters_by_team(console, sql, club):
    sql("INSERT INTO players (cn_name) VALUES ('自由人')")
    names = re.compile(r'<a href="/admin/players/\d+">([^<]+)</a>')
    page = await (await console.get(f"/admin/players?team={club['猛龙']}")).text()
    assert names.findall(page) == ["王五"]
    assert f'<option value="{club["猛龙"]}" selected>猛龙</option>' in page
    assert names.findall(await (await console.get("/admin/players?team=0")).text()) == ["自由人"]
    assert sorted(names.findall(await (await console.get("/admin/players")).text())) == ["王五", "自由人", "赵六"]
    assert sorted(names.findall(await (await console.get("/admin/players?team=abc")).text())) == ["王五", "自由人",
                                                                                                 "赵六"]


async def test_the_player_search_answers_as_staff_type(console, sql, club):
    sql("INSERT INTO players (cn_name, number, status) VALUES ('王小五', '', 0)")
    found = await (await console.get("/admin/players/search", params={"q": "王"})).json()
    wang = sql("SELECT id FROM players WHERE cn_name = '王五'")[0]["id"]
    assert [(r["value"], r["team"]) for r in found] == [(f"王五（23号）#{wang}", "猛龙"),
                                                         (found[1]["value"], "无球队，球员卡已停用")]
    by_number = await (await console.get("/admin/players/search?q=7")).json()
    assert [r["value"].split("（")[0] for r in by_number] == ["赵六"]
    assert await (await console.get("/admin/players/search?q=")).json() == []
    assert await (await console.get("/admin/players/search?q=%25")).json() == []


async def test_a_team_takes_a_player_picked_or_typed(console, sql, club):
    free = sql("INSERT INTO players (cn_name, number) VALUES ('自由人', '99') RETURNING id")[0]["id"]
    sql("INSERT INTO players (cn_name) VALUES ('同名'), ('同名')")
    team = club["飞虎"]
    page = await (await console.get(f"/admin/teams/{team}")).text()
    assert 'list="player-options"' in page and '<datalist id="player-options">' in page and "picker.js" in page

    async def add(player):
        token = await csrf(console, f"/admin/teams/{team}")
        return await console.post(f"/admin/teams/{team}/members", data={
            "csrf_token": token, "player": player, "joined_at": "2024-01-01T10:00"}, allow_redirects=False)

    resp = await add("同名")
    assert resp.status == 303
    assert "找到多个球员" in await (await console.get(resp.headers["Location"])).text()
    assert (await add("自由人")).status == 302
    assert sql("SELECT team_id FROM team_members WHERE player_id = %s", free) == [{"team_id": team}]
    same = sql("SELECT id FROM players WHERE cn_name = '同名' ORDER BY id")[1]["id"]
    assert (await add(f"同名（无号）#{same}")).status == 302
    assert sql("SELECT team_id FROM team_members WHERE player_id = %s", same) == [{"team_id": team}]


async def test_a_member_and_their_card_link_to_each_other(console, sql):
    user = sql("INSERT INTO users (openid, username, mobile) VALUES ('o-1', '会员甲', '13700000001') RETURNING id"
               )[0]["id"]
    page = await (await console.get(f"/admin/members/{user}")).text()
    assert "没有关联的球员卡" in page
    card = sql("INSERT INTO players (user_id, cn_name) VALUES (%s, '甲') RETURNING id", user)[0]["id"]
    page = await (await console.get(f"/admin/members/{user}")).text()
    assert f'<a href="/admin/players/{card}">甲</a>' in page
    page = await (await console.get(f"/admin/players/{card}")).text()
    assert f'<a href="/admin/members/{user}">会员甲' in page


# -- who may --------------------------------------------------------------------------------------

async def test_a_moderator_opens_none_of_the_roster_pages(client, sql, club):
    add_admin(sql, "watcher", "moderator")
    await sign_in(client, "watcher")
    token = "a" * 43
    for path in ("/admin/players/import", "/admin/players/import/template.csv", "/admin/players/import/template.xlsx",
                 f"/admin/players/import/{token}", "/admin/players/import/result", "/admin/players/export.csv",
                 "/admin/players/export.xlsx", "/admin/players/search?q=王", f"/admin/teams/{club['猛龙']}/roster.csv",
                 f"/admin/teams/{club['猛龙']}/roster.xlsx"):
        resp = await client.get(path, allow_redirects=False)
        assert resp.status == 403, path
    for path in ("/admin/players/import", f"/admin/players/import/{token}"):
        resp = await client.post(path, data={"csrf_token": await csrf(client, "/admin/")}, allow_redirects=False)
        assert resp.status == 403, path
    assert counts(sql)[0] == 2


def with_calculated_formula() -> bytes:
    """An XLSX as Excel saves it: the formula cell keeps the value it last calculated."""
    plain = xlsx_file([['=CONCAT("王","强")', "13800000000"]], ["姓名", "手机"])
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(plain)) as source, zipfile.ZipFile(out, "w") as target:
        for item in source.infolist():
            data = source.read(item.filename)
            if item.filename == "xl/worksheets/sheet1.xml":
                assert b"<v />" in data
                data = data.replace(b'<c r="A2">', b'<c r="A2" t="str">').replace(b"<v />", "<v>王强</v>".encode())
            target.writestr(item, data)
    return out.getvalue()


async def test_a_formula_excel_worked_out_is_read_as_its_value(console, sql):
    where, page = await preview(console, with_calculated_formula(), "formula.xlsx")
    assert "王强" in page and "13800000000" in page
