"""Viewers of a live stream now (25), in the shape of Aliyun's DescribeLiveStreamOnlineUserNum.

The number is the chat room's websocket viewers (all processes) plus, when Aliyun Live is
configured, the CDN's own count for the stream. The CDN counts of the whole domain are read in
one call and kept in Redis for CDN_COUNT_TTL, shared by all processes; when Aliyun fails, they
count as 0 for that long and the answer is still 200.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import typing

from aiohttp import web

from .. import db, encoding
from ..cache import rkey
from ..errors import LiveNotFound
from ..http import json_response
from ..integrations.aliyun import AliyunError
from ..keys import aliyun_live_key, content_cache_key, pg_key, redis_key, request_id_key, settings_key
from ..openapi import array, describe, integer, obj, param, string
from ..services.counters import online_counts
from .videos import MAX_ID, PUBLISHED

logger = logging.getLogger(__name__)

routes = web.RouteTableDef()

CDN_COUNT_TTL = 10
# The page polls this endpoint: a slow Aliyun must not hold it long.
CDN_COUNT_TIMEOUT = 3.0

ONLINE_RESPONSE = obj(
    "在线人数（阿里云 DescribeLiveStreamOnlineUserNum 的格式）",
    TotalUserNumber=integer("总人数：聊天室在线 + CDN 观看（配置了阿里云直播时）"),
    OnlineUserInfo=obj(
        "按流",
        LiveStreamOnlineUserNumInfo=array(
            obj(
                "一路流",
                Time=string("统计时间（UTC，如 2024-01-01T04:30:00Z）"),
                StreamUrl=string("播放地址（不是推流地址）"),
                UserNumber=integer("在线人数"),
            )
        ),
    ),
    RequestId=string("请求 ID（同响应头 X-Request-Id）"),
)

# The push URL (plug_flow) is not read: nothing here may leak it.
STREAM_SQL = f"""
    SELECT id, stream_name, play_rtmp, play_flv, play_m3u8 FROM lives WHERE id = %s AND status = {PUBLISHED}
"""

def utc_now_iso() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


async def cdn_viewers(request: web.Request, stream_name: str) -> int:
    """The CDN's viewers of a stream; 0 when Aliyun Live is off or failing (logged)."""
    live = request.config_dict[aliyun_live_key]
    if live is None:
        return 0
    settings = request.config_dict[settings_key]
    redis = request.config_dict[redis_key]
    key = rkey(settings, "live", "cdn_viewers")
    try:
        cached = await redis.get(key)
    except Exception:
        logger.warning("could not read the cached CDN viewer counts", exc_info=True)
        cached = None
    if cached is None:
        counts = await _load_cdn_counts(request, key)
    else:
        counts = encoding.loads(cached)
    value = counts.get(stream_name, 0)
    return value if isinstance(value, int) and value > 0 else 0


async def _load_cdn_counts(request: web.Request, key: str) -> dict[str, int]:
    live = request.config_dict[aliyun_live_key]
    assert live is not None
    try:
        counts = await asyncio.wait_for(live.viewer_counts(), CDN_COUNT_TIMEOUT)
    except (AliyunError, asyncio.TimeoutError) as exc:
        # AliyunRpc has logged the details of its own failures.
        logger.warning("CDN viewer counts unavailable (%s); counted as 0 for %d s", exc or "timeout", CDN_COUNT_TTL)
        counts = {}
    try:
        await request.config_dict[redis_key].set(key, encoding.dumps_str(counts), ex=CDN_COUNT_TTL)
    except Exception:
        logger.warning("could not cache the CDN viewer counts", exc_info=True)
    return counts


@routes.get(r"/api/v1/competition/online/{id:\d+}")
@describe(
    "获取在线直播人数",
    tag="视频与直播",
    params=[param("id", "integer", "直播 ID", required=True, location="path")],
    response=ONLINE_RESPONSE,
    errors=[LiveNotFound],
    description=(
        "聊天室在线人数（所有服务进程合计），配置了阿里云直播时加上 CDN 的观看人数（最多缓存 "
        f"{CDN_COUNT_TTL} 秒；阿里云出错时按 0 计）。StreamUrl 是播放地址。"
    ),
)
async def get_online(request: web.Request) -> web.Response:
    live_id = int(request.match_info["id"])
    if live_id > MAX_ID:
        raise LiveNotFound()

    async def load() -> dict[str, typing.Any]:
        row = await db.fetchone(request.config_dict[pg_key], STREAM_SQL, (live_id,))
        if row is None:
            raise LiveNotFound()
        return row

    row = await request.config_dict[content_cache_key].get(("live", live_id, "stream"), load)
    websocket = (await online_counts(request, [live_id])).get(live_id, 0)
    total = websocket + await cdn_viewers(request, row["stream_name"])
    play_url = row["play_rtmp"] or row["play_flv"] or row["play_m3u8"]
    return json_response(
        {
            "TotalUserNumber": total,
            "OnlineUserInfo": {
                "LiveStreamOnlineUserNumInfo": [{"Time": utc_now_iso(), "StreamUrl": play_url, "UserNumber": total}]
            },
            "RequestId": request[request_id_key],
        }
    )
