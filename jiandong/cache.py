"""Redis: the client context and key naming (every key and channel carries the configured prefix)."""

from __future__ import annotations

import typing

from aiohttp import web
from redis.asyncio import BlockingConnectionPool, Redis

from .keys import redis_key, settings_key
from .settings import Settings

REDIS_MAX_CONNECTIONS = 100
REDIS_POOL_TIMEOUT = 10.0


def rkey(settings: Settings, *parts: typing.Any) -> str:
    """`<prefix>part:part:...`: the one way keys and channels are named."""
    return settings.redis_prefix + ":".join(str(p) for p in parts)


async def redis_ctx(app: web.Application) -> typing.AsyncIterator[None]:
    settings = app[settings_key]
    # A blocking pool: past its size a command waits for a free connection instead of failing
    # with "Too many connections" (redis-py's default pool raises at 100 concurrent commands).
    pool = BlockingConnectionPool.from_url(
        settings.redis_url,
        max_connections=REDIS_MAX_CONNECTIONS,
        timeout=REDIS_POOL_TIMEOUT,
        decode_responses=True,
        health_check_interval=30,
        socket_keepalive=True,
        retry_on_timeout=True,
    )
    client = Redis.from_pool(pool)
    await client.ping()
    app[redis_key] = client
    yield
    await client.aclose()
