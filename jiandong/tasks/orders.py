"""Order upkeep in one process at a time: payments found by querying WeChat Pay, unpaid orders timed out,
ended orders closed at WeChat Pay once it allows."""

from __future__ import annotations

import asyncio
import logging
import typing

from aiohttp import web

from ..keys import metrics_key, order_tasks_task_key, redis_key, settings_key
from ..services import orders, payments, refunds
from ..store.kv import rkey
from .leader import Lease, run_as_leader

logger = logging.getLogger(__name__)

# A few intervals, so a slow round does not cost the lease; a dead holder is replaced this soon.
MIN_LEASE_TTL = 10.0
# Orders handled per step of a round; the rest wait for the next round.
BATCH = 500
# A round in progress at shutdown is let finish this long (each call to WeChat is bounded by http_timeout).
SHUTDOWN_WAIT = 60.0


async def order_round(app: web.Application) -> None:
    """One round: apply payments whose notification is missing, time out what is left unpaid, then close
    at WeChat Pay the orders ended here that WeChat now lets us close; refunds still pending are sent again
    and those in progress asked about."""
    await payments.reconcile_awaiting(app, BATCH)
    await orders.expire_due(app, BATCH)
    await orders.close_ended_at_wechat(app, BATCH)
    await refunds.reconcile_refunds(app, BATCH)


async def order_tasks_ctx(app: web.Application) -> typing.AsyncIterator[None]:
    settings = app[settings_key]
    interval = settings.reconcile_interval
    lease = Lease(app[redis_key], rkey(settings, "lease", "orders"), ttl=max(3 * interval, MIN_LEASE_TTL))
    stop = asyncio.Event()
    task = asyncio.create_task(
        run_as_leader(lease, interval, lambda: order_round(app), name="order upkeep", stop=stop,
                      metrics=app[metrics_key]),
        name="order-upkeep",
    )
    app[order_tasks_task_key] = task
    yield
    # Stopped, not cancelled: a cancel between WeChat's answer and our commit would redo work next round.
    stop.set()
    try:
        await asyncio.wait_for(task, SHUTDOWN_WAIT)
    except Exception:
        logger.exception("order upkeep loop did not stop cleanly")
    try:
        await lease.release()
    except Exception:
        logger.warning("could not release the order upkeep lease", exc_info=True)
