"""Console chat moderation: a room's messages (and the fragment the page polls), deleting a message (stored or
still only in the stream) so new viewers never get it, timed mutes per room or everywhere, banned words."""

from __future__ import annotations

import asyncio
import re

import pytest

from jiandong.keys import realtime_key
from jiandong.store.mutes import mute_key
from tests.helpers.admin import add_admin, post_form, sign_in
from tests.helpers.api import call, login
from tests.helpers.realtime import FAST, IDLE_WRITER, frame_of, join, rows_eventually, send
from tests.helpers.waiting import until

pytestmark = pytest.mark.usefixtures("chat_rooms")

ROOM, OTHER_ROOM = 9, 8


async def moderator(make_client, sql, role: str = "moderator", **settings):
    client = await make_client(**settings)
    add_admin(sql, "mod", role)
    assert (await sign_in(client, "mod")).status == 302
    return client


async def say(ws, token: str, room: int, *contents: str) -> list[str]:
    """Send each message and return the seq (stream id) of each from its echo."""
    seqs = []
    for content in contents:
        await send(ws, type="SEND_ALL", room_id=room, content=content, token=token)
        seqs.append((await frame_of(ws, "SEND_ALL", myself=True))["seq"])
    return seqs


async def history(client, token: str, room: int = ROOM) -> list[str]:
    status, body = await call(client, "GET", f"/api/v1/guest/{room}", token)
    assert status == 200
    return [m["content"] for m in body]


def user_id(sql, name: str = "dev-talker") -> int:
    return sql("SELECT id FROM users WHERE username = %s", name)[0]["id"]


@pytest.mark.parametrize("writer", [FAST, IDLE_WRITER], ids=["stored", "only-in-the-stream"])
async def test_a_deleted_message_is_gone_for_viewers_who_join_afterwards(make_client, sql, writer):
    client = await moderator(make_client, sql, **writer)
    token = await login(client, "talker")
    ws, _ = await join(client, ROOM, token)
    seqs = await say(ws, token, ROOM, "第一句", "骂人的话", "第三句")
    if writer is FAST:
        await rows_eventually(sql, 3)
    page = await (await client.get(f"/admin/chat/{ROOM}")).text()
    assert "骂人的话" in page and f'value="{seqs[1]}"' in page and 'data-poll="/admin/chat/9/messages"' in page
    assert 'data-confirm="删除这条消息？' in page
    resp = await post_form(client, f"/admin/chat/{ROOM}/delete", {"stream_id": seqs[1]},
                           token_from=f"/admin/chat/{ROOM}")
    assert resp.status == 302
    # What a viewer who joins now loads.
    newcomer = await login(client, "newcomer")
    assert await history(client, newcomer) == ["第一句", "第三句"]
    fragment = await (await client.get(f"/admin/chat/{ROOM}/messages")).text()
    assert "第一句" in fragment and "骂人的话" not in fragment
    # Once the writer stores the stream, the message stays deleted (and is kept, marked, for the record).
    await client.app[realtime_key].history.flush()
    assert await history(client, newcomer) == ["第一句", "第三句"]
    rows = sql("SELECT content, deleted_at IS NOT NULL AS deleted, deleted_by FROM chat_messages ORDER BY msg_time, id")
    assert [(r["content"], r["deleted"]) for r in rows] == [("第一句", False), ("骂人的话", True), ("第三句", False)]
    assert rows[1]["deleted_by"] == 1
    [entry] = sql("SELECT action, target, before FROM audit_log")
    assert entry["action"] == "chat.delete" and entry["target"] == f"room:{ROOM}"
    assert entry["before"]["content"] == "骂人的话"
    # Unknown message: 404, nothing logged.
    resp = await post_form(client, f"/admin/chat/{ROOM}/delete", {"stream_id": "1-1"},
                           token_from=f"/admin/chat/{ROOM}")
    assert resp.status == 404 and len(sql("SELECT id FROM audit_log")) == 1


async def test_mutes_per_room_and_everywhere_for_a_time(make_client, sql, redis_sync, settings):
    client = await moderator(make_client, sql, **FAST)
    token = await login(client, "talker")
    uid = user_id(sql)
    here, _ = await join(client, ROOM, token)
    there, _ = await join(client, OTHER_ROOM, token)
    resp = await post_form(client, f"/admin/chat/{ROOM}/mute", {"user_id": uid, "scope": "room", "minutes": "10",
                                                              "reason": "刷屏"}, token_from=f"/admin/chat/{ROOM}")
    assert resp.status == 302
    assert 0 < redis_sync.ttl(mute_key(settings, uid, ROOM)) <= 600
    await send(here, type="SEND_ALL", room_id=ROOM, content="还在吗", token=token)
    assert await frame_of(here, "ERROR") == {"type": "ERROR", "error_code": 10001, "msg": "你已被禁言"}
    assert await say(there, token, OTHER_ROOM, "别的房间可以说")
    # Everywhere, for a day.
    resp = await post_form(client, f"/admin/chat/{ROOM}/mute", {"user_id": uid, "scope": "all", "minutes": "1440",
                                                              "reason": "辱骂"}, token_from=f"/admin/chat/{ROOM}")
    assert resp.status == 302
    await send(there, type="SEND_ALL", room_id=OTHER_ROOM, content="现在呢", token=token)
    assert (await frame_of(there, "ERROR"))["error_code"] == 10001
    mutes = sql("SELECT id, room_id, reason, until - created_at AS term FROM chat_mutes ORDER BY id")
    assert [(m["room_id"], m["reason"], m["term"].total_seconds()) for m in mutes] == [
        (ROOM, "刷屏", 600), (None, "辱骂", 86400)]
    page = await (await client.get(f"/admin/chat/{ROOM}")).text()
    assert "刷屏" in page and "辱骂" in page
    # Lifted: both scopes, sends go through again.
    for mute in mutes:
        resp = await post_form(client, f"/admin/chat/{ROOM}/mutes/{mute['id']}/lift", token_from=f"/admin/chat/{ROOM}")
        assert resp.status == 302
    assert not redis_sync.exists(mute_key(settings, uid, ROOM), mute_key(settings, uid, None))
    assert await say(here, token, ROOM, "解除了")
    entries = sql("SELECT action, summary FROM audit_log ORDER BY id")
    assert [e["action"] for e in entries] == ["chat.mute", "chat.mute", "chat.unmute", "chat.unmute"]
    # Lifting has no reason of its own: the entry says whose reason it shows.
    assert [e["summary"] for e in entries[2:]] == ["禁言原因：刷屏", "禁言原因：辱骂"]
    # The member page lists them.
    add_admin(sql, "boss")
    await sign_in(client, "boss")
    text = await (await client.get(f"/admin/members/{uid}")).text()
    assert "刷屏" in text and "全部直播间" in text and "已解除" in text


async def test_muting_again_extends_the_running_mute(make_client, sql, redis_sync, settings):
    """A second mute of the same user and scope (again, or by two moderators at once) is one mute, extended:
    one row to read and to lift, its end the later one, its reason the newest."""
    client = await moderator(make_client, sql, **FAST)
    await login(client, "talker")
    uid = user_id(sql)

    async def mute(minutes: str, reason: str, scope: str = "room") -> int:
        resp = await post_form(client, f"/admin/chat/{ROOM}/mute", {"user_id": uid, "scope": scope,
                                                                  "minutes": minutes, "reason": reason},
                               token_from=f"/admin/chat/{ROOM}")
        return resp.status

    assert await mute("10", "刷屏") == 302
    assert await mute("60", "继续刷屏") == 302
    # A shorter term given again does not cut the longer one short.
    assert await mute("5", "还在刷") == 302
    assert await asyncio.gather(*(mute("120", f"第{n}次") for n in range(4))) == [302] * 4
    rows = sql("SELECT room_id, reason, round(extract(epoch FROM until - now()) / 60) AS minutes"
               " FROM chat_mutes WHERE lifted_at IS NULL")
    assert len(rows) == 1 and rows[0]["room_id"] == ROOM and rows[0]["minutes"] == 120
    assert rows[0]["reason"].startswith("第")
    assert 7000 < redis_sync.ttl(mute_key(settings, uid, ROOM)) <= 7200
    # Another scope is another mute.
    assert await mute("10", "辱骂", "all") == 302
    assert sql("SELECT count(*) FROM chat_mutes")[0]["count"] == 2
    page = await (await client.get(f"/admin/chat/{ROOM}")).text()
    assert page.count("/lift") == 2


@pytest.mark.parametrize("h5", [False, True])
async def test_emoji_show_as_images_only_where_they_are_served(make_client, sql, tmp_path, h5):
    """The pages' emoji are the H5 build's images: without the build served, the console names each emoji
    instead of showing a broken image; with it, the image is shown and its URL answers."""
    build = tmp_path / "h5"
    (build / "images" / "emoji").mkdir(parents=True)
    (build / "images" / "emoji" / "1.gif").write_bytes(b"GIF89a\x01\x00\x01\x00\x00\x00\x00;")
    client = await moderator(make_client, sql, **FAST, **({"h5_dir": str(build)} if h5 else {}))
    token = await login(client, "talker")
    ws, _ = await join(client, ROOM, token)
    await say(ws, token, ROOM, '加油<img class="emoji" src="/h5/images/emoji/1.gif"/>')
    page = ""

    async def shown() -> bool:
        nonlocal page
        page = await (await client.get(f"/admin/chat/{ROOM}/messages")).text()
        return "加油" in page

    # The list reads the room's history, which the send path writes a moment after the echo.
    await until(shown, "the message in the moderation list")
    images = re.findall(r'<img class="emoji" src="([^"]+)">', page)
    if h5:
        assert images == ["/h5/images/emoji/1.gif"] and "[表情]" not in page
        assert (await client.get(images[0])).status == 200
    else:
        assert images == [] and '加油<span class="emoji-name">[表情]</span>' in page
        assert (await client.get("/h5/images/emoji/1.gif")).status == 404


async def test_a_refused_mute_keeps_the_form_and_names_the_user(make_client, sql):
    """A name typed where the id goes, or an unknown id: back in the room, told why in red, the form as it
    was; a user picked from a message is named beside the id."""
    client = await moderator(make_client, sql, **FAST)
    await login(client, "talker")
    uid = user_id(sql)
    for typed in ("捣乱的小号", "99999"):
        resp = await post_form(client, f"/admin/chat/{ROOM}/mute", {"user_id": typed, "scope": "room",
                                                                  "minutes": "10", "reason": "刷屏骂人"},
                               token_from=f"/admin/chat/{ROOM}")
        assert resp.status == 302 and resp.headers["Location"].startswith(f"/admin/chat/{ROOM}?")
        page = await (await client.get(resp.headers["Location"])).text()
        assert '<p class="error banner" role="alert">未能禁言' in page and 'value="刷屏骂人"' in page, typed
    assert sql("SELECT count(*) FROM chat_mutes")[0]["count"] == 0
    page = await (await client.get(f"/admin/chat/{ROOM}", params={"mute": str(uid)})).text()
    assert f'value="{uid}"' in page and "用户：dev-talker" in page


async def test_mute_needs_a_reason_and_a_sane_duration(make_client, sql, redis_sync, settings):
    client = await moderator(make_client, sql, **FAST)
    await login(client, "talker")
    uid = user_id(sql)
    for data in ({"minutes": "10", "reason": ""}, {"minutes": "0", "reason": "x"},
                 {"minutes": "999999", "reason": "x"}):
        resp = await post_form(client, f"/admin/chat/{ROOM}/mute", {"user_id": uid, "scope": "room", **data},
                               token_from=f"/admin/chat/{ROOM}")
        assert resp.status == 302
        assert "未能禁言" in await (await client.get(f"/admin/chat/{ROOM}")).text(), data
    assert sql("SELECT count(*) FROM chat_mutes")[0]["count"] == 0
    assert not redis_sync.exists(mute_key(settings, uid, ROOM))


async def test_banned_words_are_replaced_when_sent(make_client, sql):
    client = await moderator(make_client, sql, **FAST)
    resp = await post_form(client, "/admin/chat/banned-words", {"words": "傻瓜\nBad Word\n\nemoji"},
                           token_from="/admin/chat")
    assert resp.status == 302
    assert sql("SELECT value FROM config_values WHERE code = 'chat_banned_words'")[0]["value"] == (
        "Bad Word\nemoji\n傻瓜")
    token = await login(client, "talker")
    ws, _ = await join(client, ROOM, token)
    bystander, _ = await join(client, ROOM)
    content = '你是傻瓜，bad word！<img class="emoji" src="/h5/images/emoji/1.gif"/> 哈哈 <b>x</b>'
    await send(ws, type="SEND_ALL", room_id=ROOM, content=content, token=token)
    expected = '你是***，***！<img class="emoji" src="/h5/images/emoji/1.gif"> 哈哈 x'
    assert (await frame_of(bystander, "SEND_ALL"))["content"] == expected
    await rows_eventually(sql, 1)
    assert sql("SELECT content FROM chat_messages")[0]["content"] == expected
    text = await (await client.get("/admin/chat")).text()
    assert "Bad Word" in text
    # Emptied: nothing is replaced any more.
    await post_form(client, "/admin/chat/banned-words", {"words": ""}, token_from="/admin/chat")
    await send(ws, type="SEND_ALL", room_id=ROOM, content="傻瓜", token=token)
    assert (await frame_of(bystander, "SEND_ALL"))["content"] == "傻瓜"


async def test_moderation_is_for_moderators(make_client, sql):
    client = await moderator(make_client, sql, "editor", **FAST)
    for path in ("/admin/chat", f"/admin/chat/{ROOM}", f"/admin/chat/{ROOM}/messages"):
        assert (await client.get(path)).status == 403, path
    resp = await post_form(client, "/admin/chat/banned-words", {"words": "x"})
    assert resp.status == 403 and sql("SELECT count(*) FROM config_values")[0]["count"] == 0
    add_admin(sql, "m2", "moderator")
    assert (await sign_in(client, "m2")).status == 302
    assert (await client.get("/admin/chat")).status == 200
    for path in ("/admin/audit", "/admin/orders", "/admin/competitions"):
        assert (await client.get(path)).status == 403, path
    js = await client.get("/admin/static/live.js")
    assert js.status == 200 and "data-poll" in await js.text()


@pytest.mark.parametrize("ref", ["", "abc", "1-", "-1", "99999999999999999999999-1", "1-1-1", "0"])
async def test_deleting_a_message_that_is_not_there_is_a_404(make_client, sql, ref):
    client = await moderator(make_client, sql, **FAST)
    resp = await post_form(client, f"/admin/chat/{ROOM}/delete", {"message": ref, "stream_id": ref},
                           token_from=f"/admin/chat/{ROOM}")
    assert resp.status == 404
    assert not sql("SELECT 1 FROM audit_log")


async def test_a_message_without_a_stream_id_can_be_deleted(make_client, sql):
    """Messages loaded by the demo (or kept from before the stream) have no stream id: the console
    deletes them by what it shows."""
    client = await moderator(make_client, sql, **FAST)
    uid = sql("INSERT INTO users (openid, username) VALUES ('o-demo', '演示球员') RETURNING id")[0]["id"]
    for content in ("欢迎", "广告内容", "加油"):
        sql("INSERT INTO chat_messages (room_id, user_id, uuid, content, user_info, msg_time)"
            " VALUES (%s, %s, '000000000000-1', %s, '{\"username\": \"演示球员\"}', now())", ROOM, uid, content)
    page = await (await client.get(f"/admin/chat/{ROOM}")).text()
    assert "广告内容" in page
    ident = sql("SELECT id FROM chat_messages WHERE content = '广告内容'")[0]["id"]
    forms = [form for form in page.split("<li")[1:] if "广告内容" in form]
    assert len(forms) == 1
    fields = dict(re.findall(r'name="(message|stream_id)" value="([^"]*)"', forms[0]))
    resp = await post_form(client, f"/admin/chat/{ROOM}/delete", fields, token_from=f"/admin/chat/{ROOM}")
    assert resp.status == 302
    token = await login(client, "newcomer")
    assert await history(client, token) == ["欢迎", "加油"]
    rows = sql("SELECT id, deleted_at IS NOT NULL AS deleted FROM chat_messages ORDER BY id")
    assert [(r["id"], r["deleted"]) for r in rows if r["deleted"]] == [(ident, True)]
    [entry] = sql("SELECT action, before FROM audit_log")
    assert entry["action"] == "chat.delete" and entry["before"]["content"] == "广告内容"
