"""Config values the H5 pages read (agreements, titles, ICP, copyright) as the club edits them; rich text
sanitised on save. Which codes those are is declared here, once (PAGE_CODES)."""

from __future__ import annotations

import re
import typing

from aiohttp import web

from ..keys import content_cache_key, pg_key
from ..store import db
from .editing import Invalid, ListQuery, NotFound, clean_html, fetch_page, order_clause, search_clause

CODE_RE = re.compile(r"[A-Za-z][A-Za-z0-9_.-]{0,99}")
# The codes the H5 pages read through config/value, and where each is read: config/value answers these
# and no other (any other code answers as unknown), and the console's config section shows and edits
# these and no other. Whatever else config_values holds is the server's own: the moderators' banned
# words (services/moderation.py, the console's chat section), the demo's markers.
PAGE_CODES: dict[str, str] = {
    "service_agreement": "协议页 protocol.html?type=1：服务协议",
    "purchase_agreement": "协议页 protocol.html?type=2：视频购买观看协议",
    "membership_agreement": "协议页 protocol.html?type=3：尊享会员服务协议",
    "ICP": "页脚：备案号",
    "copyright": "页脚：版权信息",
    "index_title": "首页：标题",
    "seo_title": "页面标题（SEO）",
    "description": "页面描述（SEO）",
}
PAGE_CODE_LIST = list(PAGE_CODES)


def is_page_code(code: str) -> bool:
    """Whether the H5 pages read this code (and so config/value may answer it)."""
    return code in PAGE_CODES
SORTS = {"code": "code", "name": "name", "updated_at": "updated_at"}
COLUMNS = "code, name, value, rich, updated_at"


async def list_configs(pool: typing.Any, query: ListQuery) -> tuple[list[db.Row], int]:
    """The page codes' values (searched, sorted, a page of them); no other code is listed."""
    where, args = search_clause(query, "code", "name", "value")
    where = f"({where}) AND code = ANY(%(page_codes)s)" if where else "code = ANY(%(page_codes)s)"
    args = {**args, "page_codes": PAGE_CODE_LIST}
    return await fetch_page(pool, COLUMNS, "config_values", where, args, order_clause(SORTS, query, "code", "code"),
                            query)


async def get_config(pool: typing.Any, code: str) -> db.Row | None:
    """A page code's row; None for any other code, as for one that does not exist."""
    if not is_page_code(code):
        return None
    return await db.fetchone(pool, f"SELECT {COLUMNS} FROM config_values WHERE code = %s", (code,))


async def missing_page_codes(pool: typing.Any) -> list[str]:
    """The page codes that have no value yet (the pages find nothing for them)."""
    rows = await db.fetchall(pool, "SELECT code FROM config_values WHERE code = ANY(%s)", (PAGE_CODE_LIST,))
    present = {row["code"] for row in rows}
    return [code for code in PAGE_CODE_LIST if code not in present]


# Codes kept from before (agreement_user ... read by no page since service_agreement & co.) and the demo's
# markers: shown to staff on request, never answered. The banned words are not among them (chat moderation's).
LEGACY_CODE_PATTERNS = (r"agreement\_%", r"demo\_data%")


async def legacy_configs(pool: typing.Any) -> list[db.Row]:
    """The legacy agreement_* codes and the demo's markers, kept in config_values but read by no page."""
    return await db.fetchall(pool, f"SELECT {COLUMNS} FROM config_values WHERE code LIKE ANY(%s) ORDER BY code",
                             (list(LEGACY_CODE_PATTERNS),))


def _value(value: str, rich: bool) -> str:
    return clean_html(value) if rich else value.strip()


async def create_config(app: web.Application, code: str, name: str, value: str, rich: bool) -> None:
    if not is_page_code(code):
        raise Invalid("编码须为 H5 页面读取的配置项之一：" + "、".join(PAGE_CODES), "code")
    row = await db.fetchone(
        app[pg_key],
        "INSERT INTO config_values (code, name, value, rich) VALUES (%s, %s, %s, %s)"
        " ON CONFLICT (code) DO NOTHING RETURNING code",
        (code, name, _value(value, rich), rich),
    )
    if row is None:
        raise Invalid("该编码已存在", "code")
    await changed(app)


async def update_config(app: web.Application, code: str, name: str, value: str) -> None:
    """A new value for an existing page code; rich codes keep only safe HTML. NotFound for any other code."""
    if not is_page_code(code):
        raise NotFound("config_values")
    row = await db.fetchone(
        app[pg_key],
        "UPDATE config_values SET name = %(name)s, value = CASE WHEN rich THEN %(rich)s ELSE %(plain)s END,"
        " updated_at = now() WHERE code = %(code)s RETURNING code",
        {"code": code, "name": name, "rich": _value(value, True), "plain": _value(value, False)},
    )
    if row is None:
        raise NotFound("config_values")
    await changed(app)


async def changed(app: web.Application) -> None:
    await app[content_cache_key].invalidate("config")
