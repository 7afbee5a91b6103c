"""Cross-cutting middlewares: request ids, the one error path, CORS. Their order is set in app.py."""

from __future__ import annotations

import logging
import secrets
import typing

from aiohttp import web

from ..errors import (
    ApiError,
    BodyTimeout,
    InternalError,
    MethodNotAllowed,
    ParameterError,
    PayloadTooLarge,
    RouteNotFound,
    ServiceUnavailable,
)
from ..keys import body_limit_key, outages_key, request_id_key, settings_key
from ..lib import logformat
from ..lib.logthrottle import JUNK
from ..store import media
from ..store.outages import dependency_of
from . import public_urls
from .params import DEFAULT_BODY_LIMIT, on_chat_port
from .responses import json_response

logger = logging.getLogger(__name__)

Handler = typing.Callable[[web.Request], typing.Awaitable[web.StreamResponse]]


@web.middleware
async def request_id_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Give each request an id, echoed in X-Request-Id and used in the logs."""
    request_id = secrets.token_hex(8)
    request[request_id_key] = request_id
    # For the log lines written while it is handled (this request's task has a context of its own).
    logformat.request_id.set(request_id)
    response = await handler(request)
    if not response.prepared:
        response.headers["X-Request-Id"] = request_id
    return response


def error_body(request: web.Request, error: ApiError) -> web.Response:
    response = json_response(
        {"msg": error.msg, "error_code": error.error_code, "request_url": request.path}, status=error.status
    )
    if isinstance(error, ServiceUnavailable):
        response.headers["Retry-After"] = str(error.retry_after)
    if isinstance(error, (PayloadTooLarge, BodyTimeout)):
        # The rest of an oversized or stalled body is not worth waiting for (aiohttp would drain it for 10 s).
        response.force_close()
    return response


_HTTP_ERRORS: dict[int, type[ApiError]] = {
    400: ParameterError, 404: RouteNotFound, 405: MethodNotAllowed, 413: PayloadTooLarge,
}


@web.middleware
async def media_urls_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Stored media paths (`/media/...`) leave in JSON answers as absolute URLs under the public URL
    (public_urls.public_base): every field of every answer, cached or not, in one place."""
    response = await handler(request)
    if type(response) is web.Response and response.content_type == "application/json":
        body = response.body
        if isinstance(body, bytes):
            rewritten = media.absolute_in_json(body, public_urls.public_base(request))
            if rewritten is not body:
                response.body = rewritten
    return response


@web.middleware
async def chat_port_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """The dedicated chat port serves its websocket at / and nothing else: whoever opens that port to
    the world (the old deployment did) must not expose the API, the console or the metrics through it."""
    if request.path != "/" and on_chat_port(request):
        raise web.HTTPNotFound(text="the chat port serves only its websocket, at /")
    return await handler(request)


@web.middleware
async def request_limits_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Refuse before any handler what none can take: a NUL in the path or query (it names no file,
    row or setting, and PostgreSQL and the file system refuse it), or a body over the route's limit
    by its Content-Length, before a byte of it is read."""
    if len(request.match_info.apps) > 1:
        # A sub-application's route (the console) reads its own bodies, with limits of its own per field,
        # and refuses a NUL with a page of its own (admin/errors.py), not with the API's JSON.
        return await handler(request)
    if "\x00" in request.path or "\x00" in request.query_string:
        raise ParameterError("参数错误: 请求地址含有非法字符")
    doc = getattr(request.match_info.handler, "openapi", None)
    limit = doc.max_body if doc is not None else DEFAULT_BODY_LIMIT
    if (request.content_length or 0) > limit:
        raise PayloadTooLarge()
    request[body_limit_key] = limit
    return await handler(request)


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Documented errors become the API's JSON error body; anything unexpected a bare 500."""
    try:
        return await handler(request)
    except ApiError as error:
        return error_body(request, error)
    except web.HTTPException as exc:
        if exc.status < 400 or not request.path.startswith("/api/"):
            raise
        cls = _HTTP_ERRORS.get(exc.status)
        if cls is not None:
            response = error_body(request, cls())
            # A 405 must say which methods the resource has (RFC 9110).
            if "Allow" in exc.headers:
                response.headers["Allow"] = exc.headers["Allow"]
            return response
        return json_response(
            {"msg": exc.reason, "error_code": 10000, "request_url": request.path}, status=exc.status
        )
    except Exception as exc:
        dependency = dependency_of(exc)
        if dependency is not None:
            # Logged once per outage (outages.py), not once per request.
            return error_body(request, request.config_dict[outages_key].refused(dependency, exc))
        # Held back when a flood of junk sets off the same bug over and over.
        logger.exception(
            "unexpected error in request %s: %s %s", request.get(request_id_key), request.method, request.path,
            extra=JUNK,
        )
        return error_body(request, InternalError())


CORS_ALLOW_HEADERS = "token, content-type, x-requested-with"
CORS_ALLOW_METHODS = "GET, POST, OPTIONS"


@web.middleware
async def cors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """CORS for the configured origins; the preflight must let the custom `token` header through."""
    origin = request.headers.get("Origin")
    allowed = request.config_dict[settings_key].cors_origins
    if not origin or not allowed or ("*" not in allowed and origin not in allowed):
        return await handler(request)
    headers = {"Access-Control-Allow-Origin": "*" if "*" in allowed else origin, "Vary": "Origin"}
    if request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers:
        headers.update(
            {
                "Access-Control-Allow-Methods": CORS_ALLOW_METHODS,
                "Access-Control-Allow-Headers": CORS_ALLOW_HEADERS,
                "Access-Control-Max-Age": "86400",
            }
        )
        return web.Response(status=204, headers=headers)
    response = await handler(request)
    if not response.prepared:
        response.headers.update(headers)
        response.headers["Access-Control-Expose-Headers"] = "X-Request-Id"
    return response
