"""The view counter and its flusher: pending plays move from Redis to PostgreSQL in one process at a time."""

from __future__ import annotations

import asyncio
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
from .leader import Lease, run_as_leader

logger = logging.getLogger(__name__)

# A few intervals, so a slow round does not cost the lease; a dead holder is replaced this soon.
MIN_LEASE_TTL = 10.0
# A round in progress at shutdown is let finish this long (its statement is cut off sooner).
SHUTDOWN_WAIT = 90.0


async def counter_flush_ctx(app: web.Application) -> typing.AsyncIterator[None]:
    settings = app[settings_key]
    redis = app[redis_key]
    # Flushed counts change what cached videos and lives must show (see services/counters.py).
    counts = ViewCounts(redis, app[pg_key], settings, changed=app[content_cache_key].invalidate)
    app[view_counts_key] = counts
    interval = settings.counter_flush_interval
    lease = Lease(redis, rkey(settings, "lease", "counter_flush"), ttl=max(3 * interval, MIN_LEASE_TTL))

    async def flush_round() -> None:
        await counts.recover_stale()
        await counts.flush()

    stop = asyncio.Event()
    task = asyncio.create_task(
        run_as_leader(lease, interval, flush_round, name="counter flush", stop=stop, metrics=app[metrics_key]),
        name="counter-flush",
    )
    app[counter_flush_task_key] = task
    yield
    # Stopped, not cancelled: a cancel in the middle of a flush would leave its commit in doubt.
    stop.set()
    try:
        await asyncio.wait_for(task, SHUTDOWN_WAIT)
    except Exception:
        logger.exception("counter flush loop did not stop cleanly")
    try:
        # Released now, so the next holder need not wait for the TTL.
        await lease.release()
    except Exception:
        logger.warning("could not release the counter flush lease", exc_info=True)
    # Every process flushes on the way out, leader or not: each flush owns what it moved.
    try:
        moved = await counts.flush()
    except Exception:
        logger.exception("final view count flush failed; the counts stay in Redis for the next flush")
    else:
        if any(moved.values()):
            logger.info("flushed view counts on shutdown: %s", moved)
