"""Replays and highlights as the club edits them: list, writes (with their video file), invalidation."""

from __future__ import annotations

import typing

from aiohttp import web

from ..keys import content_cache_key, pg_key
from ..store import db
from .editing import ListQuery, NotFound, fetch_page, insert_row, order_clause, search_clause, set_status, update_row
from .files import StoredFile

TYPES = {1: "回放", 2: "集锦"}
FIELDS = ("title", "summary", "main_img_url", "competition_id", "type", "publish_time")
SORTS = {"publish_time": "v.publish_time", "title": "v.title", "browse_num": "v.browse_num", "id": "v.id"}
COLUMNS = """
    v.id, v.title, v.summary, v.main_img_url, v.competition_id, v.type, v.publish_time, v.browse_num, v.status,
    v.file_id, f.name AS file_name, f.original AS file_original, f.size AS file_size, c.title AS competition_title
"""
SOURCE = "videos v LEFT JOIN files f ON f.id = v.file_id LEFT JOIN competitions c ON c.id = v.competition_id"


async def list_videos(pool: typing.Any, query: ListQuery) -> tuple[list[db.Row], int]:
    where, args = search_clause(query, "v.title", "v.summary", "c.title")
    return await fetch_page(pool, COLUMNS, SOURCE, where, args, order_clause(SORTS, query, "publish_time", "v.id"),
                            query)


async def get_video(pool: typing.Any, video_id: int) -> db.Row | None:
    return await db.fetchone(pool, f"SELECT {COLUMNS} FROM {SOURCE} WHERE v.id = %s", (video_id,))


async def _with_file(cur: typing.Any, values: dict[str, typing.Any], video: StoredFile | None) -> dict[str, typing.Any]:
    out = {k: values[k] for k in FIELDS if k in values}
    if video is not None:
        out["file_id"] = await video.record(cur)
    return out


async def create_video(app: web.Application, values: dict[str, typing.Any], video: StoredFile,
                       *, published: bool = False) -> int:
    async with db.transaction(app[pg_key]) as cur:
        video_id = await insert_row(cur, "videos", {**await _with_file(cur, values, video), "status": int(published)})
    await changed(app)
    return video_id


async def update_video(app: web.Application, video_id: int, values: dict[str, typing.Any],
                       video: StoredFile | None = None) -> None:
    async with db.transaction(app[pg_key]) as cur:
        await update_row(cur, "videos", video_id, await _with_file(cur, values, video))
    await changed(app)


async def publish_video(app: web.Application, video_id: int, published: bool) -> None:
    await set_status(app[pg_key], "videos", video_id, int(published))
    await changed(app)


async def delete_video(app: web.Application, video_id: int) -> None:
    """Nothing refers to a video; its file row stays (the stored file may be shared)."""
    if await db.execute(app[pg_key], "DELETE FROM videos WHERE id = %s", (video_id,)) != 1:
        raise NotFound("videos")
    await changed(app)


async def changed(app: web.Application) -> None:
    # Lists, totals and searches span videos: the whole kind goes (see api/videos.py).
    await app[content_cache_key].invalidate("video")
