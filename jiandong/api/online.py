"""Viewers of a live stream now (25), in the shape of Aliyun's DescribeLiveStreamOnlineUserNum.

The number is services.viewers.online_counts: chat viewers in every process plus the CDN's count.
"""

from __future__ import annotations

import datetime as dt
import logging
import typing

from aiohttp import web

from ..errors import LiveNotFound
from ..keys import content_cache_key, pg_key, request_id_key
from ..services.content_cache import shape
from ..services.viewers import CDN_COUNT_TTL, online_counts
from ..store import db
from ..web.fields import PathId, Spec
from ..web.openapi import array, describe, integer, obj, string
from ..web.params import MAX_ID
from ..web.responses import json_response
from .media_items import PUBLISHED

logger = logging.getLogger(__name__)

routes = web.RouteTableDef()

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
# A live's play URLs, of the "live" kind: every change of a live drops it.
STREAM = shape("live", "live_stream", dict)
STREAM_SQL = f"""
    SELECT id, play_rtmp, play_flv, play_m3u8 FROM lives WHERE id = %s AND status = {PUBLISHED}
"""

def utc_now_iso() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class LiveRef(Spec):
    id = PathId("直播 ID")


@routes.get(r"/api/v1/competition/online/{id:[0-9]+}")
@describe(
    "获取在线直播人数",
    tag="视频与直播",
    params=LiveRef,
    response=ONLINE_RESPONSE,
    errors=[LiveNotFound],
    description=(
        "聊天室在线人数（所有服务进程合计），配置了阿里云直播时加上 CDN 的观看人数（最多缓存 "
        f"{CDN_COUNT_TTL} 秒；阿里云出错时按 0 计）。StreamUrl 是播放地址。"
    ),
)
async def get_online(request: web.Request) -> web.Response:
    live_id = (await LiveRef.read(request)).id
    if live_id > MAX_ID:
        raise LiveNotFound()

    async def load() -> dict[str, typing.Any]:
        row = await db.fetchone(request.config_dict[pg_key], STREAM_SQL, (live_id,))
        if row is None:
            raise LiveNotFound()
        return row

    row = await request.config_dict[content_cache_key].get(STREAM(live_id), load)
    total = (await online_counts(request.config_dict, [live_id])).get(live_id, 0)
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
