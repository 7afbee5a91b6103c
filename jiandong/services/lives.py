"""Live streams as the club edits them: list, writes, stream URLs; status by hand goes through live_status."""

from __future__ import annotations

import time
import typing

from aiohttp import web

from ..integrations.aliyun_live import LiveUrls, aliyun_urls_configured, live_urls, with_push_token
from ..keys import content_cache_key, pg_key, settings_key
from ..store import db
from .editing import (
    Invalid,
    ListQuery,
    delete_unless_used,
    fetch_page,
    insert_row,
    order_clause,
    search_clause,
    set_status,
    update_row,
    written,
)
from .live_status import StatusChange, set_live_status

STATUS_LABELS = {0: "未开始", 1: "直播中", 2: "已结束"}
FIELDS = ("title", "summary", "main_img_url", "competition_id", "app_name", "stream_name", "online_show",
          "publish_time")
URL_FIELDS = ("plug_flow", "play_rtmp", "play_flv", "play_m3u8")
SORTS = {"publish_time": "l.publish_time", "title": "l.title", "live_status": "l.live_status", "id": "l.id"}
COLUMNS = """
    l.id, l.title, l.summary, l.main_img_url, l.competition_id, l.app_name, l.stream_name, l.play_rtmp, l.play_flv,
    l.play_m3u8, l.plug_flow, l.live_status, l.live_changed_at, l.online_show, l.browse_num, l.status,
    l.publish_time, c.title AS competition_title
"""
SOURCE = "lives l LEFT JOIN competitions c ON c.id = l.competition_id"
USES = [
    ("SELECT count(*) FROM lives WHERE id = %(id)s AND live_status = 1", "正在进行的直播流"),
    ("SELECT count(*) FROM chat_messages WHERE room_id = %(id)s", "聊天记录"),
]


async def list_lives(pool: typing.Any, query: ListQuery) -> tuple[list[db.Row], int]:
    where, args = search_clause(query, "l.title", "l.summary", "l.stream_name", "c.title")
    return await fetch_page(pool, COLUMNS, SOURCE, where, args, order_clause(SORTS, query, "publish_time", "l.id"),
                            query)


async def get_live(pool: typing.Any, live_id: int) -> db.Row | None:
    return await db.fetchone(pool, f"SELECT {COLUMNS} FROM {SOURCE} WHERE l.id = %s", (live_id,))


def stream_urls(app: web.Application, values: dict[str, typing.Any], generate: bool) -> dict[str, str]:
    """The four URLs to store: generated for the configured Aliyun Live domains, or as entered by hand
    (an SRS / nginx-rtmp push URL gets the push secret as its token)."""
    settings = app[settings_key]
    if generate:
        if not aliyun_urls_configured(settings):
            raise Invalid("未配置阿里云直播推流域名和鉴权 Key，请手动填写地址", "generate")
        urls = live_urls(settings, values["app_name"], values["stream_name"], int(time.time()))
    else:
        urls = LiveUrls(with_push_token(values.get("plug_flow", ""), settings.live_push_secret),
                        values.get("play_rtmp", ""), values.get("play_flv", ""), values.get("play_m3u8", ""))
    return dict(zip(URL_FIELDS, urls, strict=True))


UNIQUE_STREAM = ("lives_stream_name_key", "流名称已被其他直播使用", "stream_name")


async def create_live(app: web.Application, values: dict[str, typing.Any], *, generate: bool,
                      published: bool = False) -> int:
    row = {**{k: values[k] for k in FIELDS if k in values}, **stream_urls(app, values, generate),
           "status": int(published)}
    async with written(app[pg_key], *UNIQUE_STREAM) as cur:
        live_id = await insert_row(cur, "lives", row)
    await changed(app)
    return live_id


async def update_live(app: web.Application, live_id: int, values: dict[str, typing.Any], *, generate: bool) -> None:
    row = {**{k: values[k] for k in FIELDS if k in values}, **stream_urls(app, values, generate)}
    async with written(app[pg_key], *UNIQUE_STREAM) as cur:
        await update_row(cur, "lives", live_id, row)
    await changed(app)


async def publish_live(app: web.Application, live_id: int, published: bool) -> None:
    await set_status(app[pg_key], "lives", live_id, int(published))
    await changed(app)


async def delete_live(app: web.Application, live_id: int) -> None:
    await delete_unless_used(app[pg_key], "lives", live_id, USES)
    await changed(app)


async def set_status_by_hand(app: web.Application, stream_name: str, live_status: int) -> StatusChange:
    """Staff set the status when no callback arrives: the one path every status change takes."""
    # A start set by hand names no publishing session, so any stop (callback or hand) may end it.
    return await set_live_status(app, stream_name, live_status, source="admin")


async def changed(app: web.Application) -> None:
    await app[content_cache_key].invalidate("live")
