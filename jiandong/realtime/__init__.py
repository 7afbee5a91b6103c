"""The live rooms: wiring of the hub, the Redis broker, presence and chat history into the app."""

from __future__ import annotations

import asyncio
import logging
import typing

from aiohttp import web

from ..keys import content_cache_key, metrics_key, pg_key, realtime_key, redis_key, settings_key, tokens_key
from ..lib.stopping import cancel_and_wait
from ..services.banned_words import BannedWords
from ..store import presence
from .facade import Realtime
from .history import history_ctx
from .rooms import Rooms

logger = logging.getLogger(__name__)

__all__ = ["Realtime", "setup"]

CHAT_PATHS = ("/ws", "/")


async def realtime_ctx(app: web.Application) -> typing.AsyncIterator[None]:
    settings = app[settings_key]
    realtime = Realtime(settings, app[redis_key], app[pg_key], app[tokens_key], app[metrics_key],
                        Rooms(app[pg_key], app[content_cache_key]), BannedWords(app[pg_key], app[content_cache_key]))
    app[realtime_key] = realtime
    broker_task = asyncio.create_task(realtime.broker.run(), name="chat-broker")
    realtime.tasks += [
        broker_task,
        asyncio.create_task(realtime.hub.reap_slow(), name="chat-reaper"),
        asyncio.create_task(realtime.count_loop(), name="chat-counts"),
        asyncio.create_task(realtime.whisper_loop(), name="chat-whispers"),
    ]
    try:
        await asyncio.wait_for(realtime.broker.connected.wait(), 10)
    except TimeoutError:
        logger.warning("chat: no Redis subscription yet; rooms start working once it connects")
    yield
    await cancel_and_wait(*realtime.tasks)
    try:
        await presence.withdraw(realtime.redis, settings, realtime.hub.process_id)
    except Exception:
        logger.warning("chat: could not withdraw the viewer counts; they expire on their own", exc_info=True)
    await realtime.broker.aclose()


async def close_sockets(app: web.Application) -> None:
    """on_shutdown: every chat socket closed with 1001 before the contexts close."""
    realtime = app.get(realtime_key)
    if realtime is not None:
        await realtime.hub.close_all()


def setup(app: web.Application) -> None:
    """Routes, contexts and the shutdown hook of the live rooms (after the Redis and PostgreSQL contexts)."""
    from .handler import chat

    app.cleanup_ctx.extend([realtime_ctx, history_ctx])
    app.on_shutdown.append(close_sockets)
    for path in CHAT_PATHS:
        app.router.add_get(path, chat)
