"""In-process cache of hot content reads, invalidated in every process through one Redis channel.

The channel is a plain pub/sub channel on a single Redis and a shard channel on a Redis Cluster (SPUBLISH,
SSUBSCRIBE: the cluster client has no other pub/sub). Invalidations are sent at most once, so whenever a
process may have missed some (its subscription was lost, or made anew) it drops its whole cache.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import logging
import time
import typing

from aiohttp import web
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import ConnectionError as RedisConnectionError

from ..keys import content_cache_key, redis_key, settings_key
from ..lib.stopping import cancel_and_wait
from ..settings import Settings
from ..store.kv import detect_cluster, is_cluster, open_client, publish, refresh_topology, rkey
from ..store.outages import Streak

logger = logging.getLogger(__name__)

T = typing.TypeVar("T")
# Content kinds. A change to content drops every cached entry of its kind, since content changes
# are rare and lists and details of a kind depend on each other; a change to one user drops only
# that user's entries (the shapes of kind "user" take the user's id as their first part).
KINDS = ("competition", "video", "live", "banner", "config", "team", "user")
# Separates kind and entity id in an invalidation message.
SEPARATOR = " "
MAX_ENTRIES = 20_000
RECONNECT_DELAY = 1.0
# Seconds one read of a shard subscription waits for a message (shared out among the cluster's nodes).
SHARD_POLL = 1.0


@dataclasses.dataclass(frozen=True, eq=False)
class Shape(typing.Generic[T]):
    """One kind of cached value, declared once (`shape(...)`) beside the code that caches it: its content
    kind (what invalidates it), a name no other shape has, and the type every value of it has.

    `SHAPE(*parts)` is the key of one entry. Two shapes never share an entry, whatever their parts, and
    a loader that returns another type is refused: a reader gets the type its shape declares or nothing.
    """

    kind: str
    name: str
    holds: type[T]

    def __call__(self, *parts: typing.Hashable) -> Key[T]:
        return Key(self, (self.kind, self.name, *parts))


@dataclasses.dataclass(frozen=True, slots=True)
class Key(typing.Generic[T]):
    """An entry of a shape: `ident` is (kind, shape name, *parts)."""

    shape: Shape[T]
    ident: tuple[typing.Any, ...]


# Every shape's name, so that a second declaration of one stops the import that makes it.
_DECLARED: dict[str, Shape[typing.Any]] = {}


def shape(kind: str, name: str, holds: type[T]) -> Shape[T]:
    """Declare a shape of cached value (at import, once); ValueError for an unknown kind or a name in use."""
    if kind not in KINDS:
        raise ValueError(f"unknown content kind {kind!r}")
    if name in _DECLARED:
        raise ValueError(f"content cache shape {name!r} is declared twice")
    declared = _DECLARED[name] = Shape(kind, name, holds)
    return declared


class ContentCache:
    """`get(SHAPE(*parts), loader)` caches loader results for `ttl` seconds; `invalidate(kind)` everywhere."""

    def __init__(self, redis: Redis, settings: Settings) -> None:
        self.redis = redis
        self.ttl = settings.content_cache_ttl
        # Where stored media paths point in what is cached encoded (web.responses.cached_json), when the
        # settings fix it for the process; else (development) they are made absolute per request.
        self.media_base = settings.fixed_public_base
        self.channel = invalidation_channel(settings)
        # Least recently used first; the oldest entries go when MAX_ENTRIES is reached.
        self._entries: collections.OrderedDict[tuple[typing.Any, ...], tuple[float, typing.Any]] = (
            collections.OrderedDict()
        )
        self._loading: dict[tuple[typing.Any, ...], asyncio.Future[typing.Any]] = {}
        # Bumped on every invalidation, so a load that started before it is not stored after it.
        self._generation = 0

    async def get(
        self,
        entry_key: Key[T],
        loader: typing.Callable[[], typing.Awaitable[T]],
        ttl: float | None = None,
    ) -> T:
        """The entry's value, loaded once by `loader` while it is not cached (a loader's exception is not
        cached). TypeError, and nothing cached, when the loader returns a value its shape does not hold."""
        key = entry_key.ident
        entry = self._entries.get(key)
        if entry is not None and entry[0] > time.monotonic():
            self._entries.move_to_end(key)
            return entry[1]
        pending = self._loading.get(key)
        if pending is not None:
            # One load per key at a time: a crowd arriving on a cold entry waits for the same query.
            return await asyncio.shield(pending)
        future: asyncio.Future[typing.Any] = asyncio.get_running_loop().create_future()
        self._loading[key] = future
        generation = self._generation
        try:
            value = await loader()
            if not isinstance(value, entry_key.shape.holds):
                raise TypeError(f"content cache shape {entry_key.shape.name!r} holds {entry_key.shape.holds.__name__},"
                                f" not {type(value).__name__}")
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # consumed here; waiters re-raise their own copy
            raise
        else:
            future.set_result(value)
            if generation == self._generation:
                self._entries[key] = (time.monotonic() + (self.ttl if ttl is None else ttl), value)
                self._entries.move_to_end(key)
                while len(self._entries) > MAX_ENTRIES:
                    self._entries.popitem(last=False)
            return value
        finally:
            del self._loading[key]

    def drop_local(self, kind: str | None = None, ident: typing.Any = None) -> None:
        self._generation += 1
        if kind is None:
            self._entries.clear()
            return
        if ident is None:
            stale = [k for k in self._entries if k[0] == kind]
        else:
            ident = str(ident)
            # (kind, shape name, entity id, ...)
            stale = [k for k in self._entries if k[0] == kind and len(k) > 2 and str(k[2]) == ident]
        for k in stale:
            del self._entries[k]

    async def invalidate(self, kind: str, ident: typing.Any = None) -> int:
        """Drop `kind` (or one entity of it) here and tell every other process to drop it too; how many
        processes listening on the channel received it (on a cluster: those subscribed at its master)."""
        if kind not in KINDS:
            raise ValueError(f"unknown content kind {kind!r}")
        self.drop_local(kind, ident)
        return await publish(self.redis, self.channel, kind if ident is None else f"{kind}{SEPARATOR}{ident}")

    def _apply(self, message: str) -> None:
        kind, _, ident = message.partition(SEPARATOR)
        self.drop_local(kind, ident or None)

    def _subscribed(self, streak: Streak) -> None:
        # Subscribed anew, here or inside redis-py after a dropped connection: messages may have been
        # missed while not subscribed.
        self.drop_local()
        streak.succeeded()

    async def listen(self) -> None:
        """Apply invalidations from other processes; after a lost connection, drop everything."""
        streak = Streak(logger, "content cache invalidations")
        receive = self._receive_sharded if is_cluster(self.redis) else self._receive
        while True:
            try:
                await receive(streak)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                streak.failed(exc)
                self.drop_local()
                await asyncio.sleep(RECONNECT_DELAY)

    async def _receive(self, streak: Streak) -> None:
        async with self.redis.pubsub() as pubsub:
            await pubsub.subscribe(self.channel)
            async for message in pubsub.listen():
                if message["type"] == "message":
                    self._apply(message["data"])
                elif message["type"] == "subscribe":
                    self._subscribed(streak)

    async def _receive_sharded(self, streak: Streak) -> None:
        """On a cluster; returns when the server ended the subscription.

        redis-py keeps its map of the cluster until one of this client's commands meets a MOVED or a dead
        node, which may be long: a node that loses the channel's slot (a slot migration, a failover)
        unsubscribes us with no error, and after a node died the map still names it. So the map is read
        afresh before every subscription, and a subscription whose node no longer owns the slot in the
        client's map (refreshed by any command of the app) is made again too.
        """
        cluster = typing.cast(RedisCluster, self.redis)

        def owner() -> str | None:
            node = cluster.get_node_from_key(self.channel)
            return None if node is None else node.name

        await refresh_topology(cluster)
        async with cluster.pubsub() as pubsub:
            await pubsub.ssubscribe(self.channel)
            subscribed_on = owner()
            while owner() == subscribed_on:
                message = await pubsub.get_sharded_message(timeout=SHARD_POLL)
                if message is None:
                    if not pubsub.node_pubsub_mapping:
                        # No node holds the subscription: a read would return at once, forever.
                        raise RedisConnectionError("the invalidation channel has no subscription")
                elif message["type"] == "smessage":
                    self._apply(message["data"])
                elif message["type"] == "ssubscribe":
                    self._subscribed(streak)
                elif message["type"] == "sunsubscribe":
                    # Never asked for: the server dropped the channel.
                    break
        self.drop_local()
        logger.info("content cache invalidations: the cluster moved the channel; subscribing again")


async def content_cache_ctx(app: web.Application) -> typing.AsyncIterator[None]:
    cache = ContentCache(app[redis_key], app[settings_key])
    app[content_cache_key] = cache
    task = asyncio.create_task(cache.listen(), name="content-cache-listener")
    yield
    await cancel_and_wait(task)


def invalidation_channel(settings: Settings) -> str:
    """The channel every process hears content invalidations on."""
    return rkey(settings, "content", "changed")


async def user_changed(app: web.Application, user_id: int) -> None:
    """Call after any write to a user's row, so no process serves a stale copy of it."""
    await app[content_cache_key].invalidate("user", user_id)


async def publish_invalidation(settings: Settings, kind: str, ident: typing.Any = None) -> int:
    """From outside the server (`server.py invalidate`): every running process drops `kind` (or one
    entity of it), as after a change made through the API; how many processes received it.
    Raises redis.RedisError when the server's Redis (settings.redis_url) cannot be reached."""
    redis = await open_client(settings, await detect_cluster(settings.redis_url, settings), decode_responses=True)
    try:
        return await ContentCache(redis, settings).invalidate(kind, ident)
    finally:
        await redis.aclose()
