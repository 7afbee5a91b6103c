"""Room traffic between processes: Redis pub/sub, one channel per room and one per process.

A process subscribes to a room's channel while it holds a socket in that room, to its own channel
(SEND_ONE to a connection it holds) and, while it holds old no-room sockets, to every room's channel
by pattern. After a lost connection (a Redis restart) it reconnects and subscribes again to what
its sockets need at that moment.

Pub/sub delivers only to those subscribed at the moment of a PUBLISH, and after a Redis restart a
sender may publish (and be acknowledged) before the subscribers, here or in other processes, are
back. So every chat message carries its position in the history stream ("seq", history.py), each
process keeps per room the last position it heard, and a process that subscribes again first
replays from the stream what came after it, then goes on with live messages, dropping those the
replay already delivered. This was chosen over counting a PUBLISH's receivers: how many processes
should hear a room is itself kept in Redis (presence), which a restart empties too, so a short
count could not be told from a right one; the stream is written in the same atomic step as the
PUBLISH, so it holds every acknowledged message, in the order every subscriber hears them.
"""

from __future__ import annotations

import asyncio
import logging
import time
import typing

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from ..settings import Settings
from ..store.kv import connection_options, rkey
from ..store.room_channels import process_channel, room_channel
from . import history

if typing.TYPE_CHECKING:
    from ..ops.metrics import Metrics

logger = logging.getLogger(__name__)

# Short even after many failures: messages sent after Redis is back reach these rooms only once this
# process subscribes again (replayed then), so a long back-off would delay them.
RETRY_DELAYS = (0.2, 0.5, 1.0)
PING_INTERVAL = 5.0
SUBSCRIBE_WAIT = 5.0
REPLAY_BATCH = 1000
# Where a cursor starts: before everything (no such entry: ids are "<ms>-<n>" with ms > 0).
Position = tuple[int, int]
LOBBY = None








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
        # No retries: redis-py would reconnect a dropped subscriber itself and subscribe again,
        # and what was published in between would be lost without this loop knowing to replay it.
        self._redis = Redis.from_url(
            redis_url, decode_responses=False, client_name=f"jiandong-chat-{process_id}",
            **{**connection_options(settings), "retry": Retry(NoBackoff(), 0)},
        )
        self._pubsub: typing.Any = None
        self.metrics: Metrics | None = None
        self._subscribed: set[int] = set()
        self._pattern_on = False
        self._lock = asyncio.Lock()
        self._waiting: dict[bytes, list[asyncio.Future[None]]] = {}
        # Per room (LOBBY: the pattern), the stream position of the last chat message heard.
        self._heard: dict[int | None, Position] = {}
        self.connected = asyncio.Event()
        self.replayed = 0

    async def sync_room(self, room_id: int) -> None:
        """Subscribe to a room's channel or drop it, as the local sockets need now; returns once Redis confirmed."""
        async with self._lock:
            want = self.handlers.wants_room(room_id)
            if want == (room_id in self._subscribed) or self._pubsub is None:
                return
            channel = room_channel(self.settings, room_id).encode()
            try:
                if want:
                    self._heard[room_id] = await self._now()
                    confirmed = self._expect(channel)
                    await self._pubsub.subscribe(channel)
                    self._subscribed.add(room_id)
                    await asyncio.wait_for(asyncio.shield(confirmed), SUBSCRIBE_WAIT)
                else:
                    self._subscribed.discard(room_id)
                    self._heard.pop(room_id, None)
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
                    self._heard[LOBBY] = await self._now()
                    confirmed = self._expect(self._pattern)
                    await self._pubsub.psubscribe(self._pattern)
                    self._pattern_on = True
                    await asyncio.wait_for(asyncio.shield(confirmed), SUBSCRIBE_WAIT)
                else:
                    self._pattern_on = False
                    self._heard.pop(LOBBY, None)
                    await self._pubsub.punsubscribe(self._pattern)
            except (TimeoutError, RedisError, OSError):
                logger.warning("chat: could not change the subscription to all rooms", exc_info=True)

    async def _now(self) -> Position:
        """A position just before any message appended from now on, by Redis's clock (the stream's)."""
        seconds, micros = await self._redis.time()
        return seconds * 1000 + micros // 1000 - 1, 2**63

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
        lost_at: float | None = None
        while True:
            pubsub = self._redis.pubsub()
            try:
                async with self._lock:
                    now = await self._now()
                    # A room joined while Redis was away is owed what was sent since then.
                    start = now if lost_at is None else (now[0] - int((time.monotonic() - lost_at) * 1000), 0)
                    rooms = set(self.handlers.wanted_rooms())
                    pattern = self.handlers.wants_all_rooms()
                    # A room (or the lobby) that lost its sockets meanwhile is not owed anything.
                    wanted: set[int | None] = {*rooms, *([LOBBY] if pattern else [])}
                    self._heard = {key: self._heard.get(key, start) for key in wanted}
                    early = await self._subscribe(pubsub, rooms, pattern)
                    self._pubsub, self._subscribed, self._pattern_on = pubsub, rooms, pattern
                    if lost_at is not None:
                        await self._replay(time.monotonic() - lost_at)
                    for message in early:
                        self._dispatch(message)
                if failures:
                    logger.info("chat: subscriptions restored after %d failed attempt(s)", failures)
                    if self.metrics is not None:
                        self.metrics.pubsub_reconnects.inc()
                failures = 0
                lost_at = None
                self.connected.set()
                await self._read(pubsub)
            except (RedisError, OSError) as exc:
                failures += 1
                if lost_at is None:
                    lost_at = time.monotonic()
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

    async def _subscribe(self, pubsub: typing.Any, rooms: set[int], pattern: bool) -> list[dict[str, typing.Any]]:
        """Subscribe to everything at once and wait until Redis confirmed it all; the messages heard meanwhile.

        Only once every subscription is confirmed may the replay read the stream: a message
        appended after that read is heard live.
        """
        expected = {self.own_channel, *(room_channel(self.settings, r).encode() for r in rooms)}
        await pubsub.subscribe(*expected)
        if pattern:
            expected.add(self._pattern)
            await pubsub.psubscribe(self._pattern)
        early = []
        deadline = time.monotonic() + SUBSCRIBE_WAIT
        while expected:
            message = await pubsub.get_message(timeout=max(0.0, deadline - time.monotonic()))
            if message is None:
                if time.monotonic() >= deadline:
                    raise ConnectionError("Redis did not confirm the subscriptions")
                continue
            if message["type"] in ("subscribe", "psubscribe"):
                expected.discard(message["channel"])
            else:
                early.append(message)
        return early

    async def _replay(self, outage: float) -> None:
        """Deliver what the rooms here missed while unsubscribed, from the history stream, oldest first."""
        if not self._heard:
            return
        if outage > history.REPLAY_WINDOW:
            logger.warning("chat: unsubscribed for %.0f s, longer than the %.0f s the stream keeps: viewers here"
                           " may have missed messages", outage, history.REPLAY_WINDOW)
        after = min(self._heard.values())
        cursor = f"{after[0]}-{min(after[1], 2**63 - 1)}".encode()
        delivered = 0
        while batch := await history.missed(self._redis, self.settings, cursor, REPLAY_BATCH):
            for stream_id, room_id, data in batch:
                position = history.parse_id(stream_id)
                if room_id in self._heard and position > self._heard[room_id]:
                    self._heard[room_id] = position
                    self.handlers.on_room(room_id, data)
                    delivered += 1
                    # Counted as it goes out, not after the last read: a viewer may see it before then.
                    self.replayed += 1
                if LOBBY in self._heard and position > self._heard[LOBBY]:
                    self._heard[LOBBY] = position
                    self.handlers.on_any_room(room_id, data)
                    delivered += 1
                    self.replayed += 1
            cursor = batch[-1][0]
        if delivered:
            logger.info("chat: replayed %d message(s) sent while the subscription was being restored", delivered)

    def _fresh(self, key: int | None, data: bytes) -> bool:
        """Whether a room frame is new here: not one the replay delivered already. Moves the cursor."""
        seq = history.seq_of(data)
        if seq is None:
            return True  # a frame pushed by something else: not in the stream, never replayed
        last = self._heard.get(key)
        if last is not None:
            position = history.parse_id(seq)
            if position <= last:
                return False
            self._heard[key] = position
        return True

    async def _read(self, pubsub: typing.Any) -> None:
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
            self._dispatch(message)

    def _dispatch(self, message: dict[str, typing.Any]) -> None:
        handlers = self.handlers
        prefix = self._room_prefix
        kind, channel, data = message["type"], message["channel"], message["data"]
        try:
            if kind == "message":
                if channel == self.own_channel:
                    handlers.on_process(data)
                elif channel.startswith(prefix):
                    room_id = int(channel[len(prefix):])
                    if self._fresh(room_id, data):
                        handlers.on_room(room_id, data)
            elif kind == "pmessage":
                if channel.startswith(prefix):
                    room_id = int(channel[len(prefix):])
                    if self._fresh(LOBBY, data):
                        handlers.on_any_room(room_id, data)
            elif kind in ("subscribe", "psubscribe"):
                self._confirm(channel)
        except ValueError:
            logger.warning("chat: ignored a message on %r", channel)
        except Exception:
            # One bad message must not stop the room traffic of the whole process.
            logger.exception("chat: failed to dispatch a message on %r", channel)

    async def aclose(self) -> None:
        await self._redis.aclose()
