"""Replays and highlights: the published list with search and filters (20) and one video (27).

Hot reads come from the content cache (services/content_cache.py): a video's detail and the first
pages of lists, the shapes declared in api/media_items.py with what they hold. An unknown id is never
cached as a miss (see get_video).
"""

from __future__ import annotations

from aiohttp import web

from ..errors import ParameterError, VideoNotFound
from ..services.counters import VIDEO
from ..web.fields import MaybeInt, PathId, Spec
from ..web.openapi import describe, page_of
from ..web.public_urls import public_base
from ..web.responses import json_response, page_body
from .media_items import (
    VIDEO_BY_ID_SQL,
    VIDEO_DETAIL,
    VIDEO_ITEM,
    VIDEO_TYPES,
    Searched,
    count_rows,
    page_cache_key,
    published_item,
    video_filters,
    video_item,
    video_page,
)

routes = web.RouteTableDef()


class VideoQuery(Searched):
    type = MaybeInt(
        "播放类型：1 回放，2 集锦", one_of=VIDEO_TYPES, refusal="参数错误: type 只能是 1（回放）或 2（集锦）"
    )


@routes.get("/api/v1/competition/video")
@routes.post("/api/v1/competition/video")
@describe(
    "赛事历史播放列表（分页）",
    tag="视频与直播",
    params=VideoQuery,
    response=page_of(VIDEO_ITEM),
    errors=[ParameterError],
    description="已发布的回放与集锦，最新发布的在前。也接受 GET。",
)
async def list_videos(request: web.Request) -> web.Response:
    p = await VideoQuery.read(request)
    page, size, search, competition_id, video_type = p.page, p.size, p.search, p.competition_id, p.type
    where, args = video_filters(search, competition_id, video_type)
    offset = (page - 1) * size
    key = page_cache_key("video", page, size, competition_id, video_type, search=search)
    items = await video_page(request, where, args, offset, size, key)
    total = await count_rows(request, "video", where, args, offset, len(items), size)
    return json_response(page_body(items, total, page, size))


def play_url(request: web.Request, name: str) -> str:
    """The file's URL as a player needs it: a path on this site made absolute."""
    if name.startswith("/") and not name.startswith("//"):
        return public_base(request) + name
    return name


class VideoPath(Spec):
    id = PathId("视频 ID")


@routes.get(r"/api/v1/competitionvideo/{id:[0-9]+}")
@describe(
    "视频详情",
    tag="视频与直播",
    params=VideoPath,
    response=VIDEO_DETAIL,
    errors=[VideoNotFound],
)
async def get_video(request: web.Request) -> web.Response:
    p = await VideoPath.read(request)
    item = await published_item(request, VIDEO, VIDEO_BY_ID_SQL, video_item, VideoNotFound, p.id)
    item["play_url"] = play_url(request, item["file"]["name"])
    return json_response(item)
