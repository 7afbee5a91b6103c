"""The notice job, in one process at a time: write the reminders now due, then send what the outbox holds."""

from __future__ import annotations

import typing

from aiohttp import web

from ..keys import metrics_key, notice_sender_key, pg_key, redis_key, settings_key
from ..services import notices
from ..services.notice_sending import NoticeSender
from ..store.kv import rkey
from ..store.leases import MIN_LEASE_TTL, holder_id, job_under_lease

# A round in progress at shutdown is let finish (each call to WeChat or Aliyun is bounded by http_timeout).
SHUTDOWN_WAIT = 30.0


async def notice_round(app: web.Application) -> None:
    settings = app[settings_key]
    await notices.write_reminders(app[pg_key], settings.notice_reminder_hours, settings.timezone)
    # A round ends well before the lease could lapse (its TTL spans three intervals, at least MIN_LEASE_TTL).
    await app[notice_sender_key].round(max(3 * settings.notice_interval, MIN_LEASE_TTL) / 2)


async def notice_tasks_ctx(app: web.Application) -> typing.AsyncIterator[None]:
    settings = app[settings_key]
    app[notice_sender_key] = NoticeSender(app, holder_id())
    loop = job_under_lease(
        app[redis_key], rkey(settings, "lease", "notices"), settings.notice_interval, lambda: notice_round(app),
        name="notice sender", shutdown_wait=SHUTDOWN_WAIT, metrics=app[metrics_key],
    )
    async with loop:
        yield
