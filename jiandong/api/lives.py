"""Live streams: the published list of started lives with search (23) and one stream (28). The push URL never
leaves here.

Cached like videos (see api/videos.py): details under ("live", id), unsearched list pages under
("live", "page", ...), stored browse_num plus the pending plays; viewer counts are always live.
Whatever changes a stream's live_status (the stream callbacks) must invalidate "live".
"""

from __future__ import annotations

import typing

from aiohttp import web

from ..errors import LiveNotFound, ParameterError
from ..lib import formats
from ..services.content_cache import Key
from ..services.counters import LIVE
from ..services.viewers import online_counts
from ..web.openapi import PAGE_PARAMS, describe, integer, obj, page_of, param, string
from ..web.params import read_params
from ..web.responses import json_response, page_body
from .videos import (
    MAX_ID,
    PLAY_TIME,
    PUBLISHED,
    SEARCH_PARAM,
    competition_ref,
    count_rows,
    item_page,
    like_escape,
    page_cache_key,
    published_item,
    search_term,
)

routes = web.RouteTableDef()

LIVE_TYPE = 3  # how the pages tell a live stream from a replay (1) or highlight (2)

LIVE_FIELDS = dict(
    id=integer("直播 ID"),
    title=string("直播标题"),
    summary=string("简介"),
    main_img_url=string("封面照"),
    competition_id={"type": ["integer", "string"], "description": "赛事 ID，无关联赛事为空字符串"},
    browse_num=integer("观看次数（含尚未写入数据库的）"),
    play_rtmp=string("RTMP 播放地址"),
    play_flv=string("FLV 播放地址"),
    play_m3u8=string("M3U8 播放地址"),
    type=integer("类型：3 直播", enum=[LIVE_TYPE]),
    play_time=PLAY_TIME,
)
LIVE_ITEM = obj(
    "直播（列表与搜索中只有已开始的直播）",
    **LIVE_FIELDS,
    live_status=integer("直播状态：1 直播中，2 已结束（未开始的直播不在列表中）", enum=[1, 2]),
    online_num=integer("当前在线人数"),
)
LIVE_DETAIL = obj(
    "直播详情",
    **LIVE_FIELDS,
    live_status=integer("直播状态：0 未开始，1 直播中，2 已结束", enum=[0, 1, 2]),
    publish_time=string("发布时间"),
    online_show=integer("是否显示在线人数 0/1"),
)

# Columns listed one by one: plug_flow (the push URL) is a secret of the admin side (DESIGN.md §3).
LIVE_SELECT = """
    SELECT l.id, l.title, l.summary, l.main_img_url, l.competition_id, l.browse_num,
           l.play_rtmp, l.play_flv, l.play_m3u8, l.live_status, l.online_show, l.publish_time, c.play_time
    FROM lives l LEFT JOIN competitions c ON c.id = l.competition_id
"""
LIVE_BY_ID_SQL = f"{LIVE_SELECT} WHERE l.id = %s AND l.status = {PUBLISHED}"
# Same expression as the trigram index in sql/002_search.sql.
LIVE_SEARCH_SQL = "lower(l.title || ' ' || l.summary) LIKE '%%' || lower(%(search)s) || '%%'"
# Lists show a live once it has started. The live list and the search page label a live "进行中" when
# live_status is 1 and "已过期" for any other value, so a live still to come (0) would read as expired under
# a cover saying it is about to start; upcoming matches have a list of their own (competition/begins), and
# the stream callbacks that start a live drop the cached lists ("live"), so it appears the moment it starts.
# Its detail (competitionlive/:id) answers before that, with live_status 0.
STARTED_SQL = "l.live_status IN (1, 2)"
# Live now first, then the ended ones; newest first within each.
LIVE_ORDER = "ORDER BY l.live_status = 1 DESC, l.publish_time DESC, l.id DESC"


def live_item(row: typing.Mapping[str, typing.Any], online: int = 0) -> dict[str, typing.Any]:
    return {
        "id": row["id"],
        "title": row["title"],
        "summary": row["summary"],
        "main_img_url": row["main_img_url"],
        "competition_id": competition_ref(row["competition_id"]),
        "browse_num": row["browse_num"],
        "play_rtmp": row["play_rtmp"],
        "play_flv": row["play_flv"],
        "play_m3u8": row["play_m3u8"],
        "type": LIVE_TYPE,
        "play_time": formats.fmt_time(row["play_time"]),
        "live_status": row["live_status"],
        "online_num": online,
    }


def live_detail(row: typing.Mapping[str, typing.Any]) -> dict[str, typing.Any]:
    """A live as its detail shows it: the list item without the viewer count, with the publish time."""
    item = live_item(row)
    del item["online_num"]
    item["publish_time"] = formats.fmt_time(row["publish_time"])
    item["online_show"] = row["online_show"]
    return item


def live_filters(search: str = "", competition_id: int | None = None) -> tuple[str, dict[str, typing.Any]]:
    """The WHERE clause (over `lives l`) of published lives that have started (STARTED_SQL) matching the
    filters, and its arguments."""
    clauses = [f"l.status = {PUBLISHED}", STARTED_SQL]
    args: dict[str, typing.Any] = {}
    if search:
        clauses.append(LIVE_SEARCH_SQL)
        args["search"] = like_escape(search)
    if competition_id is not None:
        clauses.append("l.competition_id = %(competition_id)s")
        args["competition_id"] = competition_id
    return " AND ".join(clauses), args


async def live_page(
    request: web.Request,
    where: str,
    args: dict[str, typing.Any],
    offset: int,
    limit: int,
    cache_key: Key[list] | None = None,
) -> list[dict[str, typing.Any]]:
    """Live items of one window of the filtered list, with up-to-date view and viewer counts."""
    query = f"{LIVE_SELECT} WHERE {where} {LIVE_ORDER}"
    items = await item_page(request, LIVE, query, live_item, args, offset, limit, cache_key)
    online = await online_counts(request.config_dict, [item["id"] for item in items])
    for item in items:
        item["online_num"] = online.get(item["id"], 0)
    return items


@routes.get("/api/v1/competition/live")
@routes.post("/api/v1/competition/live")
@describe(
    "获取赛事直播列表（分页）",
    tag="视频与直播",
    params=[*PAGE_PARAMS, SEARCH_PARAM, param("competition_id", "integer", "赛事 ID", minimum=1, maximum=MAX_ID)],
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
    params = await read_params(request)
    page, size = params.page()
    search = search_term(params)
    competition_id = params.integer("competition_id", min_value=1, max_value=MAX_ID)
    where, args = live_filters(search, competition_id)
    offset = (page - 1) * size
    key = page_cache_key("live", page, size, competition_id, search=search)
    items = await live_page(request, where, args, offset, size, key)
    total = await count_rows(request, "live", where, args, offset, len(items), size)
    return json_response(page_body(items, total, page, size))


@routes.get(r"/api/v1/competitionlive/{id:\d+}")
@describe(
    "直播详情",
    tag="视频与直播",
    params=[param("id", "integer", "直播 ID", required=True, location="path")],
    response=LIVE_DETAIL,
    errors=[LiveNotFound],
    description="不含推流地址。",
)
async def get_live(request: web.Request) -> web.Response:
    return json_response(await published_item(request, LIVE, LIVE_BY_ID_SQL, live_detail, LiveNotFound))
