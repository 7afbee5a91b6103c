"""Attacks on the live chat as a hostile player makes them: silencing every room by polling a config code,
whispering past a mute, dodging the banned words with look-alike spellings, and outrunning the rate limit
with many sockets. Each asserts what reached the viewers and what was stored (chat history rows, the
history stream in Redis) and that nothing else changed."""

from __future__ import annotations

import typing

import aiohttp
import pytest

from jiandong.keys import realtime_key, redis_key
from jiandong.store.mutes import set_mute_until, set_muted
from tests.helpers.api import login
from tests.helpers.realtime import FAST, frame, frame_of, join, rows_eventually, send, streamed

pytestmark = pytest.mark.usefixtures("chat_rooms")

ROOM, OTHER_ROOM = 9, 8
VALUE = "/api/v1/config/value"
BANNED = "傻瓜\nbad"
# Every code a club's database holds: the pages' own, the console's internal ones, the demo's markers.
CONFIG_ROWS = [
    ("chat_banned_words", "聊天屏蔽词", BANNED),
    ("service_agreement", "服务协议", "<p>服务协议</p>"),
    ("ICP", "备案号", "粤ICP备1号"),
    ("copyright", "版权", "© 建东"),
    ("demo_data", "演示数据", '{"loaded_at": "x"}'),
]
PUBLIC = {"service_agreement", "ICP", "copyright"}
NOT_FOUND = 40004


def error(code: int, msg: str) -> dict[str, typing.Any]:
    return {"type": "ERROR", "error_code": code, "msg": msg}


MUTED = error(10001, "你已被禁言")
THROTTLED = error(10010, "发言太频繁，请稍后再试")


def user_id(sql, code: str) -> int:
    return sql("SELECT id FROM users WHERE username = %s", f"dev-{code}")[0]["id"]


async def poll_every_config_code(client, token: str, sql) -> list[tuple[str, str, int, typing.Any]]:
    """Ask config/value for every code in the database (and one nobody made), one by one as GET and as POST,
    then all at once; the answers as (form, code, status, body)."""
    codes = [r["code"] for r in sql("SELECT code FROM config_values ORDER BY code")] + ["no_such_code"]
    answers = []
    for code in codes:
        resp = await client.get(VALUE, params={"code": code}, headers={"token": token})
        answers.append(("single", code, resp.status, await resp.json()))
        resp = await client.post(VALUE, data=[("code[]", code)], headers={"token": token})
        answers.append(("array", code, resp.status, await resp.json()))
    resp = await client.post(VALUE, data=[("code[]", code) for code in codes], headers={"token": token})
    answers.append(("all", "*", resp.status, await resp.json()))
    return answers


def check_answers(answers: list[tuple[str, str, int, typing.Any]]) -> None:
    """Public codes answer their value; an internal code answers exactly like a code nobody ever made."""
    for form, code, status, body in answers:
        if code in PUBLIC:
            assert status == 200, (form, code, body)
        elif code == "*":
            assert status == 404 and body["error_code"] == NOT_FOUND, body
        else:
            assert (status, body) == (404, {"msg": f"请求配置不存在: {code}", "error_code": NOT_FOUND,
                                            "request_url": VALUE}), (form, code)


async def chat_round(sender, bystander, token: str, n: int) -> None:
    """A message with a banned word reaches the room, masked, and the sender keeps its socket."""
    await send(sender, type="SEND_ALL", room_id=ROOM, content=f"{n} 你是傻瓜", token=token)
    echo = await frame(sender, skip=("OnLine", "LOGIN"))
    assert echo["type"] == "SEND_ALL" and echo["myself"] is True and echo["content"] == f"{n} 你是***"
    got = await frame_of(bystander, "SEND_ALL")
    assert got["content"] == f"{n} 你是***" and got["myself"] is False


@pytest.mark.parametrize("config_first", [True, False], ids=["config-then-chat", "chat-then-config"])
async def test_polling_config_codes_never_silences_the_chat(make_client, sql, redis_sync, settings, config_first):
    sql("INSERT INTO config_values (code, name, value) VALUES " + ", ".join(["(%s, %s, %s)"] * len(CONFIG_ROWS)),
        *[v for row in CONFIG_ROWS for v in row])
    before = sql("SELECT code, value, updated_at FROM config_values ORDER BY code")
    client = await make_client(**FAST)
    attacker = await login(client, "attacker")
    talker = await login(client, "talker")
    sender, _ = await join(client, ROOM, talker)
    bystander, _ = await join(client, ROOM, by_query=True)
    rounds = 0
    for step in range(3):
        answers = await poll_every_config_code(client, attacker, sql) if config_first or step else []
        await chat_round(sender, bystander, talker, rounds)
        rounds += 1
        check_answers(answers)
    rows = await rows_eventually(sql, rounds)
    assert [r["content"] for r in rows] == [f"{n} 你是***" for n in range(rounds)]
    assert sql("SELECT code, value, updated_at FROM config_values ORDER BY code") == before


# -- a mute holds for every way a message can reach the room's viewers --------------------------------------

async def whisper_refused(sender, viewer, marker_ws, token: str, marker_token: str, viewer_uuid: str) -> None:
    """The sender's SEND_ONE to the viewer is refused as muted, and the viewer's next private message is the
    marker sent afterwards by someone else: the refused one never reached it."""
    await send(sender, type="SEND_ONE", send_to_one=viewer_uuid, content="悄悄话", token=token)
    assert await frame(sender, skip=("OnLine", "LOGIN", "LOGOUT")) == MUTED
    await send(marker_ws, type="SEND_ONE", send_to_one=viewer_uuid, content="marker", token=marker_token)
    got = await frame_of(viewer, "SEND_ONE")
    assert got["content"] == "marker"


@pytest.mark.parametrize("where", ["another-room", "no-room"])
@pytest.mark.parametrize("processes", [1, 2], ids=["same-process", "across-processes"])
async def test_a_user_muted_in_a_room_cannot_whisper_to_its_viewers(make_client, sql, redis_sync, settings,
                                                                     where, processes):
    one = await make_client(**FAST)
    two = await make_client(**FAST) if processes == 2 else one
    token = await login(one, "muted")
    marker_token = await login(one, "friend")
    await set_mute_until(one.app[redis_key], settings, user_id(sql, "muted"), ROOM, 600)
    viewer, viewer_uuid = await join(two, ROOM, by_query=True)
    if where == "another-room":
        sender, _ = await join(one, OTHER_ROOM, token)
    else:
        sender = await one.ws_connect("/ws")
    marker_ws, _ = await join(one, OTHER_ROOM, marker_token)
    await whisper_refused(sender, viewer, marker_ws, token, marker_token, viewer_uuid)
    # Nothing stored either (private messages never are) and the mute is as it was.
    assert streamed(redis_sync, settings) == 0 and not sql("SELECT 1 FROM chat_messages")
    assert 0 < redis_sync.ttl(f"{settings.redis_prefix}chat:mute:{user_id(sql, 'muted')}:{ROOM}") <= 600


FOR_GOOD = "for-good"


async def mute(app, settings, uid: int, scope: int | str | None) -> None:
    """Mute the user in a room, everywhere (None) for ten minutes, or with no end (FOR_GOOD: the operators' set)."""
    if scope == FOR_GOOD:
        await set_muted(app[redis_key], settings, uid, True)
    else:
        await set_mute_until(app[redis_key], settings, uid, typing.cast(int | None, scope), 600)


@pytest.mark.parametrize("scope", [None, FOR_GOOD], ids=["everywhere", FOR_GOOD])
@pytest.mark.parametrize("processes", [1, 2], ids=["same-process", "across-processes"])
async def test_a_user_muted_everywhere_reaches_nobody(make_client, sql, redis_sync, settings, processes, scope):
    one = await make_client(**FAST)
    two = await make_client(**FAST) if processes == 2 else one
    token = await login(one, "muted")
    marker_token = await login(one, "friend")
    await mute(one.app, settings, user_id(sql, "muted"), scope)
    viewer, viewer_uuid = await join(two, ROOM, by_query=True)
    sender = await one.ws_connect("/ws")
    marker_ws, _ = await join(one, OTHER_ROOM, marker_token)
    await whisper_refused(sender, viewer, marker_ws, token, marker_token, viewer_uuid)
    await send(sender, type="SEND_ALL", room_id=ROOM, content="广播", token=token)
    assert await frame(sender, skip=("OnLine", "LOGIN")) == MUTED
    assert streamed(redis_sync, settings) == 0 and not sql("SELECT 1 FROM chat_messages")


@pytest.mark.parametrize("scope", [ROOM, None, FOR_GOOD], ids=["muted-in-the-room", "muted-everywhere", FOR_GOOD])
async def test_a_muted_users_name_is_not_announced_to_the_room(make_client, sql, settings, scope):
    """The join text carries the user's own name (user text): a muted user's arrival is not announced."""
    client = await make_client(**FAST)
    token = await login(client, "muted")
    sql("UPDATE users SET username = '加微信 x123 领福利' WHERE username = 'dev-muted'")
    other = await login(client, "friend")
    uid = sql("SELECT id FROM users WHERE username = '加微信 x123 领福利'")[0]["id"]
    await mute(client.app, settings, uid, scope)
    watcher, _ = await join(client, ROOM, by_query=True)
    muted_ws, _ = await join(client, ROOM, token)
    friend_ws, _ = await join(client, ROOM, other)
    event = await frame_of(watcher, "LOGIN")
    assert event["content"] == "dev-friend 进入直播间"
    # Leaving is not announced either; the friend's leaving is the next presence frame.
    await send(muted_ws, type="LOGOUT", room_id=ROOM)
    while (await muted_ws.receive()).type is not aiohttp.WSMsgType.CLOSE:
        pass  # gone (and, were it announced, its leaving published) before the friend leaves
    await send(friend_ws, type="LOGOUT", room_id=ROOM)
    event = await frame(watcher)
    assert event["type"] == "LOGOUT" and event["content"] == "dev-friend 离开直播间"


# -- banned words are found however they are spelled -------------------------------------------------------

LOOKALIKES = {
    "full-width": ("你是ｂａｄ", "你是***"),
    "full-width-upper": ("你是ＢＡＤ!", "你是***!"),
    "zero-width-space": ("你是b\u200bad", "你是***"),
    "zero-width-joiner": ("你是傻\u200d瓜", "你是***"),
    "soft-hyphen": ("你是b\u00adad", "你是***"),
    "cyrillic": ("你是b\u0430d", "你是***"),
    "combining-accent": ("你是ba\u0301d", "你是***"),
    "precomposed-accent": ("你是bád", "你是***"),
    "spaces": ("你是 b a d 吧", "你是 *** 吧"),
    "ideographic-space": ("你是傻\u3000瓜", "你是***"),
    "emoji-tag-inside": ('你是傻<img class="emoji" src="/h5/images/emoji/1.gif"/>瓜', "你是***"),
    "entities-around": ("a&b 傻瓜 > 1", "a&amp;b *** &gt; 1"),
}


@pytest.mark.parametrize("processes", [1, 2], ids=["same-process", "across-processes"])
@pytest.mark.parametrize("way", ["SEND_ALL", "SEND_ONE"])
@pytest.mark.parametrize("case", list(LOOKALIKES))
async def test_banned_words_are_found_in_every_spelling(make_client, sql, case, way, processes):
    """Every way a message reaches a viewer (to the room or to one viewer, on this process or through Redis
    to another) carries the censored text, and so does what is stored."""
    sql("INSERT INTO config_values (code, name, value) VALUES ('chat_banned_words', '聊天屏蔽词', %s)", BANNED)
    client = await make_client(**FAST)
    other = await make_client(**FAST) if processes == 2 else client
    token = await login(client, "talker")
    sender, _ = await join(client, ROOM, token)
    viewer, viewer_uuid = await join(other, ROOM, by_query=True)
    content, expected = LOOKALIKES[case]
    if way == "SEND_ALL":
        await send(sender, type="SEND_ALL", room_id=ROOM, content=content, token=token)
    else:
        await send(sender, type="SEND_ONE", send_to_one=viewer_uuid, content=content, token=token)
    assert (await frame_of(sender, way))["content"] == expected
    assert (await frame_of(viewer, way))["content"] == expected
    if way == "SEND_ALL":
        rows = await rows_eventually(sql, 1)
        assert [r["content"] for r in rows] == [expected]


# -- the rate limit holds per user and per address, whatever the sockets and processes ----------------------

async def own_answer(ws: typing.Any) -> dict[str, typing.Any]:
    """The next answer to this socket's own send: its echo or an error (others' messages passed over)."""
    while True:
        got = await frame(ws, skip=("OnLine", "LOGIN", "LOGOUT"))
        if got["type"] == "ERROR" or got.get("myself") is True:
            return got


async def blast(sockets: list[typing.Any], tokens: list[str], per_socket: int) -> tuple[int, int]:
    """Every socket sends `per_socket` messages; the number acknowledged and the number refused as throttled."""
    for n in range(per_socket):
        for i, ws in enumerate(sockets):
            await send(ws, type="SEND_ALL", room_id=ROOM, content=f"spam {i}.{n}", token=tokens[i])
    acked = throttled = 0
    for ws in sockets:
        for _ in range(per_socket):
            answer = await own_answer(ws)
            if answer == THROTTLED:
                throttled += 1
            else:
                assert answer["type"] == "SEND_ALL" and answer["myself"] is True, answer
                acked += 1
    return acked, throttled


@pytest.mark.parametrize("processes", [1, 2], ids=["one-process", "two-processes"])
async def test_many_sockets_of_one_user_share_one_rate_limit(make_client, sql, redis_sync, settings, processes):
    # The per-user socket cap lifted, so the rate limit alone is what holds the 20 sockets back.
    apps = [await make_client(chat_rate_window=3600, chat_max_per_user=20, **FAST) for _ in range(processes)]
    token = await login(apps[0], "spammer")
    sockets = [(await join(apps[i % processes], ROOM, token))[0] for i in range(20)]
    acked, throttled = await blast(sockets, [token] * 20, 5)
    assert (acked, throttled) == (5, 95)
    await apps[0].app[realtime_key].history.flush()
    assert streamed(redis_sync, settings) == 5
    assert len(sql("SELECT 1 FROM chat_messages")) == 5


async def test_many_users_from_one_address_share_its_rate_limit(make_client, sql, redis_sync, settings):
    client = await make_client(chat_rate_window=3600, chat_rate_address_count=8, **FAST)
    tokens = [await login(client, f"sock{i}") for i in range(10)]
    sockets = [(await join(client, ROOM, t))[0] for t in tokens]
    acked, throttled = await blast(sockets, tokens, 2)
    assert (acked, throttled) == (8, 12)
    await client.app[realtime_key].history.flush()
    assert len(sql("SELECT 1 FROM chat_messages")) == 8


async def test_behind_a_trusted_proxy_the_address_is_the_forwarded_client(make_client, sql, settings):
    client = await make_client(chat_rate_window=3600, chat_rate_address_count=2, trust_proxy=True, **FAST)
    tokens = [await login(client, f"u{i}") for i in range(4)]
    sockets = []
    for i in range(len(tokens)):
        # Two players behind one address, two behind another, all through the proxy on loopback.
        ws = await client.ws_connect(f"/ws?room_id={ROOM}", headers={"X-Forwarded-For": f"203.0.113.{i // 2 + 1}"})
        await frame_of(ws, "LOGIN", myself=True)
        sockets.append(ws)
    acked, throttled = await blast(sockets, tokens, 2)
    assert (acked, throttled) == (4, 4)
    await client.app[realtime_key].history.flush()
    assert len(sql("SELECT 1 FROM chat_messages")) == 4


async def test_many_players_from_one_address_meet_the_default_address_limit(make_client, sql, settings):
    """The address limit by default: one more player than it allows, each sending once, from loopback."""
    client = await make_client(chat_rate_window=3600, **FAST)
    limit = client.app[realtime_key].settings.chat_rate_address_count
    tokens = [await login(client, f"crowd{i}") for i in range(limit + 1)]
    sockets = [(await join(client, ROOM, t))[0] for t in tokens]
    acked, throttled = await blast(sockets, tokens, 1)
    assert (acked, throttled) == (limit, 1)
    await client.app[realtime_key].history.flush()
    assert len(sql("SELECT 1 FROM chat_messages")) == limit
