"""The chat's input rules, each through a real websocket, none disturbing the other connections."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

from jiandong.keys import realtime_key, redis_key
from jiandong.store.mutes import mute_key, muted_key, set_mute_until, set_muted
from tests.helpers.api import login
from tests.helpers.realtime import FAST, frame, frame_of, join, rows_eventually, send, send_and_ack, streamed
from tests.helpers.waiting import until

pytestmark = pytest.mark.usefixtures("chat_rooms")


def error(code: int, msg: str) -> dict:
    return {"type": "ERROR", "error_code": code, "msg": msg}


THROTTLED = error(10010, "发言太频繁，请稍后再试")


@pytest.fixture
async def room(make_client):
    """A client app, a sender's token, the sender's socket and a bystander's, both in room 9."""
    client = await make_client(**FAST)
    token = await login(client, "sender")
    ws, _ = await join(client, 9, token)
    bystander, _ = await join(client, 9, by_query=True)
    return client, token, ws, bystander


async def still_works(ws, bystander, token):
    """The sender can still send and the bystander still hears it."""
    await send(ws, type="SEND_ALL", room_id=9, content="still here", token=token)
    assert (await frame_of(ws, "SEND_ALL"))["myself"] is True
    got = await frame_of(bystander, "SEND_ALL")
    assert got["content"] == "still here" and got["myself"] is False


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("not json", error(99999, "参数错误: 消息不是 JSON")),
        ("[1, 2]", error(99999, "参数错误: 消息应为 JSON 对象")),
        ('{"room_id": 9}', error(99999, "参数错误: 缺少 type")),
        ('{"type": null, "room_id": 9}', error(99999, "参数错误: 缺少 type")),
        ('{"type": {"a": 1}, "room_id": 9}', error(99999, "参数错误: type 应为字符串")),
        ('{"type": 1, "room_id": 9}', error(99999, "参数错误: type 应为字符串")),
        ('{"type": "KICK", "room_id": 9}', error(99999, "参数错误: 未知的 type KICK")),
        ('{"type": "SEND_ALL", "room_id": 9, "content": 5}', error(99999, "参数错误: content 应为字符串")),
        ('{"type": "SEND_ALL", "room_id": "nine", "content": "x"}', error(99999, "参数错误: room_id 应为正整数")),
        ('{"type": "SEND_ALL", "room_id": true, "content": "x"}', error(99999, "参数错误: room_id 应为正整数")),
        ('{"type": "SEND_ALL", "room_id": 9, "content": "x", "token": ["a"]}',
         error(99999, "参数错误: token 应为字符串")),
        ('{"type": "SEND_ALL", "content": "x"}', error(99999, "参数错误: 缺少 room_id")),
        ('{"type": "SEND_ALL", "room_id": 9, "content": "  "}', error(99999, "参数错误: 消息内容不能为空")),
        ('{"type": "SEND_ONE", "send_to_one": "jd:room:9", "content": "x"}',
         error(99999, "参数错误: send_to_one 不是有效的连接标识")),
        ('{"type": "SEND_ALL", "room_id": 10, "content": "x"}', error(99999, "参数错误: room_id 不是当前所在的直播间")),
        ('{"type": "SEND_ALL", "room_id": 9, "content": "' + "长" * 501 + '"}',
         error(99999, "参数错误: 消息内容不能超过 500 个字符")),
    ],
)
async def test_bad_frames_get_an_error_frame(room, raw, expected):
    _, token, ws, bystander = room
    if '"room_id": 10' in raw:
        raw = raw.replace("}", f', "token": "{token}"}}')
    await ws.send_str(raw)
    assert await frame(ws) == expected
    await still_works(ws, bystander, token)


async def test_binary_frames_and_heartbeat(room):
    _, token, ws, bystander = room
    await ws.send_bytes(b'{"type": "LOGIN"}')
    assert await frame(ws) == error(99999, "参数错误: 只接受文本帧")
    await ws.send_str("@heart")
    while True:
        msg = await ws.receive()
        if msg.data == "@heart":
            break
        assert '"OnLine"' in msg.data
    await still_works(ws, bystander, token)


async def test_content_of_500_characters_passes(room, redis_sync, settings):
    _, token, ws, bystander = room
    await send(ws, type="SEND_ALL", room_id=9, content="长" * 500, token=token)
    assert (await frame_of(bystander, "SEND_ALL"))["content"] == "长" * 500


async def test_oversize_frame_closes_with_1009_and_spares_the_others(room):
    client, _, ws, bystander = room
    await ws.send_str('{"type": "SEND_ALL", "room_id": 9, "content": "' + "x" * 4100 + '"}')
    msg = await ws.receive()
    while msg.type is aiohttp.WSMsgType.TEXT:
        msg = await ws.receive()
    assert msg.type is aiohttp.WSMsgType.CLOSE and msg.data == 1009
    other = await login(client, "other")
    speaker, _ = await join(client, 9, other)
    await send(speaker, type="SEND_ALL", room_id=9, content="after", token=other)
    assert (await frame_of(bystander, "SEND_ALL"))["content"] == "after"


async def test_frame_limit_is_a_setting(make_client):
    client = await make_client(chat_frame_limit=100, **FAST)
    ws, _ = await join(client, 9)
    await ws.send_str('{"type": "LOGIN", "room_id": 9, "content": "' + "x" * 100 + '"}')
    msg = await ws.receive()
    while msg.type is aiohttp.WSMsgType.TEXT:
        msg = await ws.receive()
    assert msg.data == 1009


async def test_content_is_sanitised_to_text_and_emoji_images(room):
    _, token, ws, bystander = room
    content = (
        '<b>好</b>球<img class="emoji" src="/h5/images/emoji/1.gif">'
        '<img src="/h5/images/emoji/2.gif" onerror="alert(1)"><script>alert(1)</script>'
        '<img class="emoji" src="https://evil.example/h5/images/emoji/3.gif">'
        '<img class="emoji" src="/h5/images/emoji/../../secret.png">'
        '<img class="emoji" src="javascript:alert(1)"><a href="http://x">链接</a> 1 < 2 & 3'
        '<img src="/h5/images/emoji/4.gif" class="emoji" onload="x()">'
    )
    await send(ws, type="SEND_ALL", room_id=9, content=content, token=token)
    expected = ('好球<img class="emoji" src="/h5/images/emoji/1.gif">链接 1 &lt; 2 &amp; 3'
                '<img class="emoji" src="/h5/images/emoji/4.gif">')
    assert (await frame_of(ws, "SEND_ALL"))["content"] == expected
    assert (await frame_of(bystander, "SEND_ALL"))["content"] == expected
    await send(ws, type="SEND_ALL", room_id=9, content="<script>x</script>", token=token)
    assert await frame(ws) == error(99999, "参数错误: 消息内容不能为空")


async def test_the_pages_emoji_tag_reaches_the_room_and_history(room, sql):
    client, token, ws, bystander = room
    # Exactly what the live page sends for "[微笑][微笑]" (its emoji ship in the H5 build at /h5/).
    content = '<img class="emoji" src="/h5/images/emoji/1.gif"/><img class="emoji" src="/h5/images/emoji/1.gif"/>'
    await send(ws, type="SEND_ALL", room_id=9, content=content, token=token)
    kept = '<img class="emoji" src="/h5/images/emoji/1.gif">' * 2
    assert (await frame_of(ws, "SEND_ALL", myself=True))["content"] == kept
    assert (await frame_of(bystander, "SEND_ALL"))["content"] == kept
    [row] = await rows_eventually(sql, 1, "SELECT content, user_id, user_info FROM chat_messages WHERE room_id = 9")
    [sender] = sql("SELECT id, username, head_img FROM users WHERE username = 'dev-sender'")
    assert row == {"content": kept, "user_id": sender["id"],
                   "user_info": {"username": "dev-sender", "head_img": sender["head_img"]}}


@pytest.mark.parametrize(
    "src",
    [
        "/h5/images/emoji/..\\..\\api\\v1\\user\\info",
        "/h5/images/emoji/%2e%2e/%2e%2e/api/v1/user/info",
        "/h5/images/emoji/%2E%2E%2F%2E%2E%2Fapi",
        "/h5/images/emoji/%252e%252e/x.gif",
        "/h5/images/emoji/sub/1.gif",
        "/h5/images/emoji/1.gif?next=/api/v1/user/info",
        "/h5/images/emoji/1.gif#x",
        "/h5/images/emoji/1.svg",
        "/h5/images/emoji/",
        "//evil.example/h5/images/emoji/1.gif",
        "/h5/images/emoji2/1.gif",
        "/h5/images/emoji/1&#46;gif/..&#47;..&#47;x",
    ],
)
async def test_only_a_plain_file_name_under_the_emoji_path_is_kept(room, src):
    _, token, ws, _ = room
    await send(ws, type="SEND_ALL", room_id=9, content=f'好<img class="emoji" src="{src}"/>', token=token)
    assert (await frame_of(ws, "SEND_ALL", myself=True))["content"] == "好"


async def test_an_encoded_plain_file_name_is_kept_as_its_plain_spelling(room):
    _, token, ws, _ = room
    await send(ws, type="SEND_ALL", room_id=9, content='<img class="emoji" src="/h5/images/emoji/%31&#46;gif">',
               token=token)
    plain = '<img class="emoji" src="/h5/images/emoji/1.gif">'
    assert (await frame_of(ws, "SEND_ALL", myself=True))["content"] == plain


async def test_the_emoji_path_is_a_setting(make_client):
    client = await make_client(chat_emoji_path="/static/emoji/", **FAST)
    token = await login(client, "sender")
    ws, _ = await join(client, 9, token)
    content = '<img class="emoji" src="/h5/images/emoji/1.gif"/><img class="emoji" src="/static/emoji/2.png"/>'
    await send(ws, type="SEND_ALL", room_id=9, content=content, token=token)
    assert (await frame_of(ws, "SEND_ALL", myself=True))["content"] == '<img class="emoji" src="/static/emoji/2.png">'


async def test_rate_limit_per_user_over_all_their_sockets(make_client, redis_sync, settings):
    client = await make_client(chat_rate_count=3, **FAST)
    token = await login(client, "chatty")
    other = await login(client, "quiet")
    ws, _ = await join(client, 9, token)
    second, _ = await join(client, 9, token)
    await send_and_ack(ws, token, 9, "m0", "m1", "m2")
    await send(ws, type="SEND_ALL", room_id=9, content="m3", token=token)
    assert await frame_of(ws, "ERROR") == THROTTLED
    # The same user on another socket is held back too; another user is not.
    await send(second, type="SEND_ALL", room_id=9, content="other socket", token=token)
    assert await frame_of(second, "ERROR") == THROTTLED
    await send(second, type="SEND_ALL", room_id=9, content="another user", token=other)
    assert (await frame_of(second, "SEND_ALL", myself=True))["content"] == "another user"
    assert streamed(redis_sync, settings) == 4


async def test_rate_limit_default_is_5_per_10_seconds(room):
    _, token, ws, _ = room
    await send_and_ack(ws, token, 9, *(f"m{i}" for i in range(5)))
    await send(ws, type="SEND_ALL", room_id=9, content="m5", token=token)
    assert (await frame_of(ws, "ERROR"))["error_code"] == 10010


async def test_the_rate_limit_window_passes(make_client, redis_sync, settings):
    client = await make_client(chat_rate_count=2, chat_rate_window=0.5, **FAST)
    token = await login(client, "patient")
    ws, _ = await join(client, 9, token)
    await send_and_ack(ws, token, 9, "m0", "m1")
    await send(ws, type="SEND_ALL", room_id=9, content="too soon", token=token)
    assert await frame_of(ws, "ERROR") == THROTTLED

    async def accepted_again() -> bool:
        """Send once more; whether it was acknowledged rather than refused (throttled)."""
        await send(ws, type="SEND_ALL", room_id=9, content="later", token=token)
        answer = await frame(ws, skip=("OnLine", "LOGIN"))
        assert answer in ({**answer, "type": "SEND_ALL", "content": "later"}, THROTTLED)
        return answer["type"] == "SEND_ALL"

    await until(accepted_again, "the window to pass")
    # Stored: the two before and the one after (the history stream keeps what it stored for a minute).
    assert streamed(redis_sync, settings) == 3


async def test_a_user_disabled_while_connected_is_refused_soon(make_client, sql):
    client = await make_client(chat_rate_count=1000, chat_rate_address_count=0, **FAST)
    token = await login(client, "soon-banned")
    ws, _ = await join(client, 9, token)
    await send(ws, type="SEND_ALL", room_id=9, content="before", token=token)
    assert (await frame_of(ws, "SEND_ALL", myself=True))["content"] == "before"
    sql("UPDATE users SET is_disabled = true WHERE username = 'dev-soon-banned'")

    async def refused() -> bool:
        await send(ws, type="SEND_ALL", room_id=9, content="still?", token=token)
        answer = await frame(ws, skip=("OnLine", "LOGIN"))
        return answer == error(10004, "用户不存在或被禁用")

    # The sender is checked again every few seconds, not at each message.
    await until(refused, "the disabled user to be refused")
    await send(ws, type="SEND_ALL", room_id=9, content="after", token=token)
    assert await frame(ws, skip=("OnLine", "LOGIN")) == error(10004, "用户不存在或被禁用")


async def test_a_user_muted_with_no_end_while_connected_is_refused_soon_and_heard_soon_after(make_client,
                                                                                            redis_sync, settings, sql):
    """The operators' set of users muted with no end is read with the sender's standing, every few seconds
    (not at each send: one key every send would ask, on one cluster node)."""
    client = await make_client(chat_rate_count=1000, chat_rate_address_count=0, **FAST)
    token = await login(client, "sender")
    ws, _ = await join(client, 9, token)
    bystander, _ = await join(client, 9, by_query=True)
    await still_works(ws, bystander, token)
    user_id = sql("SELECT id FROM users WHERE username = 'dev-sender'")[0]["id"]
    await set_muted(client.app[redis_key], settings, user_id, True)
    assert redis_sync.sismember(muted_key(settings), str(user_id))

    muted = error(10001, "你已被禁言")

    acked: list[str] = []

    async def answer(content: str) -> dict:
        await send(ws, type="SEND_ALL", room_id=9, content=content, token=token)
        got = await frame(ws, skip=("OnLine", "LOGIN"))
        if got["type"] == "SEND_ALL":
            acked.append(got["content"])
        return got

    async def refused() -> bool:
        return await answer("muted?") == muted

    await until(refused, "the muted user to be refused")
    for _ in range(3):
        assert await answer("muted?") == muted
    redis_sync.srem(muted_key(settings), str(user_id))

    async def heard() -> bool:
        got = await answer("again?")
        assert got == muted or (got["type"], got["content"]) == ("SEND_ALL", "again?"), got
        return got["type"] == "SEND_ALL"

    await until(heard, "the user to be heard again")
    # The room heard what was acknowledged (sent before the mute was read), and nothing refused.
    assert acked[-1] == "again?" and acked.count("again?") == 1
    assert [(await frame_of(bystander, "SEND_ALL"))["content"] for _ in acked] == acked


async def test_a_mute_in_one_room_holds_there_and_nowhere_else(room, settings, sql):
    """A moderator's mute for a time in room 9 (the key services/moderation.py sets) refuses the sender
    there, while the same user still talks in room 5."""
    client, token, ws, bystander = room
    user_id = sql("SELECT id FROM users WHERE username = 'dev-sender'")[0]["id"]
    await set_mute_until(client.app[redis_key], settings, user_id, 9, 600)
    await send(ws, type="SEND_ALL", room_id=9, content="muted here?", token=token)
    assert await frame(ws) == error(10001, "你已被禁言")
    elsewhere, _ = await join(client, 5, token)
    await send_and_ack(elsewhere, token, 5, "but not here")
    await client.app[redis_key].delete(mute_key(settings, user_id, 9))
    await still_works(ws, bystander, token)


@pytest.mark.parametrize(
    "change, expected",
    [
        ("member_status = 2", error(30002, "会员信息不存在或已被禁用")),
        ("is_disabled = true", error(10004, "用户不存在或被禁用")),
    ],
)
async def test_disabled_users_cannot_send(make_client, sql, change, expected):
    client = await make_client(**FAST)
    token = await login(client, "banned")
    sql(f"UPDATE users SET {change} WHERE username = 'dev-banned'")
    ws, _ = await join(client, 9)
    await send(ws, type="SEND_ALL", room_id=9, content="hello", token=token)
    assert await frame(ws) == expected


async def test_sending_without_a_valid_token_gets_10003(room, sql):
    client, token, ws, bystander = room
    expected = error(10003, "Token已过期或无效Token")
    await send(bystander, type="SEND_ALL", room_id=9, content="anonymous")
    assert await frame(bystander) == expected
    await send(bystander, type="SEND_ALL", room_id=9, content="forged", token="0" * 32)
    assert await frame(bystander) == expected
    await send(bystander, type="SEND_ONE", send_to_one="0123456789ab-1", content="x")
    assert await frame(bystander) == expected
    # A bad token at LOGIN: the viewer is in (watching needs none) and told the token is no good.
    late, _ = await join(client, 9, "f" * 32)
    assert await frame(late) == expected
    await still_works(ws, bystander, token)


async def test_a_token_given_at_login_serves_later_sends(make_client):
    client = await make_client(**FAST)
    token = await login(client, "remember")
    ws, _ = await join(client, 9, token)
    await send(ws, type="SEND_ALL", room_id=9, content="no token field")
    assert (await frame_of(ws, "SEND_ALL"))["user"]["username"] == "dev-remember"


async def test_protocol_pings_drop_dead_sockets(make_client):
    client = await make_client(chat_heartbeat=0.2, **FAST)
    ws = await client.ws_connect("/ws?room_id=9", autoping=False)
    kinds = set()
    while True:
        msg = await asyncio.wait_for(ws.receive(), 10)
        kinds.add(msg.type)
        if msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR):
            break
    assert aiohttp.WSMsgType.PING in kinds


@pytest.mark.parametrize("room_id", [500, 2**40, 8], ids=["no live", "a made-up id", "an unpublished live"])
async def test_a_room_that_is_no_published_live_takes_no_message(make_client, sql, settings, redis_sync, room_id):
    """What the chat stores is bounded by the club's lives: a SEND_ALL into any other room id (a client's
    choice) is refused with 30005 and nothing is stored or heard; viewing such a room stays harmless."""
    sql("UPDATE lives SET status = 0 WHERE id = 8")
    client = await make_client(**FAST)
    token = await login(client, "sender")
    ws, _ = await join(client, room_id, token)
    listener, _ = await join(client, room_id, by_query=True)
    await send(ws, type="SEND_ALL", room_id=room_id, content="写进不存在的房间", token=token)
    error = await frame_of(ws, "ERROR")
    assert (error["error_code"], error["msg"]) == (30005, "赛事直播不存在")
    assert streamed(redis_sync, settings) == 0
    # Asked again, the same answer (now from what the process keeps); a live's room takes messages.
    await send(ws, type="SEND_ALL", room_id=room_id, content="again", token=token)
    assert (await frame_of(ws, "ERROR"))["error_code"] == 30005
    ws9, _ = await join(client, 9, token)
    await send_and_ack(ws9, token, 9, "真的直播间")
    assert streamed(redis_sync, settings) == 1
    await listener.close()
    resp = await client.get(f"/api/v1/guest/{room_id}", headers={"token": token})
    assert resp.status == 200 and await resp.json() == []


async def test_an_unexpected_failure_of_a_frame_is_answered_and_the_socket_kept(room, caplog, monkeypatch):
    """Whatever goes wrong in handling one frame, the sender gets an error frame (the traceback goes to the
    log) and keeps its socket: the next frame works."""
    client, token, ws, bystander = room
    rooms = client.app[realtime_key].rooms
    works = rooms.takes_messages

    async def broken(room_id: int) -> bool:
        raise AttributeError("'str' object has no attribute 'sub'")

    monkeypatch.setattr(rooms, "takes_messages", broken)
    await send(ws, type="SEND_ALL", room_id=9, content="boom", token=token)
    assert await frame(ws) == error(10000, "发送失败，请稍后重试")
    [record] = [r for r in caplog.records if r.name == "jiandong.realtime.handler"]
    assert record.exc_info and record.exc_info[0] is AttributeError
    monkeypatch.setattr(rooms, "takes_messages", works)
    await still_works(ws, bystander, token)
