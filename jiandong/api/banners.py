"""Endpoints 21 and 22: one banner (广告位) and the carousel of a page position.

Both are cached (services/content_cache.py): a banner as ONE_BANNER, a carousel as CAROUSEL.
Misses are not cached, so a banner enabled later shows at once.
"""

from __future__ import annotations

import re
import typing

from aiohttp import web

from ..errors import BannerNotFound, CarouselNotFound, ParameterError
from ..keys import content_cache_key, pg_key
from ..services.content_cache import shape
from ..services.files import file_columns, file_object
from ..store import db
from ..web.fields import Int, Spec
from ..web.openapi import FILE_OBJECT, array, describe, integer, obj, string
from ..web.responses import cached_json

routes = web.RouteTableDef()
ONE_BANNER = shape("banner", "banner", bytes)
CAROUSEL = shape("banner", "banners_at_position", bytes)

ENABLED = 1
# Positions are smallint; a bigger number cannot match a banner (and must not reach the query).
POSITION_MAX = 32767
BANNER_ID = re.compile(r"[0-9]{1,18}")

BANNER = obj(
    "广告位",
    id=integer("广告位 ID"),
    title=string("标题"),
    description=string("描述"),
    position=integer("广告位置：1 球员中心，2 赛事中心，3 资讯中心"),
    img_url=string("图片路径"),
    jump_url=string("链接"),
    img=FILE_OBJECT,
)

BANNER_SQL = f"""
    SELECT b.id, b.title, b.description, b.position, b.img_url, b.jump_url, {file_columns()}
    FROM banners b LEFT JOIN files f ON f.id = b.img_id
    WHERE b.status = {ENABLED}
"""


def banner_item(row: typing.Mapping[str, typing.Any]) -> dict[str, typing.Any]:
    img = file_object(row, fallback_name=row["img_url"])
    return {
        "id": row["id"],
        "title": row["title"],
        "description": row["description"],
        "position": row["position"],
        # A banner whose picture was picked from the files table may have no img_url of its own.
        "img_url": row["img_url"] or img["name"],
        "jump_url": row["jump_url"],
        "img": img,
    }


class PositionParams(Spec):
    id = Int("广告位位置：1 球员中心，2 赛事中心，3 资讯中心", minimum=None, maximum=None)


# Registered before /banner/{id}, which would otherwise take "by_position" as an id.
@routes.get("/api/v1/banner/by_position")
@routes.post("/api/v1/banner/by_position")
@describe(
    "获取轮播图",
    tag="广告",
    params=PositionParams,
    response=array(BANNER, "该位置启用的轮播图，按排序"),
    errors=[ParameterError, CarouselNotFound],
    description="也接受 GET（?id=）。",
)
async def list_banners_by_position(request: web.Request) -> web.Response:
    position = (await PositionParams.read(request)).id
    if not 0 <= position <= POSITION_MAX:
        raise CarouselNotFound()

    async def load() -> list[dict[str, typing.Any]]:
        rows = await db.fetchall(
            request.config_dict[pg_key], BANNER_SQL + " AND b.position = %s ORDER BY b.sort, b.id", (position,)
        )
        if not rows:
            # Raised in the loader: an empty position is not cached (a miss is one index probe).
            raise CarouselNotFound()
        return [banner_item(row) for row in rows]

    return await cached_json(request.config_dict[content_cache_key], CAROUSEL(position), load)


@routes.get("/api/v1/banner/{id}")
@describe("获取广告位", tag="广告", response=BANNER, errors=[BannerNotFound])
async def get_banner(request: web.Request) -> web.Response:
    banner_id = request.match_info["id"]
    if not BANNER_ID.fullmatch(banner_id):
        raise BannerNotFound()
    ident = int(banner_id)

    async def load() -> dict[str, typing.Any]:
        row = await db.fetchone(request.config_dict[pg_key], BANNER_SQL + " AND b.id = %s", (ident,))
        if row is None:
            # Not cached, so a scan of made-up ids cannot fill the cache.
            raise BannerNotFound()
        return banner_item(row)

    return await cached_json(request.config_dict[content_cache_key], ONE_BANNER(ident), load)
