"""JSON answers: the body, the document's operation result and its page shape."""

from __future__ import annotations

import math
import typing

from aiohttp import web

from ..lib import encoding
from ..services.content_cache import ContentCache, Key
from ..store import media


def json_response(data: typing.Any, status: int = 200) -> web.Response:
    return web.Response(body=encoding.dumps(data), status=status, content_type="application/json")


async def cached_json(cache: ContentCache, key: Key[bytes], load: typing.Callable[[], typing.Awaitable[typing.Any]],
                      ttl: float | None = None) -> web.Response:
    """A 200 JSON answer of what `load` returns, kept in the content cache as its encoded bytes: a hit does
    no JSON work. `key`'s shape holds bytes; what `load` raises is raised (and nothing cached).

    Its stored media paths are made absolute when it is cached, if the settings fix the public URL, so
    that a hit does not rewrite them again on its way out (pipeline: middlewares.absolute_media_urls).
    """

    async def encoded() -> bytes:
        body = encoding.dumps(await load())
        return media.absolute_in_json(body, cache.media_base) if cache.media_base else body

    return web.Response(body=await cache.get(key, encoded, ttl), content_type="application/json")


def operation_result(request: web.Request) -> web.Response:
    """The document's operation-result body."""
    return json_response({"msg": "success", "error_code": 0, "request_url": request.path})


def page_body(items: list[typing.Any], total: int, page: int, size: int) -> dict[str, typing.Any]:
    return {
        "total": total,
        "per_page": size,
        "current_page": page,
        "last_page": max(1, math.ceil(total / size)),
        "data": items,
    }
