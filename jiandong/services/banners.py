"""Banners (carousel pictures) as the club edits them: list, writes, and the invalidation of the carousels."""

from __future__ import annotations

import typing

from aiohttp import web

from ..keys import content_cache_key, pg_key
from ..store import db
from .editing import ListQuery, NotFound, fetch_page, insert_row, order_clause, search_clause, set_status, update_row
from .files import StoredFile

POSITIONS = {1: "球员中心", 2: "赛事中心", 3: "资讯中心"}
FIELDS = ("title", "description", "position", "jump_url", "sort")
SORTS = {"position": "b.position", "sort": "b.sort", "title": "b.title", "id": "b.id"}
COLUMNS = "b.id, b.title, b.description, b.position, b.img_id, b.img_url, b.jump_url, b.sort, b.status, b.created_at"


async def list_banners(pool: typing.Any, query: ListQuery, position: int | None = None) -> tuple[list[db.Row], int]:
    where, args = search_clause(query, "b.title", "b.description")
    if position is not None:
        where = " AND ".join(filter(None, [where, "b.position = %(position)s"]))
        args["position"] = position
    order = order_clause(SORTS, query, "position", "b.id")
    if not query.sort:
        order = "b.position, b.sort, b.id"
    return await fetch_page(pool, COLUMNS, "banners b", where, args, order, query)


async def get_banner(pool: typing.Any, banner_id: int) -> db.Row | None:
    return await db.fetchone(pool, f"SELECT {COLUMNS} FROM banners b WHERE b.id = %s", (banner_id,))


async def _with_image(cur: typing.Any, values: dict[str, typing.Any], image: StoredFile | None
                      ) -> dict[str, typing.Any]:
    out = {k: values[k] for k in FIELDS if k in values}
    if image is not None:
        out["img_id"] = await image.record(cur)
        out["img_url"] = image.url
    return out


async def create_banner(app: web.Application, values: dict[str, typing.Any], image: StoredFile,
                        *, enabled: bool = True) -> int:
    async with db.transaction(app[pg_key]) as cur:
        banner_id = await insert_row(cur, "banners", {**await _with_image(cur, values, image), "status": int(enabled)})
    await changed(app)
    return banner_id


async def update_banner(app: web.Application, banner_id: int, values: dict[str, typing.Any],
                        image: StoredFile | None = None) -> None:
    async with db.transaction(app[pg_key]) as cur:
        await update_row(cur, "banners", banner_id, await _with_image(cur, values, image), touch=False)
    await changed(app)


async def enable_banner(app: web.Application, banner_id: int, enabled: bool) -> None:
    await set_status(app[pg_key], "banners", banner_id, int(enabled), touch=False)
    await changed(app)


async def delete_banner(app: web.Application, banner_id: int) -> None:
    """Nothing refers to a banner: it can always go."""
    if await db.execute(app[pg_key], "DELETE FROM banners WHERE id = %s", (banner_id,)) != 1:
        raise NotFound("banners")
    await changed(app)


async def changed(app: web.Application) -> None:
    await app[content_cache_key].invalidate("banner")
