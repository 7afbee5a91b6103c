"""Endpoint 33: page configuration values (ICP number, copyright, the agreements ...) by code.

Only the codes the H5 pages read are answered (services/configs.PAGE_CODES); any other code, the
server's own settings included, answers exactly like a code that does not exist. Each value is cached
as VALUE (services/content_cache.py); unknown codes are not.
"""

from __future__ import annotations

import asyncio
import functools
import re
import typing

import aiopg
import nh3
from aiohttp import web

from ..errors import ConfigNotFound, ParameterError
from ..keys import content_cache_key, pg_key
from ..services.configs import PAGE_CODES, is_page_code
from ..services.content_cache import shape
from ..store import db
from ..web.fields import Int, Many, Spec
from ..web.openapi import describe, obj, string
from ..web.responses import json_response

routes = web.RouteTableDef()

VALUE = shape("config", "page_config_value", str)
MAX_CODES = 50
CODE_MAX_LEN = 100


class _Absent(Exception):
    """A code without a value, raised by its loader so that the miss is not cached."""


class _Cold(Exception):
    """Raised by a loader that only looks: the code is not cached."""


async def _look(code: str) -> str:
    raise _Cold(code)


async def config_values(request: web.Request, codes: list[str]) -> dict[str, str]:
    """The values of the page codes that exist, from the cache; the others read in one query. Codes the
    pages do not read are left out, like codes that do not exist."""
    cache = request.config_dict[content_cache_key]
    found: dict[str, str] = {}
    cold: list[str] = []
    for code in filter(is_page_code, codes):
        try:
            found[code] = await cache.get(VALUE(code), functools.partial(_look, code))
        except _Cold:
            cold.append(code)
        except _Absent:
            pass  # another request's load, which found no such code, was under way
    if not cold:
        return found
    pool = request.config_dict[pg_key]
    query: asyncio.Future[dict[str, str]] | None = None

    def loader(code: str) -> typing.Callable[[], typing.Awaitable[str]]:
        async def load() -> str:
            nonlocal query
            if query is None:
                query = asyncio.ensure_future(_read_values(pool, cold))
            values = await query
            if code not in values:
                raise _Absent(code)
            return values[code]

        return load

    # Every get starts (and notes the cache's generation) before the shared query runs, so a
    # value read before an invalidation is never stored after it.
    results = await asyncio.gather(
        *(cache.get(VALUE(code), loader(code)) for code in cold), return_exceptions=True
    )
    for code, result in zip(cold, results, strict=True):
        if not isinstance(result, BaseException):
            found[code] = result
        elif not isinstance(result, _Absent):
            raise result
    return found


async def _read_values(pool: aiopg.Pool, codes: list[str]) -> dict[str, str]:
    rows = await db.fetchall(pool, "SELECT code, value FROM config_values WHERE code = ANY(%s)", (codes,))
    return {row["code"]: row["value"] for row in rows}


# Where a block of text ends: its text must not run into the next block's once the tags are gone.
BLOCK_END = re.compile(r"(</(?:p|div|h[1-6]|li|tr|blockquote|section|article)\s*>|<br\s*/?>)", re.IGNORECASE)


def strip_tags(value: str) -> str:
    """The text of an HTML value: tags dropped (a block's end becomes a line break), the text left HTML-escaped."""
    return nh3.clean(BLOCK_END.sub("\\1\n", value), tags=set()).strip()


class ValueParams(Spec):
    # No real code is anywhere near CODE_MAX_LEN long.
    code = Many(
        f"配置编码：单个字符串；或数组（code[]=a&code[]=b、重复 code、JSON 数组），最多 {MAX_CODES} 个",
        max_items=MAX_CODES, max_length=CODE_MAX_LEN,
    )
    tags = Int("是否去除 HTML 标签：1 去除，0 原样（默认）", minimum=0, maximum=1, default=0, enum=[0, 1])


@routes.get("/api/v1/config/value")
@routes.post("/api/v1/config/value")
@describe(
    "获取页面配置项值",
    tag="配置",
    params=ValueParams,
    response=obj("单个 code 时为 {value}；数组时为以 code 为键的对象 {code: value, ...}", value=string("配置值")),
    errors=[ParameterError, ConfigNotFound],
    description=(
        "也接受 GET。H5 协议页 protocol.html?type=1|2|3 以 code[]=<code>&tags=1 读取 service_agreement（服务协议）、"
        "purchase_agreement（视频购买观看协议）、membership_agreement（尊享会员服务协议）："
        "这三项每个安装都有（初始为占位文本，由俱乐部替换为正式文本）。只回答页面读取的编码："
        + "；".join(f"{code}（{page}）" for code, page in PAGE_CODES.items())
        + "。其他编码（服务器自用的设置）与不存在的编码一样回答 40004。"
    ),
)
async def get_config_values(request: web.Request) -> web.Response:
    p = await ValueParams.read(request)
    codes, strip = p.code.values, p.tags == 1
    found = await config_values(request, codes)
    missing = [code for code in codes if code not in found]
    if missing:
        raise ConfigNotFound(f"请求配置不存在: {', '.join(missing)}")
    values = {code: strip_tags(found[code]) if strip else found[code] for code in codes}
    if p.code.array:
        return json_response(values)
    return json_response({"value": values[codes[0]]})
