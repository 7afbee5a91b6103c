"""Chat history: stream first, batch writer, flush on shutdown, and close with 1001."""

from __future__ import annotations

import time

import aiohttp
import pytest

from jiandong.keys import realtime_key
from jiandong.realtime.history import REPLAY_WINDOW, entry, legacy_stream
from jiandong.store.room_channels import history_rooms, room_stored, room_stream
from tests.helpers.api import login
from tests.helpers.realtime import (
    FAST,
    IDLE_WRITER,
    join,
    rows_eventually,
    send_and_ack,
)
from tests.helpers.waiting import until

pytestmark = pytest.mark.usefixtures("chat_rooms")


async def test_messages_are_written_in_batches_from_the_stream(make_client, sql, redis_sync, settings):
    paused = await make_client(**IDLE_WRITER)
    token = await login(paused, "writer")
    ws, uuid = await join(paused, 4, token)
    await send_and_ack(ws, token, 4, "一", "二", "三")
    # Acknowledged = in the stream; nothing in the table yet.
    assert redis_sync.xlen(room_stream(settings, 4)) == 3
    assert sql("SELECT count(*) AS n FROM chat_messages") == [{"n": 0}]
    await make_client(**FAST)  # another process, whose writer takes the lease and drains the stream
    rows = await rows_eventually(sql, 3, "SELECT *, xmin::text AS tx FROM chat_messages ORDER BY id")
    user = sql("SELECT id, username, head_img FROM users WHERE username = 'dev-writer'")[0]
    assert [r["content"] for r in rows] == ["一", "二", "三"]
    for row in rows:
        assert row["room_id"] == 4 and row["user_id"] == user["id"] and row["uuid"] == uuid
        assert row["user_info"] == {"username": "dev-writer", "head_img": user["head_img"]}
        assert row["stream_id"] and row["msg_time"] is not None
    # One statement in one transaction for the batch, not an INSERT per message.
    assert len({r["tx"] for r in rows}) == 1
    # The writer notes how far it stored; the entries stay a while for replays to subscribers.
    last = redis_sync.xrevrange(room_stream(settings, 4), count=1)[0][0]
    await until(lambda: redis_sync.get(room_stored(settings, 4)) == last, "the writer to note how far it stored")
    assert redis_sync.xlen(room_stream(settings, 4)) == 3


async def test_a_replayed_stream_entry_is_stored_once(make_client, sql, redis_sync, settings):
    client = await make_client(**IDLE_WRITER)
    token = await login(client, "twice")
    ws, _ = await join(client, 4, token)
    await send_and_ack(ws, token, 4, "once")
    history = client.app[realtime_key].history
    # A writer killed after its commit but before it noted how far it stored leaves the entry for the next.
    entries = redis_sync.xrange(room_stream(settings, 4))
    await history.store(entries)
    assert await history.flush() == 1
    assert redis_sync.get(room_stored(settings, 4)) == entries[0][0]
    assert sql("SELECT content FROM chat_messages") == [{"content": "once"}]
    assert await history.flush() == 0


async def test_stored_entries_leave_the_stream_after_the_replay_window(make_client, sql, redis_sync, settings):
    client = await make_client(**IDLE_WRITER)
    history = client.app[realtime_key].history
    old = int(time.time() * 1000) - int(REPLAY_WINDOW * 1000) - 5000
    message = entry(4, 0, "000000000000-1", "旧消息", {"username": "", "head_img": ""}, old / 1000)
    redis_sync.xadd(room_stream(settings, 4), {"m": message, "f": b'{"type":"SEND_ALL"'}, id=f"{old}-0")
    redis_sync.xadd(room_stream(settings, 4), {"m": message.replace("旧".encode(), "新".encode()),
                                              "f": b'{"type":"SEND_ALL"'})
    redis_sync.sadd(history_rooms(settings), 4)
    assert await history.flush() == 2
    # Both stored; only the one older than the window leaves the stream.
    assert sorted(r["content"] for r in sql("SELECT content FROM chat_messages")) == ["新消息", "旧消息"]
    kept = [fields["m"] for _, fields in redis_sync.xrange(room_stream(settings, 4))]
    assert kept == [message.decode().replace("旧", "新")]


async def test_shutdown_closes_sockets_with_1001_and_flushes_history(make_client, sql, redis_sync, settings):
    client = await make_client(**IDLE_WRITER)
    token = await login(client, "leaving")
    ws, _ = await join(client, 6, token)
    watcher, _ = await join(client, 6)
    await send_and_ack(ws, token, 6, "bye")
    assert sql("SELECT count(*) AS n FROM chat_messages") == [{"n": 0}]
    await client.server.close()
    for sock in (ws, watcher):
        msg = await sock.receive()
        while msg.type is aiohttp.WSMsgType.TEXT:
            msg = await sock.receive()
        assert msg.type is aiohttp.WSMsgType.CLOSE and msg.data == 1001
    assert [r["content"] for r in sql("SELECT content FROM chat_messages")] == ["bye"]
    assert redis_sync.get(room_stored(settings, 6)) == redis_sync.xrange(room_stream(settings, 6))[-1][0]
    # Its viewers left the counts at once.
    assert redis_sync.zcard(settings.redis_prefix + "presence:procs") == 0


async def test_each_room_has_its_own_stream_and_equal_entry_ids_in_two_rooms_are_both_stored(make_client, sql,
                                                                                              redis_sync, settings):
    client = await make_client(**IDLE_WRITER)
    history = client.app[realtime_key].history
    now = int(time.time() * 1000)
    for room, content in ((4, "四号"), (5, "五号")):
        message = entry(room, 0, "000000000000-1", content, {"username": "", "head_img": ""}, now / 1000)
        # The same id in two rooms: ids are unique within a room's stream only.
        redis_sync.xadd(room_stream(settings, room), {"m": message, "f": b'{"type":"SEND_ALL"'}, id=f"{now}-0")
        redis_sync.sadd(history_rooms(settings), room)
    assert await history.flush() == 2
    assert sql("SELECT room_id, stream_id, content FROM chat_messages ORDER BY room_id") == [
        {"room_id": 4, "stream_id": f"{now}-0", "content": "四号"},
        {"room_id": 5, "stream_id": f"{now}-0", "content": "五号"}]


async def test_a_room_leaves_the_writers_list_once_its_stream_is_empty_and_comes_back_with_a_message(
        make_client, sql, redis_sync, settings):
    client = await make_client(**{**IDLE_WRITER, "chat_online_interval": 3600.0, "chat_presence_ttl": 7200.0})
    token = await login(client, "list")
    ws, _ = await join(client, 4, token)
    await send_and_ack(ws, token, 4, "一")
    assert redis_sync.smembers(history_rooms(settings)) == {"4"}
    history = client.app[realtime_key].history
    assert await history.flush() == 1
    # Stored but within the replay window: it stays in the stream, and the room in the list.
    assert redis_sync.smembers(history_rooms(settings)) == {"4"}
    redis_sync.xtrim(room_stream(settings, 4), maxlen=0)
    assert await history.flush() == 0
    assert redis_sync.smembers(history_rooms(settings)) == set()
    # Listed by this process a moment ago: back in the list with the next relist (each count interval).
    await send_and_ack(ws, token, 4, "二")
    await history.relist()
    assert redis_sync.smembers(history_rooms(settings)) == {"4"}
    assert await history.flush() == 1
    assert [r["content"] for r in sql("SELECT content FROM chat_messages ORDER BY id")] == ["一", "二"]


async def test_what_the_shared_stream_of_earlier_versions_holds_is_stored_then_it_goes(make_client, sql, redis_sync,
                                                                                         settings):
    client = await make_client(**IDLE_WRITER)
    history = client.app[realtime_key].history
    key, stored = legacy_stream(settings)
    now = int(time.time() * 1000)
    for n, room in enumerate((4, 7)):
        message = entry(room, 0, "000000000000-1", f"旧{room}", {"username": "", "head_img": ""}, now / 1000)
        redis_sync.xadd(key, {"r": str(room), "m": message, "f": b'{"type":"SEND_ALL"'}, id=f"{now}-{n}")
    redis_sync.set(stored, "0-0")
    assert await history.flush() == 2
    assert sql("SELECT room_id, content FROM chat_messages ORDER BY room_id") == [
        {"room_id": 4, "content": "旧4"}, {"room_id": 7, "content": "旧7"}]
    assert redis_sync.exists(key, stored) == 0
