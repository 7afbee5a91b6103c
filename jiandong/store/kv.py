"""Redis: the client context and key naming (every key and channel carries the configured prefix)."""

from __future__ import annotations

import typing

from aiohttp import web
from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError

from ..keys import redis_key, settings_key
from ..settings import Settings

REDIS_MAX_CONNECTIONS = 100


def rkey(settings: Settings, *parts: typing.Any) -> str:
    """`<prefix>part:part:...`: the one way keys and channels are named."""
    return settings.redis_prefix + ":".join(str(p) for p in parts)


def connection_options(settings: Settings) -> dict[str, typing.Any]:
    """What every Redis connection of ours is opened with: a command fails within redis_timeout.

    redis-py 8 would otherwise retry a failed command ten times with backoff, so a Redis that is
    down or frozen would hold each request far longer than the timeout. One immediate retry on a
    broken connection is kept: after a Redis restart each pooled connection fails once.
    """
    return {
        "socket_timeout": settings.redis_timeout,
        "socket_connect_timeout": settings.redis_timeout,
        "socket_keepalive": True,
        "retry": Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,)),
    }


async def redis_ctx(app: web.Application) -> typing.AsyncIterator[None]:
    settings = app[settings_key]
    # A blocking pool: past its size a command waits (up to redis_timeout) for a free connection
    # instead of failing with "Too many connections" at once.
    pool = BlockingConnectionPool.from_url(
        settings.redis_url,
        max_connections=REDIS_MAX_CONNECTIONS,
        timeout=settings.redis_timeout,
        decode_responses=True,
        health_check_interval=30,
        **connection_options(settings),
    )
    client = Redis.from_pool(pool)
    await client.ping()
    app[redis_key] = client
    yield
    await client.aclose()
