"""The published videos and lives as the API lists them: item shapes, filters, search, paging and the
content cache (services/content_cache.py) of their pages and details, shared by api/videos.py (20, 27),
api/lives.py (23, 28), api/play.py and api/online.py.

Hot reads come from the content cache: a video's or live's detail and the first pages of lists, each
shape declared below with what it holds. The cached items carry the browse_num stored in PostgreSQL;
every answer adds the plays still pending in Redis, and a flush that moves plays into the database
invalidates "video" and "live" (services/counters.py), so the served count stays exact. An unknown id is
never cached as a miss. A change to any video (live) must invalidate the whole kind "video" ("live"):
pages and totals span many items; viewer counts are always live.
"""

from __future__ import annotations

import typing

from aiohttp import web

from ..errors import ApiError
from ..keys import content_cache_key, pg_key, view_counts_key
from ..lib import formats
from ..services.content_cache import Key, Shape, shape
from ..services.counters import LIVE, VIDEO
from ..services.files import file_columns, file_object
from ..services.viewers import online_counts
from ..store import db
from ..web.fields import MaybeInt, Paged, Text
from ..web.openapi import FILE_OBJECT, integer, obj, string
from ..web.params import MAX_ID

PUBLISHED = 1
VIDEO_TYPES = (1, 2)  # 1 replay, 2 highlight
SEARCH_MAX_LEN = 50
# Only the first pages of a list are cached: they take nearly all the reads, while the deeper
# pages (times the page sizes and filters) are many and would each take an entry of their own.
CACHED_PAGES = 5
SEARCH_CACHE_TTL = 5.0

# Every live and video item carries its match's play time, formatted as the match lists do: the search page
# prints 比赛时间：{{play_time}} under each result, lives and videos alike.
PLAY_TIME = string("所属赛事的比赛时间 YYYY-MM-DD HH:MM:SS（同赛事详情），无关联赛事为空字符串")
VIDEO_ITEM = obj(
    "视频（回放 / 集锦）",
    id=integer("视频 ID"),
    title=string("视频标题"),
    summary=string("简介"),
    main_img_url=string("封面照"),
    competition_id={"type": ["integer", "string"], "description": "赛事 ID，无关联赛事为空字符串"},
    browse_num=integer("观看次数（含尚未写入数据库的）"),
    type=integer("视频类型：1 回放，2 集锦"),
    publish_time=string("发布时间 YYYY-MM-DD HH:MM:SS"),
    play_time=PLAY_TIME,
    file=FILE_OBJECT,
)
VIDEO_DETAIL = obj("视频详情", **VIDEO_ITEM["properties"], play_url=string("可播放的完整 URL，无文件为空字符串"))


class Searched(Paged):
    """A page of a list, searched (no NUL: PostgreSQL text cannot hold it, and no title contains it) and
    narrowed to a competition."""

    search = Text(
        f"搜索关键字：标题或简介包含该文字（不分大小写，最多 {SEARCH_MAX_LEN} 字）", max_length=SEARCH_MAX_LEN
    )
    competition_id = MaybeInt("赛事 ID", minimum=1, maximum=MAX_ID)


VIDEO_SELECT = f"""
    SELECT v.id, v.title, v.summary, v.main_img_url, v.competition_id, v.browse_num, v.type, v.publish_time,
           c.play_time, {file_columns()}
    FROM videos v LEFT JOIN files f ON f.id = v.file_id LEFT JOIN competitions c ON c.id = v.competition_id
"""
VIDEO_BY_ID_SQL = f"{VIDEO_SELECT} WHERE v.id = %s AND v.status = {PUBLISHED}"
# The expression is the one indexed in sql/002_search.sql, character for character, so the
# trigram index serves it; the term is escaped (like_escape) and lowered by PostgreSQL itself.
VIDEO_SEARCH_SQL = "lower(v.title || ' ' || v.summary) LIKE '%%' || lower(%(search)s) || '%%'"
NEWEST_FIRST = "ORDER BY v.publish_time DESC, v.id DESC"


def like_escape(term: str) -> str:
    """The term as a LIKE pattern matching itself only (backslash is LIKE's default escape)."""
    return term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def competition_ref(value: int | None) -> int | str:
    """A competition id, or "" when the item belongs to none (empty text, never null)."""
    return "" if value is None else value


def video_item(row: typing.Mapping[str, typing.Any]) -> dict[str, typing.Any]:
    return {
        "id": row["id"],
        "title": row["title"],
        "summary": row["summary"],
        "main_img_url": row["main_img_url"],
        "competition_id": competition_ref(row["competition_id"]),
        "browse_num": row["browse_num"],
        "type": row["type"],
        "publish_time": formats.fmt_time(row["publish_time"]),
        "play_time": formats.fmt_time(row["play_time"]),
        "file": file_object(row),
    }


def video_filters(
    search: str = "", competition_id: int | None = None, video_type: int | None = None
) -> tuple[str, dict[str, typing.Any]]:
    """The WHERE clause (over `videos v`) of published videos matching the filters, and its arguments."""
    clauses = [f"v.status = {PUBLISHED}"]
    args: dict[str, typing.Any] = {}
    if search:
        clauses.append(VIDEO_SEARCH_SQL)
        args["search"] = like_escape(search)
    if competition_id is not None:
        clauses.append("v.competition_id = %(competition_id)s")
        args["competition_id"] = competition_id
    if video_type is not None:
        clauses.append("v.type = %(type)s")
        args["type"] = video_type
    return " AND ".join(clauses), args


# `kind` (the content cache's kind) -> the table the WHERE clauses of this module and lives.py run over.
COUNTED = {"video": "videos v", "live": "lives l"}
# The cached shapes of both kinds, lives.py's included: totals, list pages (plain and searched), details.
COUNTS: dict[str, Shape[int]] = {kind: shape(kind, f"{kind}_count", int) for kind in (VIDEO, LIVE)}
PAGES: dict[str, Shape[list]] = {kind: shape(kind, f"{kind}_page", list) for kind in (VIDEO, LIVE)}
SEARCHES: dict[str, Shape[list]] = {kind: shape(kind, f"{kind}_search", list) for kind in (VIDEO, LIVE)}
ITEMS: dict[str, Shape[dict]] = {kind: shape(kind, f"{kind}_item", dict) for kind in (VIDEO, LIVE)}


async def count_matching(request: web.Request, kind: str, where: str, args: dict[str, typing.Any]) -> int:
    """How many rows match; cached, as a count visits every match (40 ms for 100k videos) and totals
    change only when content does (which invalidates the content cache)."""

    async def count() -> int:
        sql = f"SELECT count(*) FROM {COUNTED[kind]} WHERE {where}"
        return await db.fetchval(request.config_dict[pg_key], sql, args)

    key = COUNTS[kind](where, tuple(sorted(args.items())))
    return await request.config_dict[content_cache_key].get(key, count)


async def count_rows(
    request: web.Request, kind: str, where: str, args: dict[str, typing.Any], offset: int, found: int, limit: int
) -> int:
    """The total of a list whose window [offset, offset + limit) held `found` rows.

    A short window ends the list, so the total is known without counting.
    """
    if 0 < found < limit or (offset == 0 and found == 0 and limit > 0):
        return offset + found
    return await count_matching(request, kind, where, args)


async def fetch_rows(request: web.Request, sql: str, args: dict[str, typing.Any]) -> list[dict[str, typing.Any]]:
    """Rows as plain dicts. On a page of 30 rows the RealDictCursor of db.fetchall costs more
    than the rest of a search (it builds each row in Python, column by column); zip does not."""
    async with db.connection(request.config_dict[pg_key]) as conn, conn.cursor() as cur:
        await cur.execute(sql, args)
        rows = await cur.fetchall()
        names = [column.name for column in cur.description]
    return [dict(zip(names, row, strict=True)) for row in rows]


def page_cache_key(
    kind: str, page: int, size: int, *filters: typing.Any, search: str = ""
) -> Key[list] | None:
    """The content cache key of a list page, or None for a page not worth caching.

    Searched pages are cached too, briefly (SEARCH_CACHE_TTL): during a match a crowd searches
    the same few names. Their terms make an unbounded key space, which the cache's LRU bound
    keeps from crowding out the rest.
    """
    if page > CACHED_PAGES:
        return None
    if search:
        return SEARCHES[kind](search.lower(), *filters, page, size)
    return PAGES[kind](*filters, page, size)


async def cached_items(
    request: web.Request,
    key: Key[list] | None,
    load: typing.Callable[[], typing.Awaitable[list[dict[str, typing.Any]]]],
) -> list[dict[str, typing.Any]]:
    """Items from the content cache under `key` (or straight from `load` when None), as copies
    the caller may change: the cached ones keep the stored counts."""
    if key is None:
        return await load()
    ttl = SEARCH_CACHE_TTL if key.shape in SEARCHES.values() else None
    return [dict(item) for item in await request.config_dict[content_cache_key].get(key, load, ttl=ttl)]


async def item_page(
    request: web.Request,
    kind: str,
    query: str,
    shape: typing.Callable[[dict[str, typing.Any]], dict[str, typing.Any]],
    args: dict[str, typing.Any],
    offset: int,
    limit: int,
    cache_key: Key[list] | None,
) -> list[dict[str, typing.Any]]:
    """One window of a filtered video or live list (`query` = SELECT ... WHERE ... ORDER BY),
    shaped item by item, view counts up to date."""
    if limit <= 0:
        return []

    async def load() -> list[dict[str, typing.Any]]:
        rows = await fetch_rows(
            request, f"{query} LIMIT %(limit)s OFFSET %(offset)s", {**args, "limit": limit, "offset": offset}
        )
        return [shape(row) for row in rows]

    items = await cached_items(request, cache_key, load)
    await request.config_dict[view_counts_key].with_pending(kind, items)
    return items


async def published_item(
    request: web.Request,
    kind: str,
    query: str,
    shape: typing.Callable[[dict[str, typing.Any]], dict[str, typing.Any]],
    not_found: type[ApiError],
    ident: int,
) -> dict[str, typing.Any]:
    """The published video or live `ident` (the path's id; `query` takes it as its one parameter), shaped,
    as a copy the caller may change, view count up to date.

    The miss is raised inside the loader, so it is not cached and an item published a moment later
    shows at once. A miss costs one index probe, and caching misses would let a scan of made-up ids
    push the hot entries out of the cache.
    """
    if ident > MAX_ID:
        raise not_found()

    async def load() -> dict[str, typing.Any]:
        row = await db.fetchone(request.config_dict[pg_key], query, (ident,))
        if row is None:
            raise not_found()
        return shape(row)

    item = dict(await request.config_dict[content_cache_key].get(ITEMS[kind](ident), load))
    await request.config_dict[view_counts_key].with_pending(kind, [item])
    return item


async def video_page(
    request: web.Request,
    where: str,
    args: dict[str, typing.Any],
    offset: int,
    limit: int,
    cache_key: Key[list] | None = None,
) -> list[dict[str, typing.Any]]:
    """Video items of one window of the filtered list, newest first, view counts up to date."""
    query = f"{VIDEO_SELECT} WHERE {where} {NEWEST_FIRST}"
    return await item_page(request, VIDEO, query, video_item, args, offset, limit, cache_key)


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
