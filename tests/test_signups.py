"""Sign-ups per match: capacity and deadline through both apply routes, the last place under concurrency, the
console's sheet (list, staff additions and removals with a reason, attendance, CSV / XLSX exports), the
member page's season, and who may do what."""

from __future__ import annotations

import asyncio
import csv
import io
import re

import openpyxl

from jiandong.integrations.wechat import dev_openid
from jiandong.web.openapi import build_spec
from tests.helpers.admin import add_admin, post_form, sign_in
from tests.helpers.api import login

COMMIT = "/api/v1/competition/apply/commit"
ALIAS = "/api/v1/competition/apply"
CANCEL = "/api/v1/competition/apply/cancel"
BEGINS = "/api/v1/competition/begins"


async def member(client, sql, code: str, name: str | None = None, phone: str | None = None) -> tuple[dict, int]:
    """A logged-in user with an active membership: (token header, user id)."""
    token = await login(client, code)
    user_id = sql("SELECT id FROM users WHERE openid = %s", dev_openid(code))[0]["id"]
    sql("UPDATE users SET member_status = 1, member_expire_time = now() + interval '1 year', username = %s,"
        " mobile = %s WHERE id = %s", name or code, phone, user_id)
    return {"token": token}, user_id


def user(sql, name: str, phone: str | None = None, active: bool = True) -> int:
    return sql("INSERT INTO users (openid, username, mobile, member_status, member_expire_time)"
               " VALUES (%s, %s, %s, %s, now() + interval '1 year') RETURNING id",
               f"o-{name}", name, phone, 1 if active else 0)[0]["id"]


def match(sql, title: str = "周末联赛", play_time: str = "now() + interval '7 days'", capacity: int | None = None,
          deadline: str = "NULL") -> int:
    return sql(f"INSERT INTO competitions (title, play_time, capacity, apply_deadline, status)"
               f" VALUES (%s, {play_time}, %s, {deadline}, 1) RETURNING id", title, capacity)[0]["id"]


def sign_up(sql, competition_id: int, user_id: int, when: str = "now()") -> int:
    return sql(f"INSERT INTO competition_applies (competition_id, user_id, created_at) VALUES (%s, %s, {when})"
               " RETURNING id", competition_id, user_id)[0]["id"]


def sheet_rows(sql, competition_id: int) -> list[dict]:
    return sql("SELECT user_id, attended, added_by, note FROM competition_applies WHERE competition_id = %s"
               " ORDER BY id", competition_id)


async def refused(resp, msg: str, url: str) -> None:
    assert resp.status == 400, await resp.text()
    assert await resp.json() == {"msg": msg, "error_code": 10000, "request_url": url}


async def console(make_client, sql, role: str = "editor"):
    client = await make_client()
    add_admin(sql, "boss", role)
    assert (await sign_in(client, "boss")).status == 302
    return client


# -- the H5 API ---------------------------------------------------------------------------------------------


async def test_a_full_match_refuses_through_both_routes(client, sql):
    competition = match(sql, capacity=2)
    for n, url in enumerate((COMMIT, ALIAS)):
        headers, _ = await member(client, sql, f"early-{n}")
        assert (await client.post(url, data={"id": str(competition)}, headers=headers)).status == 200
    for url in (COMMIT, ALIAS):
        headers, late = await member(client, sql, f"late-{url}")
        await refused(await client.post(url, data={"id": str(competition)}, headers=headers), "报名人数已满", url)
        assert late not in [r["user_id"] for r in sheet_rows(sql, competition)]
    assert len(sheet_rows(sql, competition)) == 2


async def test_the_deadline_refuses_through_both_routes_and_cancel_stays_open(client, sql):
    closed = match(sql, deadline="now() - interval '1 minute'")
    open_ = match(sql, "开放赛", deadline="now() + interval '1 day'")
    headers, user_id = await member(client, sql, "player")
    for url in (COMMIT, ALIAS):
        await refused(await client.post(url, data={"id": str(closed)}, headers=headers), "报名已截止", url)
    assert sheet_rows(sql, closed) == []
    assert (await client.post(COMMIT, data={"id": str(open_)}, headers=headers)).status == 200
    # Past the deadline a member may still withdraw, until the match starts.
    sign_up(sql, closed, user_id)
    assert (await client.post(CANCEL, data={"id": str(closed)}, headers=headers)).status == 200
    assert sheet_rows(sql, closed) == []


async def test_the_start_is_checked_before_the_deadline_and_a_duplicate_before_the_capacity(client, sql):
    started = match(sql, play_time="now() - interval '1 hour'", deadline="now() - interval '2 hours'")
    full = match(sql, capacity=1)
    headers, user_id = await member(client, sql, "player")
    await refused(await client.post(COMMIT, data={"id": str(started)}, headers=headers), "赛事已开始，不能报名", COMMIT)
    sign_up(sql, full, user_id)
    resp = await client.post(COMMIT, data={"id": str(full)}, headers=headers)
    assert resp.status == 409 and (await resp.json())["error_code"] == 30007


async def test_fifty_members_at_once_for_ten_places(client, sql):
    competition = match(sql, capacity=10)
    members = [(await member(client, sql, f"rush-{n}"))[0] for n in range(50)]
    responses = await asyncio.gather(*(client.post(COMMIT, data={"id": str(competition)}, headers=headers)
                                       for headers in members))
    bodies = [await r.json() for r in responses]
    assert sorted(r.status for r in responses) == [200] * 10 + [400] * 40
    assert sorted(b["msg"] for b in bodies if b["error_code"]) == ["报名人数已满"] * 40
    assert len(sheet_rows(sql, competition)) == 10


async def test_apply_status_of_a_full_match_is_still_the_readers_own(client, sql):
    competition = match(sql, capacity=1)
    inside, _ = await member(client, sql, "inside")
    outside, _ = await member(client, sql, "outside")
    assert (await client.post(COMMIT, data={"id": str(competition)}, headers=inside)).status == 200
    for headers, status in ((inside, 1), (outside, 0)):
        body = await (await client.get(BEGINS, headers=headers)).json()
        assert [(item["id"], item["apply_status"]) for item in body["data"]] == [(competition, status)]


async def test_the_apply_routes_document_the_refusals(client):
    paths = build_spec(client.app)["paths"]
    for path in (COMMIT, ALIAS):
        text = paths[path]["post"]["description"]
        assert "报名已截止" in text and "报名人数已满" in text and "10000" in text


# -- the console ------------------------------------------------------------------------------------------


async def test_the_match_form_saves_capacity_and_deadline(make_client, sql):
    client = await console(make_client, sql)
    competition = match(sql)
    form = {"title": "周末联赛", "play_time": "2031-05-01T19:30", "capacity": "12",
            "apply_deadline": "2031-05-01T12:00"}
    resp = await post_form(client, f"/admin/competitions/{competition}", form,
                           token_from=f"/admin/competitions/{competition}")
    assert resp.status == 302
    [row] = sql("SELECT capacity, to_char(apply_deadline AT TIME ZONE 'Asia/Shanghai', 'YYYY-MM-DD HH24:MI') d"
                " FROM competitions")
    assert row == {"capacity": 12, "d": "2031-05-01 12:00"}
    page = await (await client.get(f"/admin/competitions/{competition}")).text()
    assert f'href="/admin/competitions/{competition}/signups">报名 0 / 12</a>' in page
    # A deadline after the match is refused, and nothing changes.
    resp = await post_form(client, f"/admin/competitions/{competition}", {**form, "apply_deadline": "2031-05-02T12:00"},
                           token_from=f"/admin/competitions/{competition}")
    assert resp.status == 400 and "报名截止时间须不晚于比赛时间" in await resp.text()
    assert sql("SELECT capacity FROM competitions")[0]["capacity"] == 12


async def test_the_sheet_lists_member_phone_state_team_and_time_with_the_count(make_client, sql):
    client = await console(make_client, sql)
    competition = match(sql, capacity=30)
    team = sql("INSERT INTO teams (name) VALUES ('猛龙队') RETURNING id")[0]["id"]
    ids = [user(sql, f"球员{n:02d}", f"139000000{n:02d}", active=n != 3) for n in range(25)]
    player = sql("INSERT INTO players (user_id, cn_name) VALUES (%s, '球员00') RETURNING id", ids[0])[0]["id"]
    sql("INSERT INTO team_members (team_id, player_id) VALUES (%s, %s)", team, player)
    for n, user_id in enumerate(ids):
        sign_up(sql, competition, user_id, f"'2030-01-01 10:00+08'::timestamptz + interval '{n} minutes'")
    page = await (await client.get(f"/admin/competitions/{competition}/signups")).text()
    assert re.search(r'class="signup-count">25</strong> / 30', page)
    first = page[page.index('id="signup-'):page.index("</tr>", page.index('id="signup-'))]
    assert f'href="/admin/members/{ids[0]}">球员00</a>' in first and "13900000000" in first
    assert "猛龙队" in first and "2030-01-01 10:00" in first and "正常" in first
    assert "非会员" in page  # 球员03's state
    # Twenty a page, in sign-up order; the rest on page 2.
    assert page.count('id="signup-') == 20 and "第 1 / 2 页" in page
    second = await (await client.get(f"/admin/competitions/{competition}/signups?page=2")).text()
    assert second.count('id="signup-') == 5 and "球员24" in second and "球员00" not in second


async def test_staff_add_past_capacity_and_remove_with_a_reason_both_audited(make_client, sql):
    client = await console(make_client, sql)
    competition = match(sql, capacity=1, deadline="now() - interval '1 day'")
    sign_up(sql, competition, user(sql, "先报名", "13900000001"))
    late = user(sql, "补报名", "13900000002")
    by_id = user(sql, "按编号")
    sheet = f"/admin/competitions/{competition}/signups"

    # A phone as staff write it (spaces, dashes, +86), as everywhere else.
    resp = await post_form(client, sheet, {"who": "+86 139-0000-0002", "reason": "电话报名"}, token_from=sheet)
    assert resp.status == 303 and resp.headers["Location"] == sheet
    resp = await post_form(client, sheet, {"who": f"#{by_id}", "reason": "教练推荐"}, token_from=sheet)
    assert resp.status == 303
    admin_id = sql("SELECT id FROM admins")[0]["id"]
    assert sheet_rows(sql, competition)[1:] == [
        {"user_id": late, "attended": None, "added_by": admin_id, "note": "电话报名"},
        {"user_id": by_id, "attended": None, "added_by": admin_id, "note": "教练推荐"}]
    page = await (await client.get(sheet)).text()
    assert "已为 按编号" in page and re.search(r'class="signup-count">3</strong> / 1', page)

    # Refused: no reason, twice the same user, nobody with that number; nothing written.
    for data, says in (({"who": "13900000002", "reason": " "}, "原因必填"),
                       ({"who": str(late), "reason": "再来"}, "已经报名"),
                       ({"who": "13900009999", "reason": "x"}, "没有绑定手机号 13900009999 的用户")):
        resp = await post_form(client, sheet, data, token_from=sheet)
        assert resp.status == 303
        page = await (await client.get(sheet)).text()
        assert says in page
        # What was typed is back in the form, to correct.
        assert f'name="who" required maxlength="20" value="{data["who"]}"' in page, data
    # A name is neither: said so, not "fill in an id".
    assert (await post_form(client, sheet, {"who": "王五", "reason": "x"}, token_from=sheet)).status == 303
    assert "「王五」既不是用户 ID 也不是有效的手机号" in await (await client.get(sheet)).text()
    assert len(sheet_rows(sql, competition)) == 3

    signup = sql("SELECT id FROM competition_applies WHERE user_id = %s", late)[0]["id"]
    resp = await post_form(client, f"{sheet}/{signup}/remove", {"reason": ""}, token_from=sheet)
    assert resp.status == 303 and len(sheet_rows(sql, competition)) == 3
    resp = await post_form(client, f"{sheet}/{signup}/remove", {"reason": "本人取消"}, token_from=sheet)
    assert resp.status == 303
    assert late not in [r["user_id"] for r in sheet_rows(sql, competition)]

    log = sql("SELECT admin_name, action, target, summary, before, after FROM audit_log ORDER BY id")
    assert [(e["action"], e["target"]) for e in log] == [("signups.add", f"competitions:{competition}")] * 2 + [
        ("signups.remove", f"competitions:{competition}")]
    assert log[0]["after"] == {"user_id": late, "username": "补报名", "reason": "电话报名", "count": 2}
    assert log[2]["before"]["user_id"] == late and log[2]["after"] == {"reason": "本人取消"}
    assert "本人取消" in log[2]["summary"] and log[2]["admin_name"] == "boss"


async def test_attendance_per_row_and_the_rest_as_came(make_client, sql):
    client = await console(make_client, sql)
    upcoming = match(sql, "未开赛")
    played = match(sql, "已赛", play_time="now() - interval '2 hours'")
    ids = [user(sql, f"球员{n}") for n in range(4)]
    signups = [sign_up(sql, played, user_id) for user_id in ids]
    early = sign_up(sql, upcoming, ids[0])
    sheet = f"/admin/competitions/{played}/signups"

    # Before the match: nothing to mark.
    resp = await post_form(client, f"/admin/competitions/{upcoming}/signups/{early}/attendance", {"attended": "1"},
                           token_from=sheet)
    assert resp.status == 303
    assert "比赛开始后才能登记到场" in await (await client.get(f"/admin/competitions/{upcoming}/signups")).text()
    assert sheet_rows(sql, upcoming)[0]["attended"] is None

    assert (await post_form(client, f"{sheet}/{signups[0]}/attendance", {"attended": "0"},
                            token_from=sheet)).status == 303
    assert (await post_form(client, f"{sheet}/{signups[1]}/attendance", {"attended": "1"},
                            token_from=sheet)).status == 303
    assert (await post_form(client, f"{sheet}/{signups[1]}/attendance", {"attended": "x"},
                            token_from=sheet)).status == 400
    page = await (await client.get(sheet)).text()
    assert "到场 1，缺席 1，未登记 2" in page
    assert (await post_form(client, f"{sheet}/came", token_from=sheet)).status == 303
    assert [r["attended"] for r in sheet_rows(sql, played)] == [False, True, True, True]
    admin_id = sql("SELECT id FROM admins")[0]["id"]
    assert sql("SELECT DISTINCT marked_by FROM competition_applies WHERE competition_id = %s", played) == [
        {"marked_by": admin_id}]
    log = sql("SELECT action, summary, before, after FROM audit_log ORDER BY id")
    assert [e["action"] for e in log] == ["signups.attendance"] * 3
    assert log[0]["after"] == {"user_id": ids[0], "attended": False} and "球员0：缺席" in log[0]["summary"]
    assert log[2]["after"] == {"attended": True, "count": 2}


async def test_the_sheet_exports_as_csv_and_xlsx(make_client, sql):
    client = await console(make_client, sql)
    competition = match(sql, play_time="now() - interval '1 hour'")
    other = match(sql, "别的比赛")
    team = sql("INSERT INTO teams (name) VALUES ('猛龙队') RETURNING id")[0]["id"]
    people = (("张三", "13900000001"), ("=SUM(A1)", None), ("王五", "13900000003"))
    ids = [user(sql, name, phone) for name, phone in people]
    player = sql("INSERT INTO players (user_id, cn_name) VALUES (%s, '张三') RETURNING id", ids[0])[0]["id"]
    sql("INSERT INTO team_members (team_id, player_id) VALUES (%s, %s)", team, player)
    for n, user_id in enumerate(ids):
        sign_up(sql, competition, user_id, f"'2030-01-01 10:0{n}+08'")
    sign_up(sql, other, ids[2])
    sql("UPDATE competition_applies SET attended = true WHERE user_id = %s AND competition_id = %s", ids[0],
        competition)
    header = ["序号", "用户ID", "姓名", "手机", "会员状态", "球队", "报名时间", "添加人", "原因", "到场"]
    expected = [
        ["1", str(ids[0]), "张三", "13900000001", "正常", "猛龙队", "2030-01-01 10:00:00", "本人报名", "", "到场"],
        ["2", str(ids[1]), "'=SUM(A1)", "", "正常", "", "2030-01-01 10:01:00", "本人报名", "", "未登记"],
        ["3", str(ids[2]), "王五", "13900000003", "正常", "", "2030-01-01 10:02:00", "本人报名", "", "未登记"],
    ]
    resp = await client.get(f"/admin/competitions/{competition}/signups.csv")
    assert resp.status == 200 and resp.content_type == "text/csv"
    assert "attachment" in resp.headers["Content-Disposition"]
    body = (await resp.read()).decode("utf-8")
    assert body.startswith("\ufeff")
    assert list(csv.reader(io.StringIO(body[1:]))) == [header, *expected]

    resp = await client.get(f"/admin/competitions/{competition}/signups.xlsx")
    assert resp.status == 200
    ws = openpyxl.load_workbook(io.BytesIO(await resp.read())).active
    cells = [[("" if v is None else v) for v in row] for row in ws.iter_rows(values_only=True)]
    assert cells[0] == header and len(cells) == 4
    assert [row[2] for row in cells[1:]] == ["张三", "'=SUM(A1)", "王五"]
    assert cells[1][6].strftime("%Y-%m-%d %H:%M") == "2030-01-01 10:00" and cells[1][9] == "到场"
    assert cells[1][1] == ids[0]


async def test_the_member_page_shows_this_seasons_signups_against_attendance(make_client, sql):
    client = await console(make_client, sql)
    player = user(sql, "张三")
    this_year = "date_trunc('year', now()) + interval '{} days'"
    came = match(sql, "首轮", this_year.format(10))
    missed = match(sql, "次轮", this_year.format(20))
    unmarked = match(sql, "三轮", this_year.format(30))
    last_year = match(sql, "去年决赛", "date_trunc('year', now()) - interval '10 days'")
    for competition, attended in ((came, True), (missed, False), (unmarked, None), (last_year, True)):
        sign_up(sql, competition, player)
        sql("UPDATE competition_applies SET attended = %s WHERE competition_id = %s", attended, competition)
    page = await (await client.get(f"/admin/members/{player}")).text()
    assert "本赛季报名 3 场，到场 1 场，缺席 1 场" in page
    season = page[page.index('class="season-line"'):page.index("聊天禁言")]
    assert "首轮" in season and "次轮" in season and "三轮" in season and "去年决赛" not in season
    assert season.count(">到场<") == 1 and season.count(">缺席<") == 1


async def test_a_moderator_may_open_none_of_it(make_client, sql):
    client = await console(make_client, sql, "moderator")
    competition = match(sql)
    signup = sign_up(sql, competition, user(sql, "张三"))
    base = f"/admin/competitions/{competition}/signups"
    for path in (base, f"{base}.csv", f"{base}.xlsx"):
        assert (await client.get(path, allow_redirects=False)).status == 403
    for path in (base, f"{base}/{signup}/remove", f"{base}/{signup}/attendance", f"{base}/came"):
        resp = await post_form(client, path, {"who": "1", "reason": "x", "attended": "1"})
        assert resp.status == 403, path
    assert len(sheet_rows(sql, competition)) == 1 and sql("SELECT * FROM audit_log") == []
