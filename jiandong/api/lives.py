"""Live streams: the published list of started lives with search (23) and one stream (28). The push URL never
leaves here.

Cached like videos (see api/media_items.py): details under ("live", id), unsearched list pages under
("live", "page", ...), stored browse_num plus the pending plays; viewer counts are always live.
Whatever changes a stream's live_status (the stream callbacks) must invalidate "live".
"""

from __future__ import annotations

from aiohttp import web

from ..errors import LiveNotFound, ParameterError
from ..services.counters import LIVE
from ..web.fields import PathId, Spec
from ..web.openapi import describe, page_of
from ..web.responses import json_response, page_body
from .media_items import (
    LIVE_BY_ID_SQL,
    LIVE_DETAIL,
    LIVE_ITEM,
    Searched,
    count_rows,
    live_detail,
    live_filters,
    live_page,
    page_cache_key,
    published_item,
)

routes = web.RouteTableDef()


@routes.get("/api/v1/competition/live")
@routes.post("/api/v1/competition/live")
@describe(
    "获取赛事直播列表（分页）",
    tag="视频与直播",
    params=Searched,
    response=page_of(LIVE_ITEM),
    errors=[ParameterError],
    description=(
        "已开始的已发布直播：直播中的在前，已结束的在后，各自最新发布的在前。未开始的直播（live_status 0）不在列表中"
        "（页面把 live_status 不为 1 的直播标为“已过期”；即将开始的比赛见 competition/begins），"
        "开始推流即出现在列表中；其详情 competitionlive/:id 开始前即可读取。每项带所属赛事的比赛时间 play_time。"
        "也接受 GET。不含推流地址。"
    ),
)
async def list_lives(request: web.Request) -> web.Response:
    p = await Searched.read(request)
    page, size, search, competition_id = p.page, p.size, p.search, p.competition_id
    where, args = live_filters(search, competition_id)
    offset = (page - 1) * size
    key = page_cache_key("live", page, size, competition_id, search=search)
    items = await live_page(request, where, args, offset, size, key)
    total = await count_rows(request, "live", where, args, offset, len(items), size)
    return json_response(page_body(items, total, page, size))


class LivePath(Spec):
    id = PathId("直播 ID")


@routes.get(r"/api/v1/competitionlive/{id:[0-9]+}")
@describe(
    "直播详情",
    tag="视频与直播",
    params=LivePath,
    response=LIVE_DETAIL,
    errors=[LiveNotFound],
    description="不含推流地址。",
)
async def get_live(request: web.Request) -> web.Response:
    p = await LivePath.read(request)
    return json_response(await published_item(request, LIVE, LIVE_BY_ID_SQL, live_detail, LiveNotFound, p.id))
