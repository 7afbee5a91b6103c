"""Order upkeep in one process at a time: payments found by querying WeChat Pay, unpaid orders timed out,
ended orders closed at WeChat Pay once it allows."""

from __future__ import annotations

import typing

from aiohttp import web

from ..keys import metrics_key, order_tasks_task_key, redis_key, settings_key
from ..services import orders, payments, refunds
from ..store.kv import rkey
from ..store.leases import job_under_lease
from ..web.public_urls import refund_notify_url

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
    await refunds.reconcile_refunds(app, BATCH, refund_notify_url(app[settings_key]))


async def order_tasks_ctx(app: web.Application) -> typing.AsyncIterator[None]:
    settings = app[settings_key]
    # Stopped on the way out, not cancelled: a cancel between WeChat's answer and our commit would redo work.
    key = rkey(settings, "lease", "orders")
    loop = job_under_lease(
        app[redis_key], key, settings.reconcile_interval, lambda: order_round(app),
        name="order upkeep", shutdown_wait=SHUTDOWN_WAIT, metrics=app[metrics_key],
    )
    async with loop as task:
        app[order_tasks_task_key] = task
        yield
