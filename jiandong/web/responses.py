"""JSON answers: the body, the document's operation result and its page shape."""

from __future__ import annotations

import math
import typing

from aiohttp import web

from ..lib import encoding


def json_response(data: typing.Any, status: int = 200) -> web.Response:
    return web.Response(body=encoding.dumps(data), status=status, content_type="application/json")


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
