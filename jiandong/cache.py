"""Redis: the client context and key naming (every key and channel carries the configured prefix)."""

from __future__ import annotations

import typing

from aiohttp import web
from redis.asyncio import Redis

from .keys import redis_key, settings_key
from .settings import Settings


def rkey(settings: Settings, *parts: typing.Any) -> str:
    """`<prefix>part:part:...`: the one way keys and channels are named."""
    return settings.redis_prefix + ":".join(str(p) for p in parts)


async def redis_ctx(app: web.Application) -> typing.AsyncIterator[None]:
    settings = app[settings_key]
    client = Redis.from_url(
        settings.redis_url,
        decode_responses=True,
        health_check_interval=30,
        socket_keepalive=True,
        retry_on_timeout=True,
    )
    await client.ping()
    app[redis_key] = client
    yield
    await client.aclose()
