"""Playing: counting a view (24) and searching lives and videos together (32)."""

from __future__ import annotations

from aiohttp import web

from ..errors import LiveNotFound, ParameterError, VideoNotFound
from ..keys import view_counts_key
from ..services.counters import LIVE, VIDEO
from ..web.fields import Int, Paged, Spec, Text
from ..web.openapi import describe, page_of
from ..web.responses import json_response, operation_result, page_body
from .media_items import (
    LIVE_ITEM,
    SEARCH_MAX_LEN,
    VIDEO_ITEM,
    count_matching,
    count_rows,
    live_filters,
    live_page,
    video_filters,
    video_page,
)

routes = web.RouteTableDef()

# play_notify's `type`: what was played.
PLAY_KINDS = {1: (VIDEO, VideoNotFound), 2: (LIVE, LiveNotFound)}


class Played(Spec):
    id = Int("播放源 ID")
    type = Int(
        "播放源：1 录像（回放 / 集锦），2 直播",
        one_of=PLAY_KINDS,
        refusal="参数错误: type 只能是 1（录像）或 2（直播）",
    )


class PlaySearch(Paged):
    search = Text(
        f"搜索关键字（必填，最多 {SEARCH_MAX_LEN} 字）：标题或简介包含该文字", required=True, max_length=SEARCH_MAX_LEN
    )


@routes.post("/api/v1/competition/play_notify")
@describe(
    "进入播放后的回调（增加浏览量）",
    tag="视频与直播",
    params=Played,
    errors=[ParameterError, VideoNotFound, LiveNotFound],
    description="浏览量先记在 Redis，几秒内写入数据库；列表与详情即刻包含。",
)
async def play_notify(request: web.Request) -> web.Response:
    p = await Played.read(request)
    kind, not_found = PLAY_KINDS[p.type]
    if not await request.config_dict[view_counts_key].record(kind, p.id):
        raise not_found()
    return operation_result(request)


@routes.get("/api/v1/competition/play")
@routes.post("/api/v1/competition/play")
@describe(
    "搜索播放资源列表（直播与回放）",
    tag="视频与直播",
    params=PlaySearch,
    response=page_of({"oneOf": [LIVE_ITEM, VIDEO_ITEM]}),
    errors=[ParameterError],
    description=(
        "已开始的直播在前（直播中、已结束；未开始的直播不在结果中，同直播列表），其后为回放与集锦（最新的在前），一起分页。"
        "直播项有 live_status、没有 file；视频项有 file。每项带所属赛事的比赛时间 play_time（无关联赛事为空字符串）。"
        "也接受 GET。"
    ),
)
async def search_plays(request: web.Request) -> web.Response:
    p = await PlaySearch.read(request)
    page, size, search = p.page, p.size, p.search
    live_where, live_args = live_filters(search)
    video_where, video_args = video_filters(search)
    # The union is paged as one list: the window may end in the lives, span both, or lie in the videos.
    offset = (page - 1) * size
    live_total = await count_matching(request, "live", live_where, live_args)
    items = await live_page(request, live_where, live_args, offset, min(size, live_total - offset))
    video_offset = max(0, offset - live_total)
    video_limit = size - len(items)
    videos = await video_page(request, video_where, video_args, video_offset, video_limit)
    items.extend(videos)
    if video_limit > 0:
        video_total = await count_rows(
            request, "video", video_where, video_args, video_offset, len(videos), video_limit
        )
    else:
        video_total = await count_matching(request, "video", video_where, video_args)
    return json_response(page_body(items, live_total + video_total, page, size))
