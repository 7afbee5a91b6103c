"""The demo club: loaded once, every H5 page populated for the demo login, its pictures served offline."""

from __future__ import annotations

import io
import json
import re
import shutil

from PIL import Image

from jiandong.demo import media as demo_media
from jiandong.demo.club import DEMO_LOGIN_CODE, load_demo
from jiandong.integrations.wechat import dev_openid
from tests.helpers.api import login


def count(sql, table):
    return sql(f"SELECT count(*) AS n FROM {table}")[0]["n"]


def local(settings):
    """The settings of a server on port 8080 of this machine, whose media dir the test owns."""
    return settings.replace(port=8080)


async def test_demo_data_is_populated_and_idempotent(settings, sql):
    assert load_demo(local(settings), ffmpeg="/nonexistent/ffmpeg") is True
    counts = {t: count(sql, t) for t in ("teams", "players", "competitions", "videos", "lives", "banners",
                                         "config_values", "businesses", "team_members", "chat_messages", "orders")}
    assert counts["teams"] >= 3 and counts["players"] >= 30 and counts["competitions"] >= 30
    assert counts["videos"] >= 30 and counts["lives"] >= 3 and counts["businesses"] == 1
    upcoming = sql("SELECT count(*) AS n FROM competitions WHERE play_time > now()")[0]["n"]
    assert 0 < upcoming < counts["competitions"]
    assert {r["live_status"] for r in sql("SELECT DISTINCT live_status FROM lives")} == {0, 1, 2}
    codes = {r["code"] for r in sql("SELECT code FROM config_values")}
    assert {"index_title", "seo_title", "description", "copyright", "ICP", "agreement_user",
            "agreement_privacy", "agreement_member", "service_agreement", "purchase_agreement",
            "membership_agreement"} <= codes
    # A number is worn once a team (as an import of the exported roster checks).
    assert sql("SELECT tm.team_id, p.number FROM team_members tm JOIN players p ON p.id = tm.player_id"
               " WHERE tm.left_at IS NULL AND p.number <> '' GROUP BY 1, 2 HAVING count(*) > 1") == []
    assert load_demo(local(settings)) is False
    assert {t: count(sql, t) for t in counts} == counts


async def test_demo_keeps_an_agreement_the_club_wrote(settings, sql):
    placeholder = "<p>《视频购买观看协议》正文尚未发布，请以俱乐部公布的版本为准。</p>"
    sql("INSERT INTO config_values (code, name, value) VALUES ('service_agreement', '服务协议', '俱乐部的协议'),"
        " ('purchase_agreement', '视频购买观看协议', %s)", placeholder)
    load_demo(local(settings))
    rows = sql("SELECT code, value FROM config_values WHERE code LIKE '%%_agreement'")
    values = {r["code"]: r["value"] for r in rows}
    assert values["service_agreement"] == "俱乐部的协议"
    assert values["purchase_agreement"].startswith("<h3>视频购买观看协议</h3>")
    assert values["membership_agreement"].startswith("<h3>尊享会员服务协议</h3>")


async def test_the_demo_login_sees_every_member_page(client, settings, sql):
    load_demo(local(settings))
    token = await login(client, DEMO_LOGIN_CODE)
    headers = {"token": token}

    async def get(path, **params):
        resp = await client.get(path, params=params, headers=headers)
        assert resp.status == 200, (path, await resp.text())
        return await resp.json()

    info = await get("/api/v1/user/info")
    assert (info["username"], info["member_status"], info["mobile"]) == ("演示球员", 1, "13700000023")
    assert info["member_expire_time"] > info["last_login_time"][:10]
    card = await get("/api/v1/member/info")
    assert "" not in (card["cn_name"], card["birthday"], card["photo"], card["team"], card["number"], card["honor"])
    assert card["team"] == "建东猛龙" and card["order_id"] == card["number"] == "23"
    assert card["age"] > 0 and card["stature"] == 188 and card["weight"] == 82.0
    teams = await get("/api/v1/team/by_user")
    assert [t["name"] for t in teams] == ["建东猛龙", "建东飞虎"]
    history = await get("/api/v1/competition/by_member")
    assert [t["name"] for t in history] == ["建东猛龙", "建东飞虎"] and history[0]["competitions"]
    orders = await get("/api/v1/order/by_user")
    assert [o["status"] for o in orders["data"]] == [1, 5]
    resp = await client.post("/api/v1/config/value", headers=headers,
                             data={"code[]": "membership_agreement", "tags": 1})
    assert "会员" in (await resp.json())["membership_agreement"]

    lives = sql("SELECT id, live_status FROM lives ORDER BY id")
    on_air = next(live["id"] for live in lives if live["live_status"] == 1)
    chat = await get(f"/api/v1/guest/{on_air}")
    assert len(chat) >= 10 and any(m["myself"] for m in chat) and not all(m["myself"] for m in chat)
    assert any(f'<img class="emoji" src="{settings.chat_emoji_path}' in m["content"] for m in chat)


async def test_demo_pictures_are_local_and_served(client, settings, sql):
    load_demo(local(settings), cjk_font=None)
    urls = [r["url"] for r in sql(
        "SELECT logo AS url FROM teams UNION ALL SELECT main_img_url FROM competitions"
        " UNION ALL SELECT main_img_url FROM videos UNION ALL SELECT main_img_url FROM lives"
        " UNION ALL SELECT img_url FROM banners UNION ALL SELECT photo FROM players"
        " UNION ALL SELECT head_img FROM users")]
    # Paths on this site, like uploads: no host is written into the database.
    assert urls and all(u.startswith("/media/demo/") for u in urls), urls[:3]
    for url in {urls[0], urls[-1], *urls[::25]}:
        resp = await client.get(url)
        assert resp.status == 200 and resp.content_type.startswith("image/"), url
        Image.open(io.BytesIO(await resp.read())).verify()
    assert all(re.match(r"https?://|/media/demo/", r["name"]) for r in sql("SELECT name FROM files"))


async def test_demo_pictures_are_answered_under_the_public_url(make_client, settings, sql):
    load_demo(local(settings))
    client = await make_client(public_url="https://club.example.com/")
    token = await login(client, DEMO_LOGIN_CODE)
    teams = await (await client.get("/api/v1/team/by_user", headers={"token": token})).json()
    assert teams and all(t["logo"].startswith("https://club.example.com/media/demo/teams/") for t in teams)
    info = await (await client.get("/api/v1/user/info", headers={"token": token})).json()
    assert info["head_img"] == "https://club.example.com/media/demo/avatars/demo.png"


def test_pictures_carry_chinese_where_a_font_has_it_else_latin(tmp_path):
    picture = demo_media.Picture("demo/x.jpg", (640, 360), (200, 40, 50), "建东猛龙 vs 城南勇士",
                                 "JD Dragons vs Chengnan Warriors", "市联赛", "City League", "直播中", "LIVE")
    latin = demo_media.Painter(None)
    assert latin.texts(picture) == ("JD Dragons vs Chengnan Warriors", "City League", "LIVE")
    assert demo_media.write_pictures(tmp_path, [picture], None) == 1
    assert demo_media.write_pictures(tmp_path, [picture], None) == 0
    with Image.open(tmp_path / "demo/x.jpg") as img:
        assert (img.format, img.size) == ("JPEG", (640, 360))
    font = demo_media.find_cjk_font()
    if font is not None:
        assert demo_media.Painter(font).texts(picture) == ("建东猛龙 vs 城南勇士", "市联赛", "直播中")


def test_sample_clip_only_with_ffmpeg(tmp_path):
    assert demo_media.make_sample_clip(tmp_path, None) is None
    assert not (tmp_path / demo_media.SAMPLE_CLIP).exists()


async def test_videos_play_a_local_sample_clip_where_ffmpeg_is_installed(client, settings, sql):
    load_demo(local(settings))
    names = {r["name"] for r in sql("SELECT name FROM files WHERE cate = 'video'")}
    if shutil.which("ffmpeg") is None:
        # Nothing here can make a clip a browser plays: the README says the videos are placeholders.
        assert all(name.startswith("https://media.example.com/videos/") for name in names)
        return
    assert names == {f"/media/{demo_media.SAMPLE_CLIP}"}
    resp = await client.get(f"/media/{demo_media.SAMPLE_CLIP}")
    assert resp.status == 200 and resp.content_type == "video/mp4"
    data = await resp.read()
    # An MP4 with its index (moov) ahead of the media data, so playback starts while it downloads.
    assert data[4:8] == b"ftyp" and 0 < data.find(b"moov") < data.find(b"mdat")


async def test_a_demo_login_with_data_of_its_own_is_left_alone(client, settings, sql):
    token = await login(client, DEMO_LOGIN_CODE)
    sql("UPDATE users SET username = 'MyName', mobile = '13900000000', sex = 2,"
        " member_status = 1, member_expire_time = now() + interval '300 days'")
    before = sql("SELECT username, mobile, sex, member_expire_time FROM users")
    load_demo(local(settings))
    assert sql("SELECT username, mobile, sex, member_expire_time FROM users WHERE openid = %s",
               dev_openid(DEMO_LOGIN_CODE)) == before
    resp = await client.get("/api/v1/member/info", headers={"token": token})
    assert (resp.status, (await resp.json())["error_code"]) == (404, 30002)
    # The rest of the demo club is there, its chat by the fans alone.
    assert count(sql, "competitions") >= 30 and count(sql, "chat_messages") > 0
    assert sql("SELECT count(*) AS n FROM orders")[0]["n"] == 0


async def test_a_fresh_demo_login_becomes_the_demo_member(client, settings, sql):
    token = await login(client, DEMO_LOGIN_CODE)
    load_demo(local(settings))
    resp = await client.get("/api/v1/user/info", headers={"token": token})
    info = await resp.json()
    assert (info["username"], info["sex"], info["mobile"], info["member_status"]) == ("演示球员", "男",
                                                                                   "13700000023", 1)


async def test_the_demo_phone_bound_by_someone_else_is_on_no_demo_page(client, settings, sql):
    await login(client, "alice")
    sql("UPDATE users SET mobile = '13700000023'")
    load_demo(local(settings))
    token = await login(client, DEMO_LOGIN_CODE)
    for path in ("/api/v1/user/info", "/api/v1/member/info"):
        resp = await client.get(path, headers={"token": token})
        assert (await resp.json())["mobile"] == "", path


async def test_the_demo_needs_no_relinking_when_started_on_another_address(make_client, settings, sql):
    """Its pictures are stored as paths: another port or public URL changes the answers, not the rows."""
    load_demo(local(settings))
    stored = sql("SELECT logo FROM teams ORDER BY id")
    assert load_demo(settings.replace(port=9090)) is False
    assert sql("SELECT logo FROM teams ORDER BY id") == stored
    urls = [r["url"] for r in sql(
        "SELECT logo AS url FROM teams UNION ALL SELECT img_url FROM banners UNION ALL SELECT name FROM files"
        " WHERE cate = 'image' UNION ALL SELECT user_info->>'head_img' FROM chat_messages")]
    assert urls and all(u.startswith("/media/demo/") for u in urls), urls[:3]
    client = await make_client(public_url="https://other.example.com")
    token = await login(client, DEMO_LOGIN_CODE)
    live = sql("SELECT id FROM lives WHERE live_status = 1 LIMIT 1")[0]["id"]
    history = await (await client.get(f"/api/v1/guest/{live}", headers={"token": token})).json()
    avatars = [json.loads(m["user"])["head_img"] for m in history]
    assert avatars and all(a.startswith("https://other.example.com/media/demo/avatars/") for a in avatars)
    # Sizes are the pictures' own.
    assert all(r["size"] > 1000 for r in sql("SELECT size FROM files WHERE cate = 'image'"))
