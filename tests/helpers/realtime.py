"""Helpers of the realtime tests: join rooms and read frames through real websockets."""

from __future__ import annotations

import asyncio
import typing

import aiohttp

from jiandong.lib import encoding
from tests.helpers.waiting import WAIT, until

# Fast viewer counts, so tests wait tenths of a second rather than seconds.
FAST = {"chat_online_interval": 0.1, "chat_presence_ttl": 1.0, "chat_history_interval": 0.1}
# The writer of such an app never gets a round in during a test: only a shutdown or another app writes.
IDLE_WRITER = {**FAST, "chat_history_interval": 3600.0}


async def frame(
    ws: aiohttp.ClientWebSocketResponse, *, skip: typing.Iterable[str] = ("OnLine",)
) -> dict[str, typing.Any]:
    """The next JSON frame, passing over viewer counts (by default) and heartbeats."""
    skipped = set(skip)
    while True:
        msg = await asyncio.wait_for(ws.receive(), WAIT)
        assert msg.type is aiohttp.WSMsgType.TEXT, msg
        if msg.data == "@heart":
            continue
        data = encoding.loads(msg.data)
        if data.get("type") not in skipped:
            return data


async def frame_of(ws: aiohttp.ClientWebSocketResponse, kind: str, **match: typing.Any) -> dict[str, typing.Any]:
    """The next frame of a type (and field values), passing over any other."""
    while True:
        msg = await asyncio.wait_for(ws.receive(), WAIT)
        assert msg.type is aiohttp.WSMsgType.TEXT, msg
        if msg.data == "@heart":
            continue
        data = encoding.loads(msg.data)
        if data.get("type") == kind and all(data.get(k) == v for k, v in match.items()):
            return data


async def join(client: typing.Any, room_id: int | None, token: str = "", *, by_query: bool = False) -> tuple[
    aiohttp.ClientWebSocketResponse, str
]:
    """A connection in a room (by LOGIN, or by ?room_id=), and its uuid from its own LOGIN echo."""
    if by_query:
        ws = await client.ws_connect(f"/ws?room_id={room_id}")
    else:
        ws = await client.ws_connect("/ws")
        await ws.send_str(encoding.dumps_str({"type": "LOGIN", "room_id": str(room_id), "token": token}))
    echo = await frame_of(ws, "LOGIN", myself=True)
    return ws, echo["uuid"]


async def send(ws: aiohttp.ClientWebSocketResponse, **fields: typing.Any) -> None:
    await ws.send_str(encoding.dumps_str(fields))


async def rows_eventually(sql: typing.Any, count: int, query: str = "SELECT * FROM chat_messages ORDER BY id") -> list[
    dict[str, typing.Any]
]:
    """The rows of `query` once there are `count` of them (the batch writer runs on its own clock)."""
    await until(lambda: len(sql(query)) >= count, f"{count} rows of {query}")
    return sql(query)


async def send_and_ack(ws: aiohttp.ClientWebSocketResponse, token: str, room_id: int, *contents: str) -> None:
    """SEND_ALL each content and wait for its acknowledgement (the sender's own echo)."""
    for content in contents:
        await send(ws, type="SEND_ALL", room_id=room_id, content=content, token=token)
        assert (await frame_of(ws, "SEND_ALL", myself=True))["content"] == content


class RoomFrames:
    """A subscription of the test to rooms' channels, on a single Redis (SUBSCRIBE) or a cluster (SSUBSCRIBE:
    the channels are shard channels there); `messages()` gives the payloads that arrived, with their room."""

    def __init__(self, client: typing.Any, settings: typing.Any, room_ids: typing.Iterable[int]) -> None:
        from redis.cluster import RedisCluster

        from jiandong.store.room_channels import room_channel

        self.sharded = isinstance(client, RedisCluster)
        self.pubsub = client.pubsub()
        self.rooms = {room_channel(settings, r): r for r in room_ids}
        if self.sharded:
            for channel in self.rooms:
                self.pubsub.ssubscribe(channel)
        else:
            self.pubsub.subscribe(*self.rooms)
        waiting = set(self.rooms)
        while waiting:
            message = self._next(5)
            assert message is not None and message["type"] in ("subscribe", "ssubscribe"), message
            channel = message["channel"]
            waiting.discard(channel.decode() if isinstance(channel, bytes) else channel)

    def _next(self, timeout: float) -> dict[str, typing.Any] | None:
        if self.sharded:
            return typing.cast(dict[str, typing.Any] | None, self.pubsub.get_sharded_message(timeout=timeout))
        return typing.cast(dict[str, typing.Any] | None, self.pubsub.get_message(timeout=timeout))

    def messages(self, wait: float = 0.2) -> list[tuple[int, typing.Any]]:
        """(room id, payload) of what arrived, until nothing more does for `wait` seconds."""
        found = []
        while (message := self._next(wait)) is not None:
            channel = message["channel"]
            found.append((self.rooms[channel.decode() if isinstance(channel, bytes) else channel], message["data"]))
        return found

    def close(self) -> None:
        self.pubsub.close()


def streamed(client: typing.Any, settings: typing.Any) -> int:
    """How many entries the rooms' history streams hold together (every room of the test's prefix)."""
    pattern = settings.redis_prefix + "{room:*}:history"
    return sum(int(client.xlen(key)) for key in client.scan_iter(match=pattern, count=1000))


def push(client: typing.Any, channel: str, data: str | bytes) -> int:
    """Publish as an outside pusher would: PUBLISH on a single Redis, SPUBLISH on a cluster; the receivers."""
    from redis.cluster import RedisCluster

    return int(client.spublish(channel, data) if isinstance(client, RedisCluster) else client.publish(channel, data))
