"""Room traffic between processes: Redis pub/sub, one channel per room and one per process.

A process subscribes to a room's channel while it holds a socket in that room, to its own channel
(SEND_ONE to a connection it holds) and, while it holds old no-room sockets, to the lobby channel
(every room's frames, facade.py). After a lost connection (a Redis restart) it reconnects and
subscribes again to what its sockets need at that moment.

Pub/sub delivers only to those subscribed at the moment of a PUBLISH, and after a Redis restart a
sender may publish (and be acknowledged) before the subscribers, here or in other processes, are
back. So every chat message carries its position in its room's history stream ("seq", history.py),
each process keeps per room the last position it heard, and a process that subscribes again first
replays from the streams what came after it, then goes on with live messages, dropping those the
replay already delivered. This was chosen over counting a PUBLISH's receivers: how many processes
should hear a room is itself kept in Redis (presence), which a restart empties too, so a short
count could not be told from a right one; the stream is written in the same atomic step as the
PUBLISH, so it holds every acknowledged message, in the order every subscriber hears them.

On a Redis Cluster the channels are shard channels (SSUBSCRIBE), each on the shard owning its slot,
and a subscription can end without the connection ending: when a slot moves to another shard or a
replica takes over (CLUSTER FAILOVER), the node that lost the slot pushes `sunsubscribe` and then
stays silent, and redis-py 8.2 neither reports it nor follows unless its own client meets a MOVED
(redis-cluster.md §1, tested). So the subscriber here treats as a lost subscription, to be made again
from a fresh slot map and followed by the replay: an `sunsubscribe` it did not ask for; a channel's
slot owned by another node than the one it subscribed on (the slot map is read again every
TOPOLOGY_INTERVAL, and whenever a command of this process met a moved slot); a channel silent for
SILENCE_LIMIT although probed (a message published on it that did not come back, as Centrifugo's
idle probe: a node that stopped delivering while its connection looks fine).
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
import typing

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from ..settings import Settings
from ..store.kv import connection_options, open_client, publish, refresh_topology
from ..store.room_channels import lobby_channel, process_channel, room_channel, room_stream
from . import history
from .shards import ShardSubscriber

if typing.TYPE_CHECKING:
    from ..ops.metrics import Metrics

logger = logging.getLogger(__name__)

# Short even after many failures: messages sent after Redis is back reach these rooms only once this
# process subscribes again (replayed then), so a long back-off would delay them.
RETRY_DELAYS = (0.2, 0.5, 1.0)
PING_INTERVAL = 5.0
SUBSCRIBE_WAIT = 5.0
REPLAY_BATCH = 1000
# Cluster only: how often the slot map is read again, how often the slot owners are compared with the
# subscriptions' (redis-py refreshes its slot map after a failed command), how long a probed channel may
# stay silent.
TOPOLOGY_INTERVAL = 30.0
CLUSTER_CHECK_INTERVAL = 0.5
SILENCE_LIMIT = 3 * PING_INTERVAL
# What a probe publishes on a quiet channel: no frame starts with a NUL byte; every process drops it.
PROBE = b"\x00probe"
# A position in a room's stream: (ms, n) of an entry id "<ms>-<n>".
Position = tuple[int, int]


class SubscriptionLost(ConnectionError):
    """A cluster subscription ended without its connection ending (see the module's docstring)."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


class Handlers(typing.Protocol):
    def wants_room(self, room_id: int) -> bool: ...
    def wants_all_rooms(self) -> bool: ...
    def wanted_rooms(self) -> typing.Iterable[int]: ...
    def on_room(self, room_id: int, data: bytes) -> None: ...
    def on_any_room(self, room_id: int, data: bytes) -> None: ...
    def on_process(self, data: bytes) -> None: ...


class Broker:
    """The subscriber side; publishing is a PUBLISH (SPUBLISH on a cluster) on the shared client."""

    def __init__(self, settings: Settings, process_id: str, handlers: Handlers, cluster: bool = False) -> None:
        self.settings = settings
        self.handlers = handlers
        self.cluster = cluster
        self.own_channel = process_channel(settings, process_id).encode()
        self.lobby_channel = lobby_channel(settings).encode()
        self._client_name = f"jiandong-chat-{process_id}"
        self._redis: typing.Any = None
        self._pubsub: typing.Any = None
        self.metrics: Metrics | None = None
        self._subscribed: set[int] = set()
        self._lobby_on = False
        self._lock = asyncio.Lock()
        self._waiting: dict[bytes, list[asyncio.Future[None]]] = {}
        # The room of each room channel subscribed to, for the dispatch.
        self._rooms: dict[bytes, int] = {}
        # Channels this process asked to leave, with how many `sunsubscribe` confirmations are still to come.
        self._leaving: collections.Counter[bytes] = collections.Counter()
        # Cluster: per channel, the node it was subscribed on and when it was last heard (monotonic).
        self._owners: dict[bytes, str] = {}
        self._heard_at: dict[bytes, float] = {}
        # Per room, the stream position of the last chat message heard.
        self._heard: dict[int, Position] = {}
        # Live messages of rooms whose stream is being read (sync_room), dispatched after it.
        self._held: dict[int, list[dict[str, typing.Any]]] = {}
        self.connected = asyncio.Event()
        # Cluster: set by a node reader when a subscription is lost (the error to raise in run()).
        self._lost: asyncio.Future[None] | None = None
        self.replayed = 0
        self.resubscribed = 0
        # Messages heard after one this process never heard (each read again from the stream), and the
        # tasks reading them.
        self.gaps = 0
        self._fills: set[asyncio.Task[None]] = set()

    async def _client(self) -> typing.Any:
        """This subscriber's own client (bytes, not str: a message is forwarded to the sockets as it arrived).

        Named, so an operator (or a test) can find this process's subscriber in CLIENT LIST. No
        retries: redis-py would reconnect a dropped subscriber itself and subscribe again, and what was
        published in between would be lost without this loop knowing to replay it.
        """
        if self._redis is None:
            options = {"decode_responses": False, "client_name": self._client_name}
            if self.cluster:
                self._redis = await open_client(self.settings, True, **options)
            else:
                self._redis = Redis.from_url(self.settings.redis_url, **{
                    **connection_options(self.settings), **options, "retry": Retry(NoBackoff(), 0)})
        return self._redis

    async def sync_room(self, room_id: int) -> None:
        """Subscribe to a room's channel or drop it, as the local sockets need now; returns once Redis confirmed."""
        async with self._lock:
            want = self.handlers.wants_room(room_id)
            if want == (room_id in self._subscribed) or self._pubsub is None:
                return
            channel = room_channel(self.settings, room_id).encode()
            try:
                if want:
                    # What was appended between this read and the subscription is read from the stream once
                    # it is confirmed, the live messages held back meanwhile: none is missed, none doubled.
                    self._heard[room_id] = history.parse_id(await history.last_id(self._redis, self.settings, room_id))
                    self._rooms[channel] = room_id
                    self._held[room_id] = []
                    try:
                        await self._change(channel, True)
                        self._subscribed.add(room_id)
                        await self._replay_room(room_id)
                    finally:
                        for message in self._held.pop(room_id, ()):
                            self._dispatch(message)
                else:
                    self._subscribed.discard(room_id)
                    self._heard.pop(room_id, None)
                    self._rooms.pop(channel, None)
                    await self._change(channel, False)
            except (TimeoutError, RedisError, OSError):
                # The reader reconnects and subscribes to what is wanted then.
                logger.warning("chat: could not change the subscription to room %s", room_id, exc_info=True)

    async def sync_lobby(self) -> None:
        """Subscribe to the lobby channel while old no-room sockets are here."""
        async with self._lock:
            want = self.handlers.wants_all_rooms()
            if want == self._lobby_on or self._pubsub is None:
                return
            try:
                await self._change(self.lobby_channel, want)
                self._lobby_on = want
            except (TimeoutError, RedisError, OSError):
                logger.warning("chat: could not change the subscription to all rooms", exc_info=True)

    async def _change(self, channel: bytes, on: bool) -> None:
        """Subscribe to a channel and wait for Redis's confirmation, or leave it."""
        pubsub = self._pubsub
        if on:
            confirmed = self._expect(channel)
            if self.cluster:
                self._heard_at[channel] = time.monotonic()
                self._owners[channel] = await pubsub.ssubscribe(channel)
            else:
                await pubsub.subscribe(channel)
            await asyncio.wait_for(asyncio.shield(confirmed), SUBSCRIBE_WAIT)
        else:
            self._leaving[channel] += 1
            self._owners.pop(channel, None)
            self._heard_at.pop(channel, None)
            await (pubsub.sunsubscribe(channel) if self.cluster else pubsub.unsubscribe(channel))

    def _expect(self, channel: bytes) -> asyncio.Future[None]:
        future = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(channel, []).append(future)
        return future

    def _confirm(self, channel: bytes) -> None:
        for future in self._waiting.pop(channel, []):
            if not future.done():
                future.set_result(None)

    async def run(self) -> None:
        """Subscribe and dispatch messages until cancelled, subscribing again whenever the subscription is lost."""
        failures = 0
        lost_at: float | None = None
        lost_wall = 0.0
        refresh = False
        while True:
            pubsub = None
            try:
                client = await self._client()
                if refresh:
                    # A fresh slot map first: the subscriptions go to the slots' owners now.
                    await refresh_topology(client)
                pubsub = self._shards(client) if self.cluster else client.pubsub()
                async with self._lock:
                    rooms = set(self.handlers.wanted_rooms())
                    lobby = self.handlers.wants_all_rooms()
                    # A room joined while the subscription was away is owed what was sent since it was lost;
                    # one that lost its sockets meanwhile is not owed anything.
                    start = (int(lost_wall * 1000), 0)
                    heard = {}
                    for room_id in rooms:
                        if room_id in self._heard:
                            heard[room_id] = self._heard[room_id]
                        elif lost_at is not None:
                            heard[room_id] = start
                        else:
                            heard[room_id] = history.parse_id(await history.last_id(client, self.settings, room_id))
                    self._heard = heard
                    self._pubsub = pubsub
                    # The rooms' live messages wait until the replay delivered what came before them.
                    self._held = {room_id: [] for room_id in rooms}
                    try:
                        early = await self._subscribe(pubsub, rooms, lobby)
                        self._subscribed, self._lobby_on = rooms, lobby
                        if lost_at is not None:
                            await self._replay(time.monotonic() - lost_at)
                    finally:
                        held, self._held = self._held, {}
                    for message in early:
                        self._dispatch(message)
                    for messages in held.values():
                        for message in messages:
                            self._dispatch(message)
                if failures:
                    logger.info("chat: subscriptions restored after %d failed attempt(s)", failures)
                    if self.metrics is not None:
                        self.metrics.pubsub_reconnects.inc()
                failures = 0
                lost_at = None
                refresh = False
                self.connected.set()
                await (self._read_cluster(pubsub) if self.cluster else self._read(pubsub))
            except SubscriptionLost as exc:
                # The connection is fine: subscribe again at once, from a fresh slot map, and replay.
                lost_at, lost_wall, refresh = lost_at or time.monotonic(), lost_wall or time.time(), True
                self.resubscribed += 1
                if self.metrics is not None:
                    self.metrics.chat_resubscriptions.labels(exc.reason).inc()
                logger.warning("chat: a subscription was lost (%s); subscribing again", exc)
                continue
            except (RedisError, OSError) as exc:
                failures += 1
                if lost_at is None:
                    lost_at, lost_wall = time.monotonic(), time.time()
                refresh = self.cluster
                if failures == 1:
                    logger.warning("chat: lost the Redis subscription (%s); reconnecting", exc)
            finally:
                # Cancelled too (the app stops): the node readers and their connections go with it.
                await self._close(pubsub)
            await asyncio.sleep(RETRY_DELAYS[min(failures, len(RETRY_DELAYS) - 1)])

    async def _close(self, pubsub: typing.Any) -> None:
        self.connected.clear()
        self._pubsub = None
        # The next subscription replays from what was heard: a fill under way would release its held
        # messages into it (and past what that replay is still to deliver).
        fills, self._fills = self._fills, set()
        for task in fills:
            task.cancel()
        await asyncio.gather(*fills, return_exceptions=True)
        self._held.clear()
        if self._lost is not None:
            # Read, or its error would be reported as never retrieved.
            if self._lost.done():
                self._lost.exception()
            self._lost.cancel()
            self._lost = None
        for futures in self._waiting.values():
            for future in futures:
                future.cancel()
        self._waiting.clear()
        if pubsub is None:
            return
        try:
            await pubsub.aclose()
        except (RedisError, OSError):
            logger.debug("chat: the old subscriber connection did not close cleanly", exc_info=True)

    async def _subscribe(self, pubsub: typing.Any, rooms: set[int], lobby: bool) -> list[dict[str, typing.Any]]:
        """Subscribe to everything at once and wait until Redis confirmed it all; the messages heard meanwhile.

        Only once every subscription is confirmed may the replay read the streams: a message
        appended after that read is heard live.
        """
        self._rooms = {room_channel(self.settings, r).encode(): r for r in rooms}
        expected = {self.own_channel, *self._rooms, *([self.lobby_channel] if lobby else [])}
        self._leaving.clear()
        if self.cluster:
            # The node readers dispatch as they read: the confirmations arrive through _dispatch.
            self._heard_at = dict.fromkeys(expected, time.monotonic())
            confirmed = [self._expect(channel) for channel in expected]
            self._owners = {channel: await pubsub.ssubscribe(channel) for channel in expected}
            try:
                await asyncio.wait_for(asyncio.gather(*confirmed), SUBSCRIBE_WAIT)
            except TimeoutError:
                raise ConnectionError("Redis did not confirm the subscriptions") from None
            return []
        await pubsub.subscribe(*expected)
        early = []
        deadline = time.monotonic() + SUBSCRIBE_WAIT
        while expected:
            message = await pubsub.get_message(timeout=max(0.0, deadline - time.monotonic()))
            if message is None:
                if time.monotonic() >= deadline:
                    raise ConnectionError("Redis did not confirm the subscriptions")
                continue
            if message["type"] in ("subscribe", "ssubscribe"):
                expected.discard(message["channel"])
            else:
                early.append(message)
        return early

    async def _replay(self, outage: float) -> None:
        """Deliver what the rooms here missed while unsubscribed, from their history streams, oldest first."""
        if not self._heard:
            return
        if outage > history.REPLAY_WINDOW:
            logger.warning("chat: unsubscribed for %.0f s, longer than the %.0f s the stream keeps: viewers here"
                           " may have missed messages", outage, history.REPLAY_WINDOW)
        delivered = 0
        for room_id in list(self._heard):
            delivered += await self._replay_room(room_id)
        if delivered:
            logger.info("chat: replayed %d message(s) sent while the subscription was being restored", delivered)

    async def _replay_room(self, room_id: int) -> int:
        """Deliver a room's messages after the last one heard, from its stream; how many."""
        delivered = 0
        after = self._heard.get(room_id)
        if after is None:
            return 0  # no longer listened to here
        cursor = f"{after[0]}-{min(after[1], 2**63 - 1)}".encode()
        while batch := await history.missed(self._redis, self.settings, room_id, cursor, REPLAY_BATCH):
            for stream_id, data in batch:
                position = history.parse_id(stream_id)
                if room_id in self._heard and position > self._heard[room_id]:
                    self._heard[room_id] = position
                    self.handlers.on_room(room_id, data)
                    delivered += 1
                    # Counted as it goes out, not after the last read: a viewer may see it before then.
                    self.replayed += 1
                    if self.metrics is not None:
                        self.metrics.chat_replayed.inc()
            cursor = batch[-1][0]
        return delivered

    def heard(self, room_id: int) -> Position | None:
        """The position of the last chat message of a room this process delivered to its sockets; None
        while the room's subscription is not confirmed (every later message is delivered here)."""
        return self._heard.get(room_id) if room_id in self._subscribed and self._pubsub is not None else None

    async def since(self, room_id: int, seq: str, until: Position, limit: int) -> list[bytes] | None:
        """The frames of a room's messages after `seq` up to `until` (included), oldest first; None when they
        cannot all be given: `seq` is no longer in the stream (trimmed, deleted, a Redis that lost its data)
        or more than `limit` follow it."""
        if self._redis is None or not await self._redis.xrange(room_stream(self.settings, room_id), seq, seq,
                                                                  count=1):
            return None
        found: list[bytes] = []
        cursor = seq.encode()
        while batch := await history.missed(self._redis, self.settings, room_id, cursor, REPLAY_BATCH):
            for stream_id, data in batch:
                if history.parse_id(stream_id) > until:
                    return found
                if len(found) == limit:
                    return None
                found.append(data)
            cursor = batch[-1][0]
        return found

    def _fresh(self, room_id: int, data: bytes) -> bool | None:
        """Whether a room frame is new here (True), one the replay delivered already (False), or one that came
        after a message this process never heard (None: its "prev" is past the last one heard). Moves the
        cursor for a new one.

        Redis delivers a subscription's messages in order, but one made on a node in the middle of a change
        (a replica promoted while its old master still answered, then resynchronised) can skip some and go on:
        only the stream knows.
        """
        tail = history.seq_of(data)
        if tail is None:
            return True  # a frame pushed by something else: not in the stream, never replayed
        last = self._heard.get(room_id)
        if last is not None:
            seq, prev = tail
            position = history.parse_id(seq)
            if position <= last:
                return False
            if prev is not None and history.parse_id(prev) > last:
                return None
            self._heard[room_id] = position
        return True

    def _fill(self, room_id: int, message: dict[str, typing.Any]) -> None:
        """A room missed messages before `message`: hold its live messages, read what was missed from the
        stream, deliver it, then what was held (the replay's duplicates dropped)."""
        self._held[room_id] = [message]
        self.gaps += 1
        if self.metrics is not None:
            self.metrics.chat_gaps.inc()
        task = asyncio.create_task(self._refill(room_id), name=f"chat-fill-{room_id}")
        self._fills.add(task)
        task.add_done_callback(self._fills.discard)

    async def _refill(self, room_id: int) -> None:
        try:
            await self._replay_room(room_id)
        except (RedisError, OSError):
            # Given to the stream as it is: the live messages go on; the next gap or subscription reads again.
            logger.warning("chat: could not read what room %s missed from its stream", room_id, exc_info=True)
        for held in self._held.pop(room_id, ()):
            self._dispatch(held)

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

    def _shards(self, client: typing.Any) -> ShardSubscriber:
        """A subscriber with a connection per node, whose readers hand what they read to this broker at once."""
        self._lost = asyncio.get_running_loop().create_future()
        options = {"decode_responses": False, "client_name": self._client_name,
                   **connection_options(self.settings), "retry": Retry(NoBackoff(), 0)}
        return ShardSubscriber(client, options, PING_INTERVAL, self._on_shard_message, self._on_shard_error)

    def _on_shard_message(self, message: dict[str, typing.Any]) -> None:
        channel = message["channel"]
        if channel in self._heard_at:
            self._heard_at[channel] = time.monotonic()
        if message["type"] != "sunsubscribe":
            self._dispatch(message)
        elif self._leaving[channel]:
            self._leaving[channel] -= 1
        else:
            self._on_shard_error(SubscriptionLost("sunsubscribe", f"Redis ended the subscription to {channel!r}"))

    def _on_shard_error(self, exc: BaseException) -> None:
        if self._lost is not None and not self._lost.done():
            self._lost.set_exception(exc)

    async def _read_cluster(self, pubsub: ShardSubscriber) -> None:
        """Watch the node readers (they dispatch by themselves) and the subscriptions' health, until one is lost."""
        client, lost = self._redis, self._lost
        assert lost is not None
        topology_at = probed_at = time.monotonic()
        while True:
            try:
                await asyncio.wait_for(asyncio.shield(lost), CLUSTER_CHECK_INTERVAL)
            except TimeoutError:
                pass
            if lost.done():
                lost.result()
            now = time.monotonic()
            if now - topology_at > TOPOLOGY_INTERVAL:
                topology_at = now
                await refresh_topology(client)
            for channel, node in self._owners.items():
                if client.get_node_from_key(channel).name != node:
                    raise SubscriptionLost("slots", f"the slot of {channel!r} left the node subscribed on")
            if now - probed_at > PING_INTERVAL:
                probed_at = now
                for channel, at in list(self._heard_at.items()):
                    if now - at > SILENCE_LIMIT:
                        raise SubscriptionLost("silence", f"{channel!r} stayed silent though probed")
                    if now - at > PING_INTERVAL:
                        await publish(client, channel, PROBE)

    def _dispatch(self, message: dict[str, typing.Any]) -> None:
        handlers = self.handlers
        kind, channel, data = message["type"], message["channel"], message["data"]
        try:
            if kind == "message" or kind == "smessage":
                if data == PROBE:
                    return
                room_id = self._rooms.get(channel)
                if room_id is not None:
                    if self._held and room_id in self._held:
                        self._held[room_id].append(message)
                    else:
                        fresh = self._fresh(room_id, data)
                        if fresh:
                            handlers.on_room(room_id, data)
                        elif fresh is None:
                            self._fill(room_id, message)
                elif channel == self.own_channel:
                    handlers.on_process(data)
                elif channel == self.lobby_channel:
                    room, _, frame = data.partition(b" ")
                    handlers.on_any_room(int(room), frame)
            elif kind == "subscribe" or kind == "ssubscribe":
                self._confirm(channel)
        except ValueError:
            logger.warning("chat: ignored a message on %r", channel)
        except Exception:
            # One bad message must not stop the room traffic of the whole process.
            logger.exception("chat: failed to dispatch a message on %r", channel)

    async def aclose(self) -> None:
        if self._redis is not None:
            await self._redis.aclose()
