"""Live rooms across two processes (two apps sharing Redis): fan-out, myself, SEND_ONE, counts, legacy."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

from jiandong.keys import realtime_key, redis_key
from jiandong.realtime.history import open_frame
from jiandong.realtime.hub import Hub
from jiandong.store.kv import publish
from jiandong.store.presence import procs_key, room_viewers
from jiandong.store.room_channels import lobby_channel, room_channel, room_stream
from tests.helpers.api import login
from tests.helpers.realtime import FAST, frame, frame_of, join, push, rows_eventually, send
from tests.helpers.waiting import until

pytestmark = pytest.mark.usefixtures("chat_rooms")


async def test_send_all_reaches_every_viewer_once_with_myself(make_client, sql):
    one = await make_client(**FAST)
    two = await make_client(**FAST)
    token_a = await login(one, "alice")
    token_b = await login(two, "bob")
    sql(
        "UPDATE users SET username = 'Alice', head_img = '/media/a.png'"
        " WHERE openid LIKE 'dev-%%' AND username = 'dev-alice'"
    )
    a, uuid_a = await join(one, 7, token_a)
    b, uuid_b = await join(two, 7, token_b, by_query=False)
    c, _ = await join(two, 7, by_query=True)  # a viewer without a token
    other_room, _ = await join(one, 8, by_query=True)
    assert uuid_a != uuid_b and uuid_a.split("-")[0] != uuid_b.split("-")[0]

    await send(a, type="SEND_ALL", room_id="7", content="开球了", token=token_a,
               user={"username": "forged"}, msg_time=1, myself=True)
    echo = await frame_of(a, "SEND_ALL")
    assert echo["myself"] is True
    assert echo["uuid"] == uuid_a and echo["room_id"] == "7" and echo["content"] == "开球了"
    # The avatar, stored as a path, goes out as an absolute URL (development mode: the sender's host).
    assert echo["user"] == {"username": "Alice", "head_img": str(one.make_url("/media/a.png"))}
    assert isinstance(echo["msg_time"], int) and echo["msg_time"] > 1
    assert "token" not in echo
    for ws in (b, c):
        got = await frame_of(ws, "SEND_ALL")
        assert got == {**echo, "myself": False}

    # From the other process too; then each receiver's next chat frame is that one: nothing twice.
    await send(b, type="SEND_ALL", room_id=7, content="好球", token=token_b)
    assert (await frame_of(b, "SEND_ALL"))["myself"] is True
    for ws in (a, c):
        got = await frame_of(ws, "SEND_ALL")
        assert got["content"] == "好球" and got["myself"] is False and got["uuid"] == uuid_b
        assert got["user"]["username"] == "dev-bob"

    # Kept with the message as stored: a path (guest/:id answers it absolute).
    rows = await rows_eventually(sql, 1, "SELECT user_info FROM chat_messages WHERE content = '开球了'")
    assert rows[0]["user_info"] == {"username": "Alice", "head_img": "/media/a.png"}

    # The other room heard nothing of room 7: its next chat frame is its own room's.
    await send(a, type="LOGIN", room_id=8)
    await send(other_room, type="SEND_ALL", room_id=8, content="x", token=token_a)
    got = await frame_of(other_room, "SEND_ALL")
    assert got["room_id"] == 8 and got["content"] == "x"


async def test_login_and_logout_events_go_to_the_room(make_client):
    one = await make_client(**FAST)
    two = await make_client(**FAST)
    token = await login(one, "carol")
    watcher, _ = await join(two, 3, by_query=True)
    ws, uuid = await join(one, 3, token)
    event = await frame_of(watcher, "LOGIN")
    assert event["uuid"] == uuid and event["myself"] is False
    assert event["content"] == "dev-carol 进入直播间" and event["user"]["username"] == "dev-carol"
    await send(ws, type="LOGOUT", room_id=3)
    event = await frame_of(watcher, "LOGOUT")
    assert event["uuid"] == uuid and event["content"] == "dev-carol 离开直播间"
    msg = await ws.receive()
    assert msg.type is aiohttp.WSMsgType.CLOSE and msg.data == 1000


async def test_send_one_crosses_processes(make_client):
    one = await make_client(**FAST)
    two = await make_client(**FAST)
    token_a = await login(one, "dan")
    token_b = await login(two, "erin")
    a, uuid_a = await join(one, 5, token_a)
    b, uuid_b = await join(two, 5, token_b)
    c, _ = await join(two, 5)
    await send(a, type="SEND_ONE", room_id=5, send_to_one=uuid_b, content="悄悄话", token=token_a)
    echo = await frame_of(a, "SEND_ONE")
    assert echo["myself"] is True and echo["send_to_one"] == uuid_b
    got = await frame_of(b, "SEND_ONE")
    assert got == {**echo, "myself": False}
    # Only the addressee: the third viewer's next chat frame is the room message below.
    await send(b, type="SEND_ALL", room_id=5, content="公开", token=token_b)
    assert (await frame_of(c, "SEND_ALL"))["content"] == "公开"
    # Back the other way, and to a connection that is gone.
    await send(b, type="SEND_ONE", send_to_one=uuid_a, content="收到", token=token_b)
    assert (await frame_of(a, "SEND_ONE"))["content"] == "收到"
    process_a = uuid_a.split("-")[0]
    await send(b, type="SEND_ONE", send_to_one=f"{process_a}-999999", content="?", token=token_b)
    await send(b, type="SEND_ONE", send_to_one="0123456789ab-1", content="?", token=token_b)
    error = await frame_of(b, "ERROR")
    assert error == {"type": "ERROR", "error_code": 10000, "msg": "对方不在线"}


async def test_send_one_within_one_process(make_client):
    client = await make_client(**FAST)
    token = await login(client, "fay")
    a, uuid_a = await join(client, 5, token)
    b, uuid_b = await join(client, 5, by_query=True)
    # No room_id in the frame: the sender's room is named.
    await send(a, type="SEND_ONE", send_to_one=uuid_b, content="悄悄话", token=token)
    echo = await frame_of(a, "SEND_ONE")
    got = await frame_of(b, "SEND_ONE")
    assert got == {**echo, "myself": False} and echo["myself"] is True
    assert set(got) == {"type", "room_id", "uuid", "send_to_one", "content", "user", "msg_time", "myself"}
    assert (got["room_id"], got["uuid"], got["send_to_one"], got["content"]) == ("5", uuid_a, uuid_b, "悄悄话")
    assert got["user"]["username"] == "dev-fay" and isinstance(got["msg_time"], int)
    # A connection of this process that has gone.
    await b.close()
    await send(a, type="SEND_ONE", send_to_one=f"{uuid_b.rsplit('-', 1)[0]}-999999", content="?", token=token)
    assert await frame_of(a, "ERROR") == {"type": "ERROR", "error_code": 10000, "msg": "对方不在线"}


async def test_each_frame_is_sent_as_the_user_of_its_token(make_client):
    client = await make_client(**FAST)
    alice, bob = await login(client, "alice"), await login(client, "bob")
    ws, _ = await join(client, 5, alice)
    await send(ws, type="SEND_ALL", room_id=5, content="我是 alice", token=alice)
    assert (await frame_of(ws, "SEND_ALL", myself=True))["user"]["username"] == "dev-alice"
    # The same connection, another token at once: the sender shown is that token's user.
    await send(ws, type="SEND_ALL", room_id=5, content="我是 bob", token=bob)
    assert (await frame_of(ws, "SEND_ALL", myself=True))["user"]["username"] == "dev-bob"


async def test_joining_by_the_url_is_answered_by_the_login_echo_alone(make_client):
    client = await make_client(**FAST)
    token = await login(client, "gus")
    viewer = await client.ws_connect("/ws?room_id=5")
    assert (await frame_of(viewer, "LOGIN", myself=True))["room_id"] == "5"
    sender, _ = await join(client, 5, token)
    await send(sender, type="SEND_ALL", room_id=5, content="你好", token=token)
    await frame_of(sender, "SEND_ALL", myself=True)
    # Nothing (no error) before the message: joining by ?room_id= asks for no token.
    assert (await frame(viewer, skip=("OnLine", "LOGIN")))["content"] == "你好"


async def test_online_count_is_the_total_of_both_processes(make_client, redis_sync, settings):
    one = await make_client(**FAST)
    two = await make_client(**FAST)
    a, _ = await join(one, 11, by_query=True)
    await frame_of(a, "OnLine", room_id="11", ONLINE=1)
    b, _ = await join(two, 11)
    c, _ = await join(two, 11, by_query=True)
    for ws in (a, b, c):
        assert (await frame_of(ws, "OnLine", ONLINE=3))["room_id"] == "11"
    assert redis_sync.zcard(procs_key(settings)) == 2
    await c.close()
    assert (await frame_of(a, "OnLine", room_id="11"))["ONLINE"] == 2
    # The live list reads the same numbers.
    assert await room_viewers(one.app[redis_key], settings, [11, 12]) == {11: 2, 12: 0}


async def test_legacy_no_room_client_gets_every_room_and_the_total(make_client, redis_sync, settings):
    one = await make_client(**FAST)
    two = await make_client(**FAST)
    token = await login(one, "fay")
    legacy = await two.ws_connect("/ws")
    a, _ = await join(one, 21, token)
    b, _ = await join(one, 22, by_query=True)
    count = await frame_of(legacy, "OnLine", ONLINE=3)
    assert "room_id" not in count
    # It joined the lobby after a count round in no room (the pages join at once: they never do), and the
    # other process learns of it with its next round.
    assert two.app[realtime_key].hub.lobby
    await until(lambda: one.app[realtime_key].lobby_heard, "the other process to learn of the old client")
    await send(a, type="SEND_ALL", room_id=21, content="二十一", token=token)
    got = await frame_of(legacy, "SEND_ALL")
    assert got["room_id"] == 21 and got["content"] == "二十一" and got["myself"] is False
    # A legacy client sends with room_id and never joins; its own echo comes once, marked.
    token_l = await login(two, "gus")
    await send(legacy, type="SEND_ALL", room_id=22, content="二十二", token=token_l)
    echo = await frame_of(legacy, "SEND_ALL")
    assert echo["content"] == "二十二" and echo["myself"] is True
    assert (await frame_of(b, "SEND_ALL"))["content"] == "二十二"
    # Anyone may push to a room by publishing on its channel (e.g. live status changes), and to the old
    # no-room sockets on the lobby channel, as "<room id> <frame>" (sharded pub/sub has no pattern to hear
    # every room's channel by); the server's own pushes go to both.
    push(redis_sync, room_channel(settings, 22), '{"type": "LIVE_STATUS", "room_id": 22, "live_status": 1}')
    assert (await frame_of(b, "LIVE_STATUS"))["live_status"] == 1
    push(redis_sync, lobby_channel(settings), '22 {"type": "LIVE_STATUS", "room_id": 22, "live_status": 2}')
    assert (await frame_of(legacy, "LIVE_STATUS"))["live_status"] == 2
    await one.app[realtime_key].publish(22, {"type": "LIVE_STATUS", "room_id": "22", "live_status": 0})
    assert (await frame_of(b, "LIVE_STATUS"))["live_status"] == 0
    assert (await frame_of(legacy, "LIVE_STATUS"))["live_status"] == 0


def test_a_socket_enters_the_lobby_only_after_a_whole_count_round_in_no_room():
    """The pages connect and join at once: their sockets never reach the lobby (which has every process publish
    every room's frames to the lobby channel); an old client, in no room through a whole round, does."""
    hub = Hub(1 << 20, True)
    old = hub.connect(None, None)  # type: ignore[arg-type]
    page = hub.connect(None, None)  # type: ignore[arg-type]
    assert hub.settle_lobby() == set() and not hub.lobby
    hub.join(page, 1, 1)
    late = hub.connect(None, None)  # type: ignore[arg-type]
    gone = hub.connect(None, None)  # type: ignore[arg-type]
    assert hub.settle_lobby() == {old} and hub.lobby == {old}
    hub.disconnect(gone)
    hub.leave(page)  # out of its room: not an old client for that
    assert hub.settle_lobby() == {late} and hub.lobby == {old, late}
    assert hub.settle_lobby() == set()
    assert Hub(1 << 20, False).settle_lobby() == set()


async def test_legacy_mode_off_keeps_roomless_sockets_quiet(make_client):
    one = await make_client(chat_legacy_mode=False, **FAST)
    token = await login(one, "hal")
    legacy = await one.ws_connect("/ws")
    a, _ = await join(one, 31, token)
    await send(a, type="SEND_ALL", room_id=31, content="hi", token=token)
    await frame_of(a, "SEND_ALL")
    await send(legacy, type="LOGIN")
    error = await frame(legacy)
    assert error == {"type": "ERROR", "error_code": 99999, "msg": "参数错误: 缺少 room_id"}


async def test_a_reader_that_falls_behind_is_disconnected_and_spares_the_room(make_client, redis_sync, settings):
    client = await make_client(chat_buffer_limit=256 * 1024, **FAST)
    hub = client.app[realtime_key].hub
    slow, slow_uuid = await join(client, 51, by_query=True)
    fast, _ = await join(client, 51, by_query=True)
    big = "x" * 200_000
    count = 150  # 30 MB: more than the kernel buffers of both ends hold

    redis = client.app[redis_key]
    # In step with the reader that keeps up: it never has more than one frame waiting.
    for n in range(count):
        await publish(redis, room_channel(settings, 51), f'{{"type": "BIG", "n": {n}, "pad": "{big}"}}')
        assert (await frame_of(fast, "BIG"))["n"] == n
    # The slow socket is gone from the room; reading it now finds its end after what was queued.
    await until(lambda: slow_uuid not in hub.conns, "the slow socket to be dropped")
    assert len(hub.rooms[51]) == 1
    msg = await slow.receive()
    while msg.type is aiohttp.WSMsgType.TEXT:
        msg = await asyncio.wait_for(slow.receive(), 10)
    assert msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR)
    if msg.type is aiohttp.WSMsgType.CLOSE:
        assert msg.data == 1008


@pytest.mark.single_redis("finds the subscriber's connection with CLIENT LIST and cuts it with CLIENT KILL,"
                         " both on the one server")
async def test_room_traffic_resumes_after_the_subscription_is_cut(make_client, redis_sync, settings):
    one = await make_client(**FAST)
    two = await make_client(**FAST)
    token = await login(one, "ida")
    a, _ = await join(one, 61, token)
    b, _ = await join(two, 61)
    process_two = two.app[realtime_key].hub.process_id
    name = f"jiandong-chat-{process_two}"

    def subscribers() -> list[str]:
        # The broker's other connections (TIME, XRANGE) carry its name too.
        return [c["id"] for c in redis_sync.client_list() if c["name"] == name and int(c["sub"]) > 0]

    (old_id,) = subscribers()
    # What a Redis restart does to a subscriber: its connection dropped under it.
    assert redis_sync.execute_command("CLIENT", "KILL", "ID", old_id) == 1
    # Acknowledged while nobody in process two listens: replayed to b once it subscribes again.
    await send(a, type="SEND_ALL", room_id=61, content="meanwhile", token=token)
    await frame_of(a, "SEND_ALL", myself=True)
    broker = two.app[realtime_key].broker
    await until(lambda: [c for c in subscribers() if c != old_id] and broker.connected.is_set(),
                "process two to subscribe again")
    await send(a, type="SEND_ALL", room_id=61, content="again", token=token)
    await frame_of(a, "SEND_ALL", myself=True)
    assert (await frame_of(b, "SEND_ALL"))["content"] == "meanwhile"
    assert (await frame_of(b, "SEND_ALL"))["content"] == "again"
    # "meanwhile" came from the replay. How many frames the replay brought depends on what else the room
    # carried while unsubscribed, so: at least one.
    assert broker.replayed >= 1
    # Each came once: a copy (replayed and heard live) would arrive before this last message.
    await send(a, type="SEND_ALL", room_id=61, content="last", token=token)
    await frame_of(a, "SEND_ALL", myself=True)
    assert (await frame_of(b, "SEND_ALL"))["content"] == "last"


async def test_live_list_online_num_counts_websocket_viewers(make_client, sql):
    one = await make_client(**FAST)
    two = await make_client(**FAST)
    live_id = sql("INSERT INTO lives (title, stream_name, live_status) VALUES ('决赛', 'final', 1)"
                  " RETURNING id")[0]["id"]
    token = await login(one, "viewer")
    await join(one, live_id, by_query=True)
    await join(two, live_id, by_query=True)

    async def both_counted() -> bool:
        resp = await one.get("/api/v1/competition/live?size=1", headers={"token": token})
        assert resp.status == 200
        # The one live on air: the chat rooms made before it have not started.
        return [(i["id"], i["online_num"]) for i in (await resp.json())["data"]] == [(live_id, 2)]

    await until(both_counted, "both viewers in the live list")


async def test_presence_texts_are_html_escaped(make_client, sql):
    client = await make_client(**FAST)
    token = await login(client, "mallory")
    # A WeChat nickname may hold markup: it is data in `user`, text in `content` (rendered as HTML).
    name = '<svg onload=alert(1)> & "x"'
    sql("UPDATE users SET username = %s", name)
    watcher, _ = await join(client, 4, by_query=True)
    ws, _ = await join(client, 4, token)
    event = await frame_of(watcher, "LOGIN")
    assert event["content"] == "&lt;svg onload=alert(1)&gt; &amp; &quot;x&quot; 进入直播间"
    assert event["user"]["username"] == name
    await send(ws, type="LOGOUT", room_id=4)
    event = await frame_of(watcher, "LOGOUT")
    assert event["content"] == "&lt;svg onload=alert(1)&gt; &amp; &quot;x&quot; 离开直播间"


async def test_frames_the_server_composes_carry_the_room_id_as_a_string(make_client):
    client = await make_client(**FAST)
    token = await login(client, "numbers")
    watcher, _ = await join(client, 5)
    ws = await client.ws_connect("/ws")
    # Some clients write the room as a number; the pages write it as a string and compare strictly.
    await send(ws, type="LOGIN", room_id=5, token=token)
    # The watcher hears of the arrival and of the new count, in either order.
    seen: dict[str, dict] = {}
    while not {"LOGIN", "OnLine"} <= set(seen):
        got = await frame(watcher, skip=())
        if got["type"] == "LOGIN" or (got["type"] == "OnLine" and got["ONLINE"] == 2):
            seen[got["type"]] = got
    assert seen["LOGIN"]["room_id"] == "5" and seen["OnLine"]["room_id"] == "5"
    assert (await frame_of(ws, "LOGIN", myself=True))["room_id"] == 5
    await send(ws, type="SEND_ALL", room_id=5, content="数字", token=token)
    # A message keeps its sender's form, for everyone.
    assert (await frame_of(watcher, "SEND_ALL"))["room_id"] == 5
    await ws.close()
    assert (await frame_of(watcher, "LOGOUT"))["room_id"] == "5"


async def test_a_message_after_one_the_process_never_heard_brings_the_missed_one_from_the_stream(
        make_client, redis_sync, settings):
    """Each chat frame names the room's message before it ("prev"): a process that hears a frame whose "prev" it
    never heard (a subscription made on a cluster node in the middle of a failover can skip messages) reads
    what it missed from the room's stream before delivering it."""
    client = await make_client(**FAST)
    token = await login(client, "kim")
    a, _ = await join(client, 71, token)
    b, _ = await join(client, 71)
    await send(a, type="SEND_ALL", room_id=71, content="一", token=token)
    await frame_of(a, "SEND_ALL", myself=True)
    first = await frame_of(b, "SEND_ALL")
    # In the stream, never published: what a subscriber that skipped a message has not heard.
    opened = open_frame({"type": "SEND_ALL", "room_id": 71, "content": "二"})
    missed = redis_sync.xadd(room_stream(settings, 71), {"m": b"{}", "f": opened, "p": first["seq"]})
    await send(a, type="SEND_ALL", room_id=71, content="三", token=token)
    echo = await frame_of(a, "SEND_ALL", myself=True)
    assert echo["prev"] == missed
    got = [await frame_of(b, "SEND_ALL"), await frame_of(b, "SEND_ALL")]
    assert [(f["content"], f["seq"], f["prev"]) for f in got] == [
        ("二", missed, first["seq"]), ("三", echo["seq"], missed)]
    assert client.app[realtime_key].broker.gaps == 1
    # And nothing twice: the next message is the next frame.
    await send(a, type="SEND_ALL", room_id=71, content="四", token=token)
    assert (await frame_of(b, "SEND_ALL"))["content"] == "四"
