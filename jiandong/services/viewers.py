"""Who is watching a live stream now: chat room viewers in every process plus the CDN's count.

The CDN counts of the whole play domain are read in one Aliyun call and kept in Redis for
CDN_COUNT_TTL, shared by all processes; when Aliyun fails they count as 0 for that long, so a
page polling the count never sees an error because of it.
"""

from __future__ import annotations

import asyncio
import logging
import typing

from aiohttp import web

from ..integrations.aliyun import AliyunError
from ..keys import aliyun_live_key, pg_key, redis_key, settings_key
from ..lib import encoding
from ..store import db
from ..store.kv import rkey
from ..store.presence import room_viewers

logger = logging.getLogger(__name__)

CDN_COUNT_TTL = 10
# Pages poll the counts: a slow Aliyun must not hold them long.
CDN_COUNT_TIMEOUT = 3.0


async def online_counts(app: web.Application, live_ids: typing.Sequence[int]) -> dict[int, int]:
    """Viewers of each live stream now, by id (missing = 0): the one number lists, search and
    endpoint 25 show."""
    if not live_ids:
        return {}
    counts = await room_viewers(app[redis_key], app[settings_key], live_ids)
    for live_id, n in (await cdn_counts(app, live_ids)).items():
        counts[live_id] = counts.get(live_id, 0) + n
    return {live_id: n for live_id, n in counts.items() if n}


async def cdn_counts(app: web.Application, live_ids: typing.Sequence[int]) -> dict[int, int]:
    """The CDN's viewers of these lives by id; empty when Aliyun Live is off or failing (logged)."""
    if app[aliyun_live_key] is None:
        return {}
    by_stream = await _cdn_counts_by_stream(app)
    if not by_stream:
        return {}
    rows = await db.fetchall(
        app[pg_key],
        "SELECT id, stream_name FROM lives WHERE id = ANY(%s) AND stream_name = ANY(%s)",
        (list(live_ids), list(by_stream)),
    )
    return {row["id"]: by_stream[row["stream_name"]] for row in rows}


async def _cdn_counts_by_stream(app: web.Application) -> dict[str, int]:
    redis = app[redis_key]
    key = rkey(app[settings_key], "live", "cdn_viewers")
    try:
        cached = await redis.get(key)
    except Exception:
        logger.warning("could not read the cached CDN viewer counts", exc_info=True)
        cached = None
    counts = encoding.loads(cached) if cached is not None else await _load_cdn_counts(app, key)
    return {name: n for name, n in counts.items() if isinstance(n, int) and n > 0}


async def _load_cdn_counts(app: web.Application, key: str) -> dict[str, int]:
    live = app[aliyun_live_key]
    assert live is not None
    try:
        counts = await asyncio.wait_for(live.viewer_counts(), CDN_COUNT_TIMEOUT)
    except (AliyunError, asyncio.TimeoutError) as exc:
        # AliyunRpc has logged the details of its own failures.
        logger.warning("CDN viewer counts unavailable (%s); counted as 0 for %d s", exc or "timeout", CDN_COUNT_TTL)
        counts = {}
    try:
        await app[redis_key].set(key, encoding.dumps_str(counts), ex=CDN_COUNT_TTL)
    except Exception:
        logger.warning("could not cache the CDN viewer counts", exc_info=True)
    return counts
