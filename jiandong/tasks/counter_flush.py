"""The view counter and its flusher: pending plays move from Redis to PostgreSQL in one process at a time."""

from __future__ import annotations

import logging
import typing

from aiohttp import web

from ..keys import (
    content_cache_key,
    counter_flush_task_key,
    metrics_key,
    pg_key,
    redis_key,
    settings_key,
    view_counts_key,
)
from ..services.counters import ViewCounts
from ..store.kv import rkey
from ..store.leases import job_under_lease

logger = logging.getLogger(__name__)

# A round in progress at shutdown is let finish this long (its statement is cut off sooner).
SHUTDOWN_WAIT = 90.0


async def counter_flush_ctx(app: web.Application) -> typing.AsyncIterator[None]:
    settings = app[settings_key]
    redis = app[redis_key]
    # Flushed counts change what cached videos and lives must show (see services/counters.py).
    counts = ViewCounts(redis, app[pg_key], settings, changed=app[content_cache_key].invalidate)
    app[view_counts_key] = counts

    async def flush_round() -> None:
        await counts.recover_stale()
        await counts.flush()

    key = rkey(settings, "lease", "counter_flush")
    loop = job_under_lease(
        redis, key, settings.counter_flush_interval, flush_round,
        name="counter flush", shutdown_wait=SHUTDOWN_WAIT, metrics=app[metrics_key],
    )
    async with loop as task:
        app[counter_flush_task_key] = task
        yield
    # Every process flushes on the way out, leader or not: each flush owns what it moved.
    try:
        moved = await counts.flush()
    except Exception:
        logger.exception("final view count flush failed; the counts stay in Redis for the next flush")
    else:
        if any(moved.values()):
            logger.info("flushed view counts on shutdown: %s", moved)
