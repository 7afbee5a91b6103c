"""The steps every request goes through, each in one place: the one error path, CORS, media URLs made
absolute. pipeline.py runs them in their order."""

from __future__ import annotations

import logging
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
from ..keys import outages_key, request_id_key
from ..lib.logthrottle import JUNK
from ..store import media
from ..store.outages import dependency_of
from . import public_urls
from .responses import json_response

logger = logging.getLogger(__name__)

Handler = typing.Callable[[web.Request], typing.Awaitable[web.StreamResponse]]


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


def absolute_media_urls(request: web.Request, response: web.StreamResponse, base: str | None = None) -> None:
    """Stored media paths (`/media/...`) leave in JSON answers as absolute URLs under the public URL
    (`base`, when the settings fix it; else public_urls.public_base): every field of every answer, cached
    or not, in one place."""
    if type(response) is web.Response:
        body = response.body
        # Most answers carry no stored path (and a cached one has them absolute already, cached_json): the
        # content type is parsed and the base URL worked out only for those that do.
        if isinstance(body, bytes) and media.JSON_MEDIA in body and response.content_type == "application/json":
            response.body = media.absolute_in_json(body, base or public_urls.public_base(request))


def error_answer(request: web.Request, exc: Exception) -> web.StreamResponse:
    """The answer to what a handler raised: a documented error as the API's JSON error body, an outage as
    503, anything unexpected a bare 500 (logged). An HTTP redirect, or an HTTP error outside /api/, is
    raised again for aiohttp (or the console's own error pages) to answer."""
    if isinstance(exc, ApiError):
        return error_body(request, exc)
    if isinstance(exc, web.HTTPException):
        if exc.status < 400 or not request.path.startswith("/api/"):
            raise exc
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
    dependency = dependency_of(exc)
    if dependency is not None:
        # Logged once per outage (outages.py), not once per request.
        return error_body(request, request.config_dict[outages_key].refused(dependency, exc))
    # Held back when a flood of junk sets off the same bug over and over.
    logger.error(
        "unexpected error in request %s: %s %s", request.get(request_id_key), request.method, request.path,
        exc_info=exc, extra=JUNK,
    )
    return error_body(request, InternalError())


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """The error path alone (error_answer), for an application without the pipeline (pipeline.py)."""
    try:
        return await handler(request)
    except Exception as exc:
        return error_answer(request, exc)


CORS_ALLOW_HEADERS = "token, content-type, x-requested-with"
CORS_ALLOW_METHODS = "GET, POST, OPTIONS"
CORS_PREFLIGHT = {
    "Access-Control-Allow-Methods": CORS_ALLOW_METHODS,
    "Access-Control-Allow-Headers": CORS_ALLOW_HEADERS,
    "Access-Control-Max-Age": "86400",
}


class Cors:
    """CORS for the configured origins; the preflight must let the custom `token` header through."""

    def __init__(self, origins: typing.Collection[str]) -> None:
        self.any = "*" in origins
        self.origins = frozenset(origins)

    def headers(self, request: web.Request) -> dict[str, str] | None:
        """The CORS headers of an answer to this request, or None when its origin is not allowed."""
        if not self.origins:
            return None
        origin = request.headers.get("Origin")
        if not origin or not (self.any or origin in self.origins):
            return None
        return {"Access-Control-Allow-Origin": "*" if self.any else origin, "Vary": "Origin"}

    @staticmethod
    def preflight(request: web.Request, headers: dict[str, str]) -> web.Response | None:
        """The 204 answering a preflight, which stops the request here; None for any other request."""
        if request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers:
            return web.Response(status=204, headers={**headers, **CORS_PREFLIGHT})
        return None

    @staticmethod
    def add(response: web.StreamResponse, headers: dict[str, str]) -> None:
        if not response.prepared:
            response.headers.update(headers)
            response.headers["Access-Control-Expose-Headers"] = "X-Request-Id"
