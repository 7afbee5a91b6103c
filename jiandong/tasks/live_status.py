"""Reconciles live_status with Aliyun Live's online streams, in one process at a time (Aliyun Live only).

Callbacks can be lost (our server down, five failed retries); the poll catches up: a stream
Aliyun lists as pushed is live, a live marked live that Aliyun does not list has ended. A failed
call changes nothing, so an Aliyun outage never ends every stream at once.
"""

from __future__ import annotations

import datetime as dt
import logging
import typing

from aiohttp import web

from ..keys import aliyun_live_key, live_status_task_key, metrics_key, pg_key, redis_key, settings_key
from ..services.live_status import ENDED, LIVE, set_live_status
from ..store import db
from ..store.kv import rkey
from ..store.leases import job_under_lease

logger = logging.getLogger(__name__)

SHUTDOWN_WAIT = 30.0
# A stream that just started may not be in the online list yet: a change this recent is left alone.
ABSENT_GRACE = dt.timedelta(seconds=15)

# The lives whose status the online list may change: listed but not live, or live but not listed.
CANDIDATES_SQL = """
    SELECT stream_name, live_status, live_changed_at FROM lives
    WHERE (stream_name = ANY(%(online)s) AND live_status <> 1 OR live_status = 1)
      AND (%(app)s = '' OR app_name = %(app)s)
"""


async def reconcile(app: web.Application) -> dict[str, int]:
    """One poll: the online list from Aliyun, then the changes it implies; the new status by stream name."""
    live = app[aliyun_live_key]
    if live is None:
        return {}
    started = dt.datetime.now(dt.timezone.utc)
    online = await live.online_streams()
    rows = await db.fetchall(
        app[pg_key], CANDIDATES_SQL, {"online": sorted(online), "app": app[settings_key].aliyun_live_app_name}
    )
    changed: dict[str, int] = {}
    for row in rows:
        name = row["stream_name"]
        if name in online:
            wanted = LIVE
        else:
            recent = row["live_changed_at"] is not None and row["live_changed_at"] > started - ABSENT_GRACE
            if recent:
                continue
            wanted = ENDED
        # `at` = when the list was asked for: a callback seen after that is newer and wins.
        result = await set_live_status(app, name, wanted, at=started, source="aliyun online list")
        if result.changed:
            changed[name] = wanted
    return changed


async def live_status_ctx(app: web.Application) -> typing.AsyncIterator[None]:
    if app[aliyun_live_key] is None:
        app[live_status_task_key] = None
        yield
        return
    settings = app[settings_key]

    async def poll_round() -> None:
        changed = await reconcile(app)
        if changed:
            logger.info("live status reconciled with Aliyun: %s", changed)

    key = rkey(settings, "lease", "live_status")
    loop = job_under_lease(
        app[redis_key], key, settings.live_poll_interval, poll_round,
        name="live status poll", shutdown_wait=SHUTDOWN_WAIT, metrics=app[metrics_key],
    )
    async with loop as task:
        app[live_status_task_key] = task
        yield
