"""The console's HTML error pages: PageError for refusals we word ourselves, and the middleware showing them."""

from __future__ import annotations

import logging
import typing

from aiohttp import web

from ..keys import outages_key
from ..store.outages import dependency_of
from .render import render_error

logger = logging.getLogger(__name__)

Handler = typing.Callable[[web.Request], typing.Awaitable[web.StreamResponse]]

MESSAGES = {
    400: "请求有误",
    403: "你的角色没有权限进行此操作",
    404: "页面不存在",
    405: "不支持此请求方法",
    413: "提交的内容过大",
    415: "不支持此提交格式",
    429: "请求过于频繁，请稍后再试",
    500: "服务器内部错误，请稍后重试",
    503: "服务暂时不可用，请稍后重试",
}


class PageError(Exception):
    """Answer with an error page: HTTP `status` and a message for the person using the console."""

    def __init__(self, status: int, message: str = "") -> None:
        super().__init__(message or MESSAGES.get(status, ""))
        self.status = status
        self.message = message or MESSAGES.get(status, "")


def forbidden(message: str = "") -> PageError:
    return PageError(403, message)


@web.middleware
async def error_pages_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Errors as HTML pages (the H5 API's error path answers JSON); redirects pass through. A NUL in the
    address names nothing here either (web/middlewares.py refuses it for the API)."""
    try:
        if "\x00" in request.path or "\x00" in request.query_string:
            raise PageError(400, "请求地址含有非法字符")
        return await handler(request)
    except PageError as exc:
        return await render_error(request, exc.status, exc.message)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        response = await render_error(request, exc.status, MESSAGES.get(exc.status, exc.reason))
        if "Allow" in exc.headers:
            response.headers["Allow"] = exc.headers["Allow"]
        return response
    except Exception as exc:
        dependency = dependency_of(exc)
        if dependency is not None:
            # Logged once per outage (outages.py), not once per request.
            request.config_dict[outages_key].refused(dependency, exc)
            response = await render_error(request, 503, MESSAGES[503], with_session=False)
            response.headers["Retry-After"] = "5"
            return response
        logger.exception("unexpected error in console request %s %s", request.method, request.path)
        return await render_error(request, 500, MESSAGES[500], with_session=False)
