"""Match results and box scores (services/results.py, admin/results.py): entered in the console, seen through the
H5 match detail (`score`, `description`) at once, escaped, audited; the season's statistics and their export."""

from __future__ import annotations

import csv
import io
import json
import re

import aiohttp
import openpyxl
import pytest

from tests.helpers.admin import add_admin, csrf, png, sign_in
from tests.helpers.api import login

STATS = ("minutes", "points", "rebounds", "assists", "steals", "blocks", "turnovers", "fouls")


@pytest.fixture
async def console(client, sql):
    add_admin(sql, "writer", "editor")
    assert (await sign_in(client, "writer")).status == 302
    return client


def _team(sql, name="建东猛龙", players=(("张三", "7"), ("李四", "23"), ("王五", ""))):
    team = sql("INSERT INTO teams (name) VALUES (%s) RETURNING id", name)[0]["id"]
    ids = []
    for cn_name, number in players:
        player = sql("INSERT INTO players (cn_name, number) VALUES (%s, %s) RETURNING id", cn_name, number)[0]["id"]
        sql("INSERT INTO team_members (team_id, player_id, joined_at) VALUES (%s, %s, '2020-01-01')", team, player)
        ids.append(player)
    return team, ids


def _match(sql, title="周六联赛", play_time="2026-05-01 19:30+08", description="<p>战报正文</p>", score="", team=None):
    match = sql("INSERT INTO competitions (title, play_time, description, score, status) VALUES (%s, %s, %s, %s, 1)"
                " RETURNING id", title, play_time, description, score)[0]["id"]
    if team is not None:
        sql("INSERT INTO competition_teams (competition_id, team_id) VALUES (%s, %s)", match, team)
    return match


def _line(player, *values):
    """A player's inputs, in the column order (None: left empty)."""
    return {f"b-{player}-{key}": "" if value is None else str(value) for key, value in zip(STATS, values, strict=True)}


async def save(client, match, fields):
    data = {"csrf_token": await csrf(client, f"/admin/competitions/{match}/result"),
            **{name: str(value) for name, value in fields.items()}}
    return await client.post(f"/admin/competitions/{match}/result", data=data, allow_redirects=False)


async def upload_logo(client, match, data):
    form = aiohttp.FormData()
    form.add_field("csrf_token", await csrf(client, f"/admin/competitions/{match}/result"))
    form.add_field("logo", data, filename="logo.png", content_type="image/png")
    return await client.post(f"/admin/competitions/{match}/result/logo", data=form, allow_redirects=False)


async def detail(client, token, match):
    resp = await client.get(f"/api/v1/competition/{match}", headers={"token": token})
    assert resp.status == 200, await resp.text()
    return await resp.json()


async def test_a_result_and_box_score_make_the_h5_score_and_report(console, sql):
    team, (zhang, li, wang) = _team(sql)
    match = _match(sql, team=team)
    token = await login(console)
    before = await detail(console, token, match)  # cached now: the save must drop it
    assert (before["score"], before["description"]) == ("", "<p>战报正文</p>")

    page = await console.get(f"/admin/competitions/{match}/result")
    body = await page.text()
    assert page.status == 200 and "张三" in body and f'name="b-{zhang}-points"' in body
    resp = await save(console, match, {
        "team_id": team, "opponent_id": "", "new_opponent": "青竹队", "club_score": 88, "opponent_score": 76,
        "p1-club": 20, "p1-opponent": 18, "p2-club": 22, "p2-opponent": 20, "p3-club": 24, "p3-opponent": 18,
        "p4-club": 22, "p4-opponent": 20,
        **_line(zhang, 32, 40, 8, 5, 2, 1, 3, 2), **_line(li, 30, 48, 12, 3, 1, 0, 2, 4),
        **_line(wang, None, None, None, None, None, None, None, None)})
    assert resp.status == 303 and resp.headers["Location"] == f"/admin/competitions/{match}/result"
    shown = await (await console.get(resp.headers["Location"])).text()
    assert "比赛结果已保存" in shown and "warning banner" not in shown

    after = await detail(console, token, match)
    assert after["score"] == "建东猛龙 88 : 76 青竹队"
    report = after["description"]
    assert report.startswith("<p>战报正文</p>")
    assert report.index("<p>战报正文</p>") < report.index("各节比分") < report.index("<table")
    assert "<thead>" in report and "<tbody>" in report
    for header in ("时间", "得分", "篮板", "助攻", "抢断", "盖帽", "失误", "犯规"):
        assert f">{header}</th>" in report
    assert ">张三 #7</td>" in report and ">李四 #23</td>" in report and "王五" not in report  # did not play
    assert ">88</td>" in report and ">合计</th>" in report

    rows = sql("SELECT player_id, stats FROM box_scores WHERE competition_id = %s ORDER BY player_id", match)
    assert [(r["player_id"], r["stats"]["points"]) for r in rows] == [(zhang, 40), (li, 48)]
    saved = sql("SELECT c.team_id, c.club_score, c.opponent_score, c.periods, o.name FROM competitions c"
                " JOIN opponents o ON o.id = c.opponent_id WHERE c.id = %s", match)[0]
    assert saved == {"team_id": team, "club_score": 88, "opponent_score": 76, "name": "青竹队",
                     "periods": [[20, 18], [22, 20], [24, 18], [22, 20]]}
    # The staff's own text is kept as typed: the table is added to the answer, not to the stored text.
    assert sql("SELECT description, score FROM competitions WHERE id = %s", match)[0] == {
        "description": "<p>战报正文</p>", "score": ""}

    entry = sql("SELECT action, target, summary, before, after FROM audit_log WHERE action = 'results.update'")
    assert len(entry) == 1 and entry[0]["target"] == f"competitions:{match}"
    assert entry[0]["after"]["opponent"] == "青竹队" and entry[0]["after"]["club_score"] == 88
    assert entry[0]["after"]["box"][0].startswith("张三 #7：时间 32，得分 40")
    assert "建东猛龙 88 : 76 青竹队" in entry[0]["summary"]

    # The match's list and edit page show the result and lead to it.
    edit = await (await console.get(f"/admin/competitions/{match}")).text()
    assert f"/admin/competitions/{match}/result" in edit and "比分 88 : 76" in edit
    assert "88 : 76" in await (await console.get("/admin/competitions")).text()


async def test_hostile_names_come_out_escaped_in_the_report(console, sql):
    team, (player,) = _team(sql, "<b>队</b>", players=(("<script>alert(1)</script>", "<i>9"),))
    match = _match(sql, team=team)
    # The console refuses markup in a new opponent's name, as the API does in user names ...
    resp = await save(console, match, {"team_id": team, "new_opponent": '"><img src=x onerror=1>',
                                       "club_score": 10, "opponent_score": 8})
    assert resp.status == 400 and '对手名称不能含有 &lt; &gt; &#34; 或控制字符' in await resp.text()
    assert sql("SELECT count(*) AS n FROM opponents")[0]["n"] == 0
    # ... and a name that got in some other way (an old row, the database) still comes out escaped.
    hostile = sql("""INSERT INTO opponents (name) VALUES ('"><img src=x onerror=1>') RETURNING id""")[0]["id"]
    resp = await save(console, match, {"team_id": team, "opponent_id": hostile,
                                       "club_score": 10, "opponent_score": 8, "p1-club": 10, "p1-opponent": 8,
                                       **_line(player, 10, 10, 1, 1, 1, 1, 1, 1)})
    assert resp.status == 303
    answer = await detail(console, await login(console), match)
    report = answer["description"]
    assert "<script>" not in report and "<img" not in report and "<b>" not in report and "<i>" not in report
    assert "&lt;script&gt;alert(1)&lt;/script&gt; #&lt;i&gt;9" in report
    assert "&#34;&gt;&lt;img src=x onerror=1&gt;" in report and "&lt;b&gt;队&lt;/b&gt;" in report
    # `score` is text (the pages print it as text), the names as they are.
    assert answer["score"] == '<b>队</b> 10 : 8 "><img src=x onerror=1>'
    page = await (await console.get(f"/admin/competitions/{match}/result")).text()
    assert "<script>alert(1)" not in page and "&lt;script&gt;" in page


async def test_points_that_do_not_add_up_are_a_warning_and_the_result_is_saved(console, sql):
    team, (zhang, li, _) = _team(sql)
    match = _match(sql, team=team)
    resp = await save(console, match, {"team_id": team, "new_opponent": "青竹队", "club_score": 88,
                                       "opponent_score": 76, **_line(zhang, 30, 40, 0, 0, 0, 0, 0, 0),
                                       **_line(li, 30, 46, 0, 0, 0, 0, 0, 0)})
    assert resp.status == 303
    body = await (await console.get(resp.headers["Location"])).text()
    assert "得分合计 86 与比分 88 不符" in body and "比赛结果已保存" in body
    assert sql("SELECT club_score FROM competitions WHERE id = %s", match)[0]["club_score"] == 88
    assert len(sql("SELECT 1 FROM box_scores WHERE competition_id = %s", match)) == 2


async def test_a_value_out_of_range_is_refused_with_what_was_typed(console, sql):
    team, (zhang, _, _) = _team(sql)
    match = _match(sql, team=team)
    resp = await save(console, match, {"team_id": team, "new_opponent": "青竹队", "club_score": 88,
                                       "opponent_score": 76, **_line(zhang, 30, "四十", 0, 0, 0, 0, 0, 0)})
    assert resp.status == 400
    body = await resp.text()
    assert "未保存" in body and "得分须为 0~200 的整数" in body and 'value="四十"' in body and 'value="青竹队"' in body
    assert sql("SELECT club_score FROM competitions WHERE id = %s", match)[0]["club_score"] is None
    assert sql("SELECT count(*) AS n FROM opponents")[0]["n"] == 0
    assert sql("SELECT count(*) AS n FROM audit_log WHERE action = 'results.update'")[0]["n"] == 0


async def test_a_refused_result_names_every_problem_each_linked_to_its_field(console, sql):
    team, (zhang, li, _) = _team(sql)
    match = _match(sql, team=team)
    resp = await save(console, match, {"team_id": team, "new_opponent": "", "club_score": 88, "opponent_score": "七十",
                                       "p1-club": 20, **_line(zhang, 30, "四十", 0, 0, 0, 0, 0, 0),
                                       **_line(li, 30, 12, -1, 0, 0, 0, 0, 0)})
    assert resp.status == 400
    body = await resp.text()
    problems = re.findall(r'<li><a href="#([^"]+)">([^<]+)</a></li>', body)
    assert [field for field, _ in problems] == [
        "p1-club", f"b-{zhang}-points", f"b-{li}-rebounds", "opponent_score", "opponent_id"], problems
    assert "有 5 处需要修改" in body
    # Each link leads to its input, marked as wrong; the typed values are kept.
    assert all(re.search(rf'id="{field}"[^>]*aria-invalid="true"', body) for field, _ in problems[:4])
    assert 'value="七十"' in body and 'value="四十"' in body
    assert sql("SELECT club_score FROM competitions WHERE id = %s", match)[0]["club_score"] is None


async def test_an_opponent_is_kept_once_and_chosen_again(console, sql):
    team, _ = _team(sql)
    first, second = _match(sql, "第一轮", team=team), _match(sql, "第二轮", team=team)
    resp = await save(console, first, {"team_id": team, "new_opponent": "青竹队", "club_score": 60,
                                       "opponent_score": 50})
    assert resp.status == 303
    assert (await upload_logo(console, first, png())).status == 303
    opponent = sql("SELECT id, name, logo FROM opponents")
    assert len(opponent) == 1 and opponent[0]["logo"].startswith("/media/teams/")
    assert f'src="{opponent[0]["logo"]}"' in await (await console.get(f"/admin/competitions/{first}/result")).text()
    logged = sql("SELECT after FROM audit_log WHERE action = 'results.logo'")
    assert [entry["after"] for entry in logged] == [{"opponent": "青竹队", "logo": opponent[0]["logo"]}]
    # Not an image: refused, the logo stays.
    resp = await upload_logo(console, first, b"not an image")
    assert resp.status == 303
    assert "未上传" in await (await console.get(resp.headers["Location"])).text()
    assert sql("SELECT logo FROM opponents")[0]["logo"] == opponent[0]["logo"]
    page = await (await console.get(f"/admin/competitions/{second}/result")).text()
    assert f'<option value="{opponent[0]["id"]}">青竹队</option>' in page
    resp = await save(console, second, {"team_id": team, "opponent_id": opponent[0]["id"], "club_score": 70,
                                        "opponent_score": 72})
    assert resp.status == 303
    assert sql("SELECT count(*) AS n FROM opponents")[0]["n"] == 1
    assert {r["opponent_id"] for r in sql("SELECT opponent_id FROM competitions")} == {opponent[0]["id"]}


async def test_a_match_without_a_result_keeps_its_free_text(console, sql):
    match = _match(sql, description="<p>旧战报</p>", score="86:79")
    answer = await detail(console, await login(console), match)
    assert (answer["score"], answer["description"]) == ("86:79", "<p>旧战报</p>")


async def test_a_cleared_result_gives_back_the_free_text(console, sql):
    team, (zhang, _, _) = _team(sql)
    match = _match(sql, description="<p>旧战报</p>", score="86:79", team=team)
    token = await login(console)
    assert (await save(console, match, {"team_id": team, "new_opponent": "青竹队", "club_score": 10,
                                        "opponent_score": 8, **_line(zhang, 10, 10, 0, 0, 0, 0, 0, 0)})).status == 303
    assert (await detail(console, token, match))["score"] == "建东猛龙 10 : 8 青竹队"
    page = await (await console.get(f"/admin/competitions/{match}/result")).text()
    assert f"/admin/competitions/{match}/result/clear" in page
    resp = await console.post(f"/admin/competitions/{match}/result/clear", allow_redirects=False,
                              data={"csrf_token": await csrf(console, f"/admin/competitions/{match}/result")})
    assert resp.status == 303
    assert "比赛结果已清除" in await (await console.get(resp.headers["Location"])).text()
    answer = await detail(console, token, match)
    assert (answer["score"], answer["description"]) == ("86:79", "<p>旧战报</p>")
    assert sql("SELECT count(*) AS n FROM box_scores")[0]["n"] == 0
    assert sql("SELECT count(*) AS n FROM opponents")[0]["n"] == 1
    entry = sql("SELECT before, after FROM audit_log WHERE action = 'results.clear'")
    assert len(entry) == 1 and entry[0]["before"]["club_score"] == 10 and entry[0]["after"] is None


async def test_a_moderator_may_not_enter_results_or_see_the_season(client, sql):
    add_admin(sql, "watcher", "moderator")
    assert (await sign_in(client, "watcher")).status == 302
    match = _match(sql)
    for path in (f"/admin/competitions/{match}/result", "/admin/stats", "/admin/stats.csv"):
        assert (await client.get(path, allow_redirects=False)).status == 403, path
    token = await csrf(client, "/admin/")
    resp = await client.post(f"/admin/competitions/{match}/result", data={"csrf_token": token, "club_score": "1"},
                             allow_redirects=False)
    assert resp.status == 403
    assert sql("SELECT club_score FROM competitions WHERE id = %s", match)[0]["club_score"] is None


async def test_the_season_totals_averages_leaders_and_export(console, sql):
    team, (zhang, li, _) = _team(sql)
    first = _match(sql, "第一轮", "2026-03-01 19:30+08", team=team)
    second = _match(sql, "第二轮", "2026-04-01 19:30+08", team=team)
    last_year = _match(sql, "去年", "2025-12-31 20:00+08", team=team)
    for match, club, opponent, zhang_line, li_line in (
            (first, 50, 40, (30, 30, 5, 2, 1, 0, 2, 3), (20, 20, 10, 1, 0, 2, 1, 1)),
            (second, 45, 60, (28, 25, 7, 4, 0, 1, 3, 2), None),
            (last_year, 99, 1, (40, 99, 0, 0, 0, 0, 0, 0), None)):
        fields = {"team_id": team, "new_opponent": "青竹队", "club_score": club, "opponent_score": opponent,
                  **_line(zhang, *zhang_line)}
        if li_line:
            fields.update(_line(li, *li_line))
        assert (await save(console, match, fields)).status == 303

    page = await console.get("/admin/stats?year=2026")
    body = await page.text()
    assert page.status == 200
    # 张三: 2 games, 55 points (27.5 a game); 李四: 1 game, 20 points; the team won one, lost one.
    assert "<td>55 <small class=\"muted\">/ 27.5</small></td>" in body
    assert "<td>20 <small class=\"muted\">/ 20.0</small></td>" in body
    assert "<tr><td>建东猛龙</td><td>2</td><td>1</td><td>1</td><td>0</td><td>95</td><td>100</td><td>47.5</td>" \
           "<td>50.0</td></tr>" in body
    assert "数据王" in body and "张三 <span class=\"muted\">27.5（2 场）</span>" in body

    resp = await console.get("/admin/stats.csv?year=2026")
    assert resp.status == 200 and "attachment" in resp.headers["Content-Disposition"]
    rows = list(csv.reader(io.StringIO((await resp.read()).decode("utf-8-sig"))))
    assert rows[0][:6] == ["球员", "号码", "球队", "场次", "时间", "场均时间"]
    assert [r[:8] for r in rows[1:]] == [["张三", "7", "建东猛龙", "2", "58", "29.0", "55", "27.5"],
                                         ["李四", "23", "建东猛龙", "1", "20", "20.0", "20", "20.0"]]

    resp = await console.get("/admin/stats.xlsx?year=2026")
    sheet = openpyxl.load_workbook(io.BytesIO(await resp.read())).active
    values = [[cell.value for cell in row] for row in sheet.iter_rows()]
    assert values[0][:4] == ["球员", "号码", "球队", "场次"]
    assert values[1][:8] == ["张三", "7", "建东猛龙", 2, 58, 29, 55, 27.5]
    assert values[2][0] == "李四" and len(values) == 3

    last = await (await console.get("/admin/stats?year=2025")).text()
    assert "<td>99 <small class=\"muted\">/ 99.0</small></td>" in last


def test_the_column_set_is_one_table():
    from jiandong.services import box_score
    assert [s.key for s in box_score.COLUMNS] == list(STATS)
    assert json.dumps([s.label for s in box_score.COLUMNS], ensure_ascii=False) == \
        '["时间", "得分", "篮板", "助攻", "抢断", "盖帽", "失误", "犯规"]'
