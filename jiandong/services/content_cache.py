"""In-process cache of hot content reads, invalidated in every process through one Redis channel."""

from __future__ import annotations

import asyncio
import collections
import logging
import time
import typing

from aiohttp import web
from redis.asyncio import Redis

from ..cache import rkey
from ..keys import content_cache_key, redis_key, settings_key
from ..outages import Streak
from ..settings import Settings
from ..stopping import cancel_and_wait

logger = logging.getLogger(__name__)

T = typing.TypeVar("T")
# Content kinds. A change to content drops every cached entry of its kind, since content changes
# are rare and lists and details of a kind depend on each other; a change to one user drops only
# that user's entries (keys `("user", user_id, ...)`).
KINDS = ("competition", "video", "live", "banner", "config", "team", "user")
# Separates kind and entity id in an invalidation message.
SEPARATOR = " "
MAX_ENTRIES = 20_000
RECONNECT_DELAY = 1.0


class ContentCache:
    """`get((kind, ...), loader)` caches loader results for `ttl` seconds; `invalidate(kind)` everywhere."""

    def __init__(self, redis: Redis, settings: Settings) -> None:
        self.redis = redis
        self.ttl = settings.content_cache_ttl
        self.channel = rkey(settings, "content", "changed")
        # Least recently used first; the oldest entries go when MAX_ENTRIES is reached.
        self._entries: collections.OrderedDict[tuple[typing.Any, ...], tuple[float, typing.Any]] = (
            collections.OrderedDict()
        )
        self._loading: dict[tuple[typing.Any, ...], asyncio.Future[typing.Any]] = {}
        # Bumped on every invalidation, so a load that started before it is not stored after it.
        self._generation = 0

    async def get(
        self,
        key: tuple[typing.Any, ...],
        loader: typing.Callable[[], typing.Awaitable[T]],
        ttl: float | None = None,
    ) -> T:
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
            stale = [k for k in self._entries if k[0] == kind and len(k) > 1 and str(k[1]) == ident]
        for k in stale:
            del self._entries[k]

    async def invalidate(self, kind: str, ident: typing.Any = None) -> int:
        """Drop `kind` (or one entity of it) here and tell every other process to drop it too; how many
        processes listening on the channel received it."""
        if kind not in KINDS:
            raise ValueError(f"unknown content kind {kind!r}")
        self.drop_local(kind, ident)
        return await self.redis.publish(self.channel, kind if ident is None else f"{kind}{SEPARATOR}{ident}")

    def _apply(self, message: str) -> None:
        kind, _, ident = message.partition(SEPARATOR)
        self.drop_local(kind, ident or None)

    async def listen(self) -> None:
        """Apply invalidations from other processes; after a lost connection, drop everything."""
        streak = Streak(logger, "content cache invalidations")
        while True:
            try:
                async with self.redis.pubsub() as pubsub:
                    await pubsub.subscribe(self.channel)
                    async for message in pubsub.listen():
                        if message["type"] == "message":
                            self._apply(message["data"])
                        elif message["type"] == "subscribe":
                            # Subscribed anew, here or inside redis-py after a dropped connection:
                            # messages may have been missed while not subscribed.
                            self.drop_local()
                            streak.succeeded()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                streak.failed(exc)
                self.drop_local()
                await asyncio.sleep(RECONNECT_DELAY)


async def content_cache_ctx(app: web.Application) -> typing.AsyncIterator[None]:
    cache = ContentCache(app[redis_key], app[settings_key])
    app[content_cache_key] = cache
    task = asyncio.create_task(cache.listen(), name="content-cache-listener")
    yield
    await cancel_and_wait(task)


async def user_changed(app: web.Application, user_id: int) -> None:
    """Call after any write to a user's row, so no process serves a stale copy of it."""
    await app[content_cache_key].invalidate("user", user_id)


async def publish_invalidation(settings: Settings, kind: str, ident: typing.Any = None) -> int:
    """From outside the server (`server.py invalidate`): every running process drops `kind` (or one
    entity of it), as after a change made through the API; how many processes received it.
    Raises redis.RedisError when the server's Redis (settings.redis_url) cannot be reached."""
    redis = Redis.from_url(settings.redis_url, decode_responses=True)
    try:
        return await ContentCache(redis, settings).invalidate(kind, ident)
    finally:
        await redis.aclose()
