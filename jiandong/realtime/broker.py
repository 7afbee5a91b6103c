"""Room traffic between processes: Redis pub/sub, one channel per room and one per process.

A process subscribes to a room's channel while it holds a socket in that room, to its own channel
(SEND_ONE to a connection it holds) and, while it holds old no-room sockets, to every room's channel
by pattern. After a lost connection (a Redis restart) it reconnects and subscribes again to what
its sockets need at that moment.
"""

from __future__ import annotations

import asyncio
import logging
import time
import typing

from redis.asyncio import Redis
from redis.exceptions import RedisError

from ..cache import rkey
from ..settings import Settings

logger = logging.getLogger(__name__)

RETRY_DELAYS = (0.2, 0.5, 1.0, 1.0, 2.0)
PING_INTERVAL = 5.0
SUBSCRIBE_WAIT = 5.0


def room_channel(settings: Settings, room_id: int) -> str:
    """The channel of a room's server frames (JSON text), the contract for anyone pushing to a room."""
    return rkey(settings, "room", room_id)


def process_channel(settings: Settings, process_id: str) -> str:
    return rkey(settings, "proc", process_id)


class Handlers(typing.Protocol):
    def wants_room(self, room_id: int) -> bool: ...
    def wants_all_rooms(self) -> bool: ...
    def wanted_rooms(self) -> typing.Iterable[int]: ...
    def on_room(self, room_id: int, data: bytes) -> None: ...
    def on_any_room(self, room_id: int, data: bytes) -> None: ...
    def on_process(self, data: bytes) -> None: ...


class Broker:
    """The subscriber side; publishing is a plain PUBLISH on the shared client."""

    def __init__(self, redis_url: str, settings: Settings, process_id: str, handlers: Handlers) -> None:
        self.settings = settings
        self.handlers = handlers
        self.own_channel = process_channel(settings, process_id).encode()
        self._room_prefix = rkey(settings, "room", "").encode()
        self._pattern = rkey(settings, "room", "*").encode()
        # Bytes, not str: a message is forwarded to the sockets as the bytes it arrived as.
        # Named, so an operator (or a test) can find this process's subscriber in CLIENT LIST.
        self._redis = Redis.from_url(
            redis_url, decode_responses=False, socket_keepalive=True, client_name=f"jiandong-chat-{process_id}"
        )
        self._pubsub: typing.Any = None
        self._subscribed: set[int] = set()
        self._pattern_on = False
        self._lock = asyncio.Lock()
        self._waiting: dict[bytes, list[asyncio.Future[None]]] = {}
        self.connected = asyncio.Event()

    async def sync_room(self, room_id: int) -> None:
        """Subscribe to a room's channel or drop it, as the local sockets need now; returns once Redis confirmed."""
        async with self._lock:
            want = self.handlers.wants_room(room_id)
            if want == (room_id in self._subscribed) or self._pubsub is None:
                return
            channel = room_channel(self.settings, room_id).encode()
            try:
                if want:
                    confirmed = self._expect(channel)
                    await self._pubsub.subscribe(channel)
                    self._subscribed.add(room_id)
                    await asyncio.wait_for(asyncio.shield(confirmed), SUBSCRIBE_WAIT)
                else:
                    self._subscribed.discard(room_id)
                    await self._pubsub.unsubscribe(channel)
            except (TimeoutError, RedisError, OSError):
                # The reader reconnects and subscribes to what is wanted then.
                logger.warning("chat: could not change the subscription to room %s", room_id, exc_info=True)

    async def sync_lobby(self) -> None:
        """Subscribe to every room's channel by pattern while old no-room sockets are here."""
        async with self._lock:
            want = self.handlers.wants_all_rooms()
            if want == self._pattern_on or self._pubsub is None:
                return
            try:
                if want:
                    confirmed = self._expect(self._pattern)
                    await self._pubsub.psubscribe(self._pattern)
                    self._pattern_on = True
                    await asyncio.wait_for(asyncio.shield(confirmed), SUBSCRIBE_WAIT)
                else:
                    self._pattern_on = False
                    await self._pubsub.punsubscribe(self._pattern)
            except (TimeoutError, RedisError, OSError):
                logger.warning("chat: could not change the subscription to all rooms", exc_info=True)

    def _expect(self, channel: bytes) -> asyncio.Future[None]:
        future = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(channel, []).append(future)
        return future

    def _confirm(self, channel: bytes) -> None:
        for future in self._waiting.pop(channel, []):
            if not future.done():
                future.set_result(None)

    async def run(self) -> None:
        """Subscribe and dispatch messages until cancelled, reconnecting whenever the connection drops."""
        failures = 0
        while True:
            pubsub = self._redis.pubsub()
            try:
                async with self._lock:
                    await pubsub.subscribe(self.own_channel)
                    rooms = set(self.handlers.wanted_rooms())
                    if rooms:
                        await pubsub.subscribe(*(room_channel(self.settings, r) for r in rooms))
                    pattern = self.handlers.wants_all_rooms()
                    if pattern:
                        await pubsub.psubscribe(self._pattern)
                    self._pubsub, self._subscribed, self._pattern_on = pubsub, rooms, pattern
                if failures:
                    logger.info("chat: subscriptions restored after %d failed attempt(s)", failures)
                failures = 0
                self.connected.set()
                await self._read(pubsub)
            except (RedisError, OSError) as exc:
                failures += 1
                if failures == 1:
                    logger.warning("chat: lost the Redis subscription (%s); reconnecting", exc)
            finally:
                self.connected.clear()
                self._pubsub = None
                for futures in self._waiting.values():
                    for future in futures:
                        future.cancel()
                self._waiting.clear()
                try:
                    await pubsub.aclose()
                except (RedisError, OSError):
                    logger.debug("chat: the old subscriber connection did not close cleanly", exc_info=True)
            await asyncio.sleep(RETRY_DELAYS[min(failures, len(RETRY_DELAYS) - 1)])

    async def _read(self, pubsub: typing.Any) -> None:
        handlers = self.handlers
        prefix, own = self._room_prefix, self.own_channel
        heard = time.monotonic()
        while True:
            message = await pubsub.get_message(timeout=PING_INTERVAL)
            if message is None:
                # A quiet connection is asked for a sign of life: one that stays silent is half-open
                # (a network cut Redis never saw) and is replaced like a closed one.
                if time.monotonic() - heard > 3 * PING_INTERVAL:
                    raise ConnectionError("no answer from Redis on the subscriber connection")
                await pubsub.ping()
                continue
            heard = time.monotonic()
            kind, channel, data = message["type"], message["channel"], message["data"]
            try:
                if kind == "message":
                    if channel == own:
                        handlers.on_process(data)
                    elif channel.startswith(prefix):
                        handlers.on_room(int(channel[len(prefix):]), data)
                elif kind == "pmessage":
                    if channel.startswith(prefix):
                        handlers.on_any_room(int(channel[len(prefix):]), data)
                elif kind in ("subscribe", "psubscribe"):
                    self._confirm(channel)
            except ValueError:
                logger.warning("chat: ignored a message on %r", channel)
            except Exception:
                # One bad message must not stop the room traffic of the whole process.
                logger.exception("chat: failed to dispatch a message on %r", channel)

    async def aclose(self) -> None:
        await self._redis.aclose()
