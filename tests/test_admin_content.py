"""Console content sections: each kind created, edited, published and deleted in the console, and seen
through the H5 API at once (cache invalidation); validation errors shown with the values kept."""

from __future__ import annotations

import io
import re

import aiohttp
import pytest
from PIL import Image

from tests.helpers.admin import add_admin, csrf, png, sign_in
from tests.helpers.api import login

VIDEO_HEAD = b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2" + b"\x00" * 200


@pytest.fixture
async def console(client, sql):
    add_admin(sql, "writer", "editor")
    assert (await sign_in(client, "writer")).status == 302
    return client


async def submit(client, path, fields, files=None, token_from="/admin/"):
    form = aiohttp.FormData()
    form.add_field("csrf_token", await csrf(client, token_from))
    for name, value in fields.items():
        for item in value if isinstance(value, list) else [value]:
            form.add_field(name, str(item))
    for name, (filename, data) in (files or {}).items():
        form.add_field(name, data, filename=filename, content_type="application/octet-stream")
    return await client.post(path, data=form, allow_redirects=False)


async def h5(client, path, token, **data):
    resp = await client.post(path, data=data, headers={"token": token})
    return resp.status, await resp.json()


# -- matches ---------------------------------------------------------------------------------------

async def test_a_match_form_with_an_error_keeps_what_was_typed(console, sql):
    resp = await submit(console, "/admin/competitions/new", {"title": "", "summary": "保留的简介",
                                                             "play_time": "2030-05-01T19:30"})
    assert resp.status == 400
    body = await resp.text()
    assert "必填" in body and "保留的简介" in body and 'value="2030-05-01T19:30"' in body


@pytest.fixture
async def match(console, sql):
    """A match made in the console with two teams and a cover (a draft): its id, its row, the teams, and a
    token of the H5 app."""
    token = await login(console)
    team_a = sql("INSERT INTO teams (name) VALUES ('猛龙') RETURNING id")[0]["id"]
    team_b = sql("INSERT INTO teams (name) VALUES ('飞虎') RETURNING id")[0]["id"]
    resp = await submit(console, "/admin/competitions/new", {
        "title": "决赛：猛龙 vs 飞虎", "play_time": "2030-05-01T19:30", "team_ids": [team_a, team_b],
        "description": '<p onclick="x()">精彩<script>alert(1)</script></p>', "is_hot": "y", "score": ""},
        files={"cover": ("cover.png", png())})
    assert resp.status == 302, await resp.text()
    match_id = int(resp.headers["Location"].rsplit("/", 1)[1])
    row = sql("SELECT * FROM competitions WHERE id = %s", match_id)[0]
    return {"id": match_id, "row": row, "teams": (team_a, team_b), "token": token}


async def test_a_new_match_keeps_clean_html_and_its_teams(match, sql):
    row = match["row"]
    assert row["status"] == 0 and row["description"] == "<p>精彩</p>" and row["is_hot"] == 1
    assert sorted(r["team_id"] for r in sql("SELECT team_id FROM competition_teams")) == list(match["teams"])


async def test_a_match_cover_is_stored_as_a_path_here_and_answered_absolute(console, match):
    # Stored as a path on this site; the H5 answers make it absolute.
    row = match["row"]
    assert row["main_img_url"].startswith("/media/competitions/")
    assert (await submit(console, f"/admin/competitions/{match['id']}/on", {})).status == 302
    resp = await console.get(f"/api/v1/competition/{match['id']}", headers={"token": match["token"]})
    detail = await resp.json()
    assert detail["main_img_url"] == str(console.make_url(row["main_img_url"]))
    image = await console.get(row["main_img_url"])
    assert image.status == 200


async def test_a_draft_match_is_public_once_published(console, match):
    # A draft is not public.
    token, match_id = match["token"], match["id"]
    assert (await console.get(f"/api/v1/competition/{match_id}", headers={"token": token})).status == 404
    assert (await submit(console, f"/admin/competitions/{match_id}/on", {})).status == 302
    resp = await console.get(f"/api/v1/competition/{match_id}", headers={"token": token})
    detail = await resp.json()
    assert detail["title"] == "决赛：猛龙 vs 飞虎" and detail["play_time"] == "2030-05-01 19:30:00"


async def test_a_match_edit_shows_at_once(console, match):
    # An edit shows at once (the cached detail is dropped).
    token, match_id, (team_a, _) = match["token"], match["id"], match["teams"]
    assert (await submit(console, f"/admin/competitions/{match_id}/on", {})).status == 302
    assert (await console.get(f"/api/v1/competition/{match_id}", headers={"token": token})).status == 200
    resp = await submit(console, f"/admin/competitions/{match_id}", {
        "title": "决赛（改期）", "play_time": "2030-05-02T19:30", "team_ids": [team_a], "score": "88:80"})
    assert resp.status == 302
    detail = await (await console.get(f"/api/v1/competition/{match_id}", headers={"token": token})).json()
    assert detail["title"] == "决赛（改期）" and detail["score"] == "88:80" and detail["main_img_url"]
    assert (await (await console.get(f"/api/v1/team/{team_a}/competitions", headers={"token": token})).json()
            )[0]["id"] == match_id


async def test_a_match_a_video_refers_to_is_not_deleted(console, match, sql):
    # Referred to by a video: not deleted, and the page says why.
    match_id = match["id"]
    sql("INSERT INTO videos (competition_id, title) VALUES (%s, 'v')", match_id)
    resp = await submit(console, f"/admin/competitions/{match_id}/delete", {})
    assert resp.status == 302
    page = await (await console.get(resp.headers["Location"])).text()
    assert "不能删除" in page and "1 个视频" in page
    assert sql("SELECT count(*) FROM competitions")[0]["count"] == 1
    sql("DELETE FROM videos")
    assert (await submit(console, f"/admin/competitions/{match_id}/delete", {})).status == 302
    assert sql("SELECT count(*) FROM competitions")[0]["count"] == 0


async def test_the_match_list_searches_and_sorts(console, match):
    resp = await console.get("/admin/competitions?q=nothing&sort=title&desc=0")
    assert resp.status == 200 and "没有内容" in await resp.text()


async def test_rescheduling_a_match_moves_the_play_time_of_its_lives_and_videos(console, sql):
    """Lives and videos answer their match's play_time: a change in the console shows in every cached list."""
    token = await login(console)
    match_id = sql("INSERT INTO competitions (title, play_time, status) VALUES ('决赛', '2030-05-01 19:30+08', 1)"
                   " RETURNING id")[0]["id"]
    sql("INSERT INTO lives (title, stream_name, live_status, competition_id) VALUES ('决赛直播', 's1', 1, %s)",
        match_id)
    sql("INSERT INTO videos (title, competition_id) VALUES ('决赛回放', %s)", match_id)
    paths = ("/api/v1/competition/live", "/api/v1/competition/video", "/api/v1/competition/play?search=决赛")

    async def play_times() -> list[str]:
        return [item["play_time"] for path in paths for item in (await h5(console, path, token))[1]["data"]]

    assert await play_times() == ["2030-05-01 19:30:00"] * 4
    resp = await submit(console, f"/admin/competitions/{match_id}", {"title": "决赛", "play_time": "2030-05-02T20:00"})
    assert resp.status == 302, await resp.text()
    assert await play_times() == ["2030-05-02 20:00:00"] * 4


async def test_bad_cover_refused(console, sql):
    resp = await submit(console, "/admin/competitions/new", {"title": "x", "play_time": "2030-01-01T10:00"},
                        files={"cover": ("cover.png", b"<svg onload=alert(1)>")})
    assert resp.status == 400 and "图片无法识别" in await resp.text()
    assert sql("SELECT count(*) FROM competitions")[0]["count"] == 0


# -- teams -----------------------------------------------------------------------------------------

@pytest.fixture
async def team(console):
    """A team made in the console, with a logo: its id."""
    resp = await submit(console, "/admin/teams/new", {"name": "猛龙", "sort": "1"}, {"logo_file": ("l.png", png())})
    assert resp.status == 302
    return int(resp.headers["Location"].rsplit("/", 1)[1])


async def join_team(console, sql, team_id: int) -> None:
    """The first user's player card, made a member of the team in the console."""
    player = sql("INSERT INTO players (cn_name, user_id) SELECT '林', id FROM users RETURNING id")[0]["id"]
    resp = await submit(console, f"/admin/teams/{team_id}/members",
                        {"player": f"林（无号）#{player}", "joined_at": "2024-01-01T10:00"},
                        token_from=f"/admin/teams/{team_id}")
    assert resp.status == 302


async def leave_team(console, sql, team_id: int) -> None:
    member = sql("SELECT id FROM team_members")[0]["id"]
    resp = await submit(console, f"/admin/teams/{team_id}/members/{member}/leave", {"left_at": "2025-01-01T10:00"})
    assert resp.status == 302


async def test_a_team_name_is_taken_once(console, team):
    assert (await submit(console, "/admin/teams/new", {"name": "猛龙"})).status == 400


async def test_a_member_sees_the_team_with_its_logo(console, sql, team):
    token = await login(console)
    await join_team(console, sql, team)
    teams = await (await console.get("/api/v1/team/by_user", headers={"token": token})).json()
    assert teams[0]["name"] == "猛龙" and "/media/teams/" in teams[0]["logo"]


async def test_a_member_leaves_a_team_on_a_date(console, sql, team):
    await login(console)
    await join_team(console, sql, team)
    # Leaving is asked for first (confirm.js reads data-confirm).
    assert 'data-confirm="确定让 林 离队？"' in await (await console.get(f"/admin/teams/{team}")).text()
    await leave_team(console, sql, team)
    assert sql("SELECT left_at IS NOT NULL AS gone FROM team_members")[0]["gone"]


async def test_a_refused_player_for_a_team_returns_to_the_team_page_saying_why(console, sql, team):
    """A player already in another team: back on the team's page (a reload posts nothing), the red 未保存
    banner at the top naming why, the player still chosen; nothing written."""
    await login(console)
    await join_team(console, sql, team)
    other = sql("INSERT INTO teams (name) VALUES ('飞虎') RETURNING id")[0]["id"]
    player = sql("SELECT player_id FROM team_members")[0]["player_id"]
    resp = await submit(console, f"/admin/teams/{other}/members", {"player": f"林（无号）#{player}",
                                                                   "joined_at": "2024-02-01T10:00"},
                        token_from=f"/admin/teams/{other}")
    assert resp.status == 303 and resp.headers["Location"] == f"/admin/teams/{other}#refused"
    page = await (await console.get(resp.headers["Location"])).text()
    assert page.index('class="refused"') < page.index('<section class="card">') and "未保存" in page
    assert "请先办理离队" in page
    assert f'value="林（无号）#{player}"' in page
    assert sql("SELECT count(*) FROM team_members")[0]["count"] == 1
    assert 'class="refused"' not in await (await console.get(f"/admin/teams/{other}")).text()
    # Added again to the team they are in: said as such.
    resp = await submit(console, f"/admin/teams/{team}/members", {"player": f"林（无号）#{player}",
                                                                  "joined_at": "2024-02-01T10:00"},
                        token_from=f"/admin/teams/{team}")
    assert "该球员已在本队" in await (await console.get(resp.headers["Location"])).text()


async def test_a_refused_delete_is_a_red_alert_saying_what_to_do(console, match, sql):
    sql("INSERT INTO videos (competition_id, title) VALUES (%s, 'v')", match["id"])
    resp = await submit(console, f"/admin/competitions/{match['id']}/delete", {})
    page = await (await console.get(resp.headers["Location"])).text()
    alert = re.search(r'<p class="error banner" role="alert">([^<]*)</p>', page)
    assert alert and "不能删除" in alert[1] and "请先处理" in alert[1], page
    assert '<p class="flash">不能删除' not in page


async def test_a_team_that_had_members_is_not_deleted(console, sql, team):
    await login(console)
    await join_team(console, sql, team)
    await leave_team(console, sql, team)
    resp = await submit(console, f"/admin/teams/{team}/delete", {})
    assert "不能删除" in await (await console.get(resp.headers["Location"])).text()


# -- player cards ----------------------------------------------------------------------------------

PLAYER = {"cn_name": "林建东", "number": "23", "sex": "1", "birthday": "1998-06-18", "user_lookup": "13800138000"}


@pytest.fixture
async def phone_user(console, sql):
    """A user of the H5 app with a bound phone (the card is looked up by it): their token."""
    token = await login(console)
    user = sql("SELECT id FROM users")[0]["id"]
    sql("UPDATE users SET mobile = '13800138000' WHERE id = %s", user)
    return token


async def test_a_player_card_out_of_range_is_refused(console, phone_user):
    resp = await submit(console, "/admin/players/new", {**PLAYER, "stature": "300"})
    assert resp.status == 400 and "须在 50~260 之间" in await resp.text()


async def test_a_player_card_phone_number_is_checked(console, phone_user, sql):
    resp = await submit(console, "/admin/players/new", {**PLAYER, "mobile": "12345"})
    assert resp.status == 400 and "手机号码格式不正确" in await resp.text()
    resp = await submit(console, "/admin/players/new", {**PLAYER, "mobile": "+86 139-0013-9000"})
    assert resp.status == 302
    assert sql("SELECT mobile FROM players")[0]["mobile"] == "13900139000"


async def test_a_refused_player_card_names_every_problem_at_once(console, sql):
    """A bad phone and a user nobody has: both said in the one refusal, not one per try."""
    resp = await submit(console, "/admin/players/new", {**PLAYER, "mobile": "12345", "user_lookup": "13999999999"})
    body = await resp.text()
    assert resp.status == 400 and "手机号码格式不正确" in body and "没有找到这个用户" in body
    assert "有 2 处需要修改" in body
    assert sql("SELECT count(*) FROM players")[0]["count"] == 0


@pytest.mark.parametrize("number", ["二十三", "23号", "1000", "-1", "2 3"])
async def test_a_jersey_number_is_digits(console, phone_user, sql, number):
    resp = await submit(console, "/admin/players/new", {**PLAYER, "number": number})
    assert resp.status == 400 and "球衣号码须为 0~999 的数字" in await resp.text()
    assert sql("SELECT count(*) FROM players")[0]["count"] == 0
    resp = await submit(console, "/admin/players/new", {**PLAYER, "number": " 07 "})
    assert resp.status == 302, re.findall(r'class="error[^>]*>([^<]+)', await resp.text())
    assert sql("SELECT number FROM players")[0]["number"] == "07"


async def test_a_player_card_shows_in_the_members_info_until_switched_off(console, phone_user):
    token = phone_user
    resp = await submit(console, "/admin/players/new", {**PLAYER, "stature": "188", "weight": "82.5",
                                                        "position": "后卫"},
                        {"photo_file": ("p.png", png())})
    assert resp.status == 302, await resp.text()
    info = await (await console.get("/api/v1/member/info", headers={"token": token})).json()
    assert info["cn_name"] == "林建东" and info["number"] == "23" and info["stature"] == 188
    assert info["weight"] == 82.5 and info["sex"] == "男" and "/media/players/" in info["photo"]
    player = int(resp.headers["Location"].rsplit("/", 1)[1])
    assert (await submit(console, f"/admin/players/{player}/off", {})).status == 302
    assert (await console.get("/api/v1/member/info", headers={"token": token})).status == 404


# -- videos ----------------------------------------------------------------------------------------

async def upload_video(console, sql, filename: str, data: bytes):
    match = sql("INSERT INTO competitions (title, play_time) VALUES ('m', now()) RETURNING id")[0]["id"]
    return await submit(console, "/admin/videos/new", {"title": "全场回放", "type": "1", "competition_id": match,
                                                       "publish_time": "2030-01-01T10:00"},
                        {"video_file": (filename, data)})


async def test_a_video_file_that_is_no_video_is_refused(console, sql):
    resp = await upload_video(console, sql, "clip.mp4", b"MZ not a video at all" * 10)
    assert resp.status == 400 and "无法识别的视频" in await resp.text()


@pytest.fixture
async def video(console, sql):
    """A video uploaded in the console under a hostile file name (a draft): its id."""
    resp = await upload_video(console, sql, "../../evil.mp4", VIDEO_HEAD)
    assert resp.status == 302, await resp.text()
    return int(resp.headers["Location"].rsplit("/", 1)[1])


async def test_an_uploaded_video_is_stored_under_a_name_of_ours(video, sql, settings):
    file = sql("SELECT name, original, size, mime FROM files")[0]
    assert file["mime"] == "video/mp4" and "/" not in file["original"] and "/media/videos/" in file["name"]
    stored = list((settings.media_path / "videos").rglob("*.mp4"))
    assert len(stored) == 1 and stored[0].read_bytes() == VIDEO_HEAD and stored[0].name != "evil.mp4"
    assert not list((settings.media_path / ".uploads").iterdir())


async def test_a_video_is_listed_once_published(console, video):
    token = await login(console)
    assert (await h5(console, "/api/v1/competition/video", token))[1]["total"] == 0
    assert (await submit(console, f"/admin/videos/{video}/on", {})).status == 302
    _, page = await h5(console, "/api/v1/competition/video", token)
    assert page["data"][0]["title"] == "全场回放" and page["data"][0]["file"]["size"] == len(VIDEO_HEAD)


async def test_deleting_a_video_keeps_the_others(console, sql, video):
    # By URL instead of a file.
    resp = await submit(console, "/admin/videos/new", {"title": "集锦", "type": "2", "publish_time": "2030-01-01T10:00",
                                                       "video_url": "https://cdn.example.com/h.mp4"})
    assert resp.status == 302
    assert (await submit(console, f"/admin/videos/{video}/delete", {})).status == 302
    assert sql("SELECT count(*) FROM videos")[0]["count"] == 1


async def test_video_size_limit(make_client, sql):
    client = await make_client(upload_video_max_bytes=100)
    add_admin(sql, "writer", "editor")
    await sign_in(client, "writer")
    resp = await submit(client, "/admin/videos/new", {"title": "大", "publish_time": "2030-01-01T10:00"},
                        {"video_file": ("big.mp4", VIDEO_HEAD)})
    assert resp.status == 413 and "不能超过" in await resp.text()
    assert sql("SELECT count(*) FROM videos")[0]["count"] == 0


# -- banners ---------------------------------------------------------------------------------------

BANNER = {"title": "杯赛报名", "position": "2", "sort": "1"}


async def test_a_banner_needs_a_picture(console):
    resp = await submit(console, "/admin/banners/new", {"title": "无图", "position": "2"})
    assert resp.status == 400 and "请上传图片" in await resp.text()


async def test_a_banner_links_only_to_http(console):
    resp = await submit(console, "/admin/banners/new", {**BANNER, "jump_url": "javascript:alert(1)"},
                        {"image": ("b.png", png())})
    assert resp.status == 400 and "须是 http(s)://" in await resp.text()


async def test_a_banner_shows_in_its_position_until_switched_off(console):
    token = await login(console)
    resp = await submit(console, "/admin/banners/new", {**BANNER, "jump_url": "https://club.example.com/cup"},
                        {"image": ("b.png", png(750, 300))})
    assert resp.status == 302
    status, banners = await h5(console, "/api/v1/banner/by_position", token, id="2")
    assert status == 200 and banners[0]["title"] == "杯赛报名" and banners[0]["img"]["cate"] == "image"
    banner = int(resp.headers["Location"].rsplit("/", 1)[1])
    assert (await submit(console, f"/admin/banners/{banner}/off", {"back": "list"})).headers["Location"] == \
        "/admin/banners"
    assert (await h5(console, "/api/v1/banner/by_position", token, id="2"))[0] == 404


# -- lives -----------------------------------------------------------------------------------------

@pytest.fixture
async def live_console(make_client, sql):
    """A console whose lives are pushed with a secret, signed in as an editor."""
    client = await make_client(live_push_secret="s3cret")
    add_admin(sql, "writer", "editor")
    await sign_in(client, "writer")
    return client


@pytest.fixture
async def live(live_console):
    """A live made in the console (a draft): its id."""
    resp = await submit(live_console, "/admin/lives/new", {
        "title": "决赛直播", "app_name": "live", "stream_name": "final_1", "publish_time": "2030-01-01T10:00",
        "plug_flow": "rtmp://srs.example.com/live/final_1", "play_flv": "https://srs.example.com/live/final_1.flv",
        "online_show": "y"})
    assert resp.status == 302, await resp.text()
    return int(resp.headers["Location"].rsplit("/", 1)[1])


async def test_a_live_push_url_warns_when_the_server_has_no_push_secret(live_console, live, make_client, sql):
    assert "push-refused" not in await (await live_console.get(f"/admin/lives/{live}")).text()
    bare = await make_client()
    await sign_in(bare, "writer")
    page = await (await bare.get(f"/admin/lives/{live}")).text()
    assert "push-refused" in page and "JIANDONG_LIVE_PUSH_SECRET" in page


async def start_by_hand(client, live: int) -> None:
    # Status by hand, through live_status.
    resp = await submit(client, f"/admin/lives/{live}/status", {"live_status": "1"}, token_from=f"/admin/lives/{live}")
    assert resp.status == 302


async def test_a_live_push_url_carries_the_push_secret_and_has_a_qr_code(live_console, live, sql):
    client = live_console
    row = sql("SELECT plug_flow, status FROM lives")[0]
    assert row["plug_flow"] == "rtmp://srs.example.com/live/final_1?token=s3cret"
    page = await (await client.get(f"/admin/lives/{live}")).text()
    assert "rtmp://srs.example.com/live/final_1?token=s3cret" in page and "push-qr.svg" in page
    # Ending the live tells every viewer: it is asked for first.
    assert 'data-confirm="结束直播？' in page
    qr = await client.get(f"/admin/lives/{live}/push-qr.svg")
    assert qr.status == 200 and qr.content_type == "image/svg+xml" and b"<svg" in await qr.read()


async def test_a_published_live_not_started_answers_its_detail_but_is_not_listed(live_console, live):
    # Published but not started: its detail answers, the list shows it once it starts.
    client = live_console
    token = await login(client)
    assert (await submit(client, f"/admin/lives/{live}/on", {})).status == 302
    _, lives = await h5(client, "/api/v1/competition/live", token)
    assert lives["data"] == []
    detail = await (await client.get(f"/api/v1/competitionlive/{live}", headers={"token": token})).text()
    assert "s3cret" not in detail and "plug_flow" not in detail and '"live_status":0' in detail


async def test_a_live_started_by_hand_is_listed_without_its_push_url(live_console, live):
    client = live_console
    token = await login(client)
    assert (await submit(client, f"/admin/lives/{live}/on", {})).status == 302
    await start_by_hand(client, live)
    _, lives = await h5(client, "/api/v1/competition/live", token)
    assert lives["data"][0]["live_status"] == 1
    assert lives["data"][0]["play_flv"] == "https://srs.example.com/live/final_1.flv"
    assert "plug_flow" not in lives["data"][0] and "s3cret" not in str(lives)


async def test_a_running_live_is_not_deleted(live_console, live):
    client = live_console
    assert (await submit(client, f"/admin/lives/{live}/on", {})).status == 302
    await start_by_hand(client, live)
    resp = await submit(client, f"/admin/lives/{live}/delete", {})
    assert "正在进行的直播流" in await (await client.get(resp.headers["Location"])).text()


async def test_live_urls_generated_for_aliyun(make_client, sql):
    client = await make_client(aliyun_live_push_domain="push.club.example.com", aliyun_live_push_key="PushKey",
                               aliyun_live_play_domain="live.club.example.com", aliyun_live_play_key="PlayKey")
    add_admin(sql, "writer", "editor")
    await sign_in(client, "writer")
    page = await (await client.get("/admin/lives/new")).text()
    assert "按阿里云直播配置生成" in page
    resp = await submit(client, "/admin/lives/new", {"title": "直播", "app_name": "club", "stream_name": "m1",
                                                     "generate": "y", "publish_time": "2030-01-01T10:00"})
    assert resp.status == 302
    row = sql("SELECT plug_flow, play_flv, play_m3u8, play_rtmp FROM lives")[0]
    assert row["plug_flow"].startswith("rtmp://push.club.example.com/club/m1?auth_key=")
    assert row["play_flv"].startswith("https://live.club.example.com/club/m1.flv?auth_key=")
    assert row["play_m3u8"].startswith("https://live.club.example.com/club/m1.m3u8?auth_key=")


# -- products --------------------------------------------------------------------------------------

async def test_a_product_price_has_at_most_two_decimals(console):
    resp = await submit(console, "/admin/products/new", {"title": "年度会员", "price": "199.999", "valid_time": "1",
                                                         "amount": "100"})
    assert resp.status == 400 and "最多两位小数" in await resp.text()


@pytest.fixture
async def product(console, sql):
    """A product made in the console (a draft): its row."""
    resp = await submit(console, "/admin/products/new", {"title": "年度会员", "price": "199.90", "valid_time": "2",
                                                         "amount": "100",
                                                         "content": "<p>权益<img src=x onerror=y></p>"})
    assert resp.status == 302
    return sql("SELECT id, price, valid_time, status, content FROM businesses")[0]


async def test_a_new_product_is_a_draft_in_cents_with_clean_html(product):
    row = product
    assert row["price"] == 19990 and row["valid_time"] == 2 and row["status"] == 0
    assert "onerror" not in row["content"]


async def test_a_product_is_offered_once_published(console, product):
    token = await login(console)
    assert (await console.get("/api/v1/business/joinus", headers={"token": token})).status == 404
    assert (await submit(console, f"/admin/products/{product['id']}/on", {})).status == 302
    joinus = await (await console.get("/api/v1/business/joinus", headers={"token": token})).json()
    assert joinus["price"] == "199.90" and joinus["valid_time"] == 2


# -- configs ---------------------------------------------------------------------------------------

async def test_a_rich_config_keeps_only_clean_html(console, sql):
    token = await login(console)
    sql("INSERT INTO config_values (code, name, value, rich) VALUES ('service_agreement', '服务协议', '', true)")
    resp = await submit(console, "/admin/configs/service_agreement", {
        "name": "服务协议", "value": "<h3>协议</h3><p>第一条</p><script>steal()</script>"})
    assert resp.status == 302
    _, body = await h5(console, "/api/v1/config/value", token, code="service_agreement")
    assert body["value"] == "<h3>协议</h3><p>第一条</p>"


async def add_icp(console) -> None:
    resp = await submit(console, "/admin/configs/new", {"code": "ICP", "name": "备案号", "value": "粤ICP备1号"})
    assert resp.status == 302


async def test_a_plain_config_is_answered_as_typed(console):
    token = await login(console)
    await add_icp(console)
    _, body = await h5(console, "/api/v1/config/value", token, code="ICP")
    assert body["value"] == "粤ICP备1号"
    resp = await submit(console, "/admin/configs/ICP", {"name": "备案号", "value": "粤ICP备2号 <b>"})
    assert resp.status == 302
    _, body = await h5(console, "/api/v1/config/value", token, code="ICP")
    assert body["value"] == "粤ICP备2号 <b>"  # plain text is kept as typed; the pages escape it


async def test_a_config_code_is_taken_once(console):
    await add_icp(console)
    assert (await submit(console, "/admin/configs/new", {"code": "ICP", "value": "x"})).status == 400


# -- what any console form takes ------------------------------------------------------------------

async def test_a_photo_larger_than_an_api_body_uploads(console, sql):
    # A phone photo is far over what an H5 API route takes; the console reads its own uploads.
    noise = Image.effect_noise((1200, 900), 80).convert("RGB")
    out = io.BytesIO()
    noise.save(out, "JPEG", quality=95)
    assert len(out.getvalue()) > 256 * 1024
    resp = await submit(console, "/admin/banners/new", {"title": "大图", "position": "1", "sort": "1"},
                        {"image": ("big.jpg", io.BytesIO(out.getvalue()))})
    assert resp.status == 302, await resp.text()
    assert sql("SELECT title FROM banners") == [{"title": "大图"}]


async def test_a_form_cannot_carry_more_than_a_form_needs(console, sql, settings):
    token = await csrf(console, "/admin/")
    many = aiohttp.FormData(default_to_multipart=True)
    many.add_field("csrf_token", token)
    for n in range(150):
        many.add_field(f"f{n}", "x")
    resp = await console.post("/admin/banners/new", data=many, allow_redirects=False)
    assert resp.status == 413
    text = aiohttp.FormData(default_to_multipart=True)
    text.add_field("csrf_token", token)
    for n in range(3):
        text.add_field(f"t{n}", "字" * 200_000)
    resp = await console.post("/admin/banners/new", data=text, allow_redirects=False)
    assert resp.status == 413
    # No temporary upload is left behind by a refused form.
    files = aiohttp.FormData()
    files.add_field("csrf_token", token)
    files.add_field("image", io.BytesIO(png(800, 600)), filename="a.png", content_type="image/png")
    for n in range(150):
        files.add_field(f"f{n}", "x")
    resp = await console.post("/admin/banners/new", data=files, allow_redirects=False)
    assert resp.status == 413
    # The sign-in page takes no multipart form at all.
    resp = await console.post("/admin/login", data=many, allow_redirects=False)
    assert resp.status == 415
    uploads = settings.media_path / ".uploads"
    assert not uploads.exists() or not any(uploads.iterdir())


async def test_a_match_is_copied_as_next_weeks_draft_at_the_same_place(console, sql):
    """The next round: a draft a week later with the texts, venue, teams and capacity; no result, no sign-ups."""
    team = sql("INSERT INTO teams (name) VALUES ('猛龙') RETURNING id")[0]["id"]
    resp = await submit(console, "/admin/competitions/new", {
        "title": "周六联赛", "play_time": "2030-05-04T19:30", "venue": "建东体育馆 2 号场", "team_ids": str(team),
        "capacity": "12", "apply_deadline": "2030-05-04T12:00", "score": "88:76"})
    assert resp.status == 302, await resp.text()
    first = int(resp.headers["Location"].rsplit("/", 1)[1])
    sql("UPDATE competitions SET status = 1 WHERE id = %s", first)
    resp = await submit(console, f"/admin/competitions/{first}/copy", {}, token_from=f"/admin/competitions/{first}")
    assert resp.status == 302
    copy = int(resp.headers["Location"].rsplit("/", 1)[1])
    assert copy != first
    row = sql("SELECT title, venue, capacity, score, status, play_time - (SELECT play_time FROM competitions"
              " WHERE id = %s) AS later, play_time - apply_deadline AS before FROM competitions WHERE id = %s",
              first, copy)[0]
    assert (row["title"], row["venue"], row["capacity"], row["score"], row["status"]) == (
        "周六联赛", "建东体育馆 2 号场", 12, "", 0)
    assert row["later"].days == 7 and row["before"].total_seconds() == 7.5 * 3600
    assert sql("SELECT team_id FROM competition_teams WHERE competition_id = %s", copy) == [{"team_id": team}]
    entry = sql("SELECT action, target, after FROM audit_log WHERE action = 'competitions.copy'")[0]
    assert entry["target"] == f"competitions:{copy}" and entry["after"] == {"copied_from": first}
    page = await (await console.get(f"/admin/competitions/{copy}")).text()
    assert "已复制为草稿" in page and 'value="建东体育馆 2 号场"' in page


async def test_the_match_list_filters_by_time_result_and_team(console, sql):
    team = sql("INSERT INTO teams (name) VALUES ('猛龙') RETURNING id")[0]["id"]
    # 上周联赛 has only a typed score: no result entered on its result page.
    for title, when, score in (("下周联赛", "now() + interval '7 days'", None),
                               ("上周联赛", "now() - interval '7 days'", None),
                               ("上月联赛", "now() - interval '30 days'", 88)):
        match = sql(f"INSERT INTO competitions (title, play_time, score, club_score, opponent_score) VALUES"
                    f" (%s, {when}, '80:70', %s, %s) RETURNING id", title, score, score and 76)[0]["id"]
        if title != "上月联赛":
            sql("INSERT INTO competition_teams (competition_id, team_id) VALUES (%s, %s)", match, team)

    async def listed(**params) -> set[str]:
        page = await (await console.get("/admin/competitions", params=params)).text()
        return {t for t in ("下周联赛", "上周联赛", "上月联赛") if f">{t}</a>" in page}

    assert await listed() == {"下周联赛", "上周联赛", "上月联赛"}
    assert await listed(when="upcoming") == {"下周联赛"}
    assert await listed(when="finished") == {"上周联赛", "上月联赛"}
    assert await listed(when="unscored") == {"上周联赛"}
    assert await listed(team=str(team)) == {"下周联赛", "上周联赛"}
    assert await listed(when="finished", team=str(team)) == {"上周联赛"}
    # Unknown filters are no filters; the page links keep the ones in use.
    assert await listed(when="someday", team="abc") == {"下周联赛", "上周联赛", "上月联赛"}
    page = await (await console.get("/admin/competitions", params={"when": "finished", "team": str(team)})).text()
    assert f"when=finished&amp;team={team}" in page
