"""The one middleware every request goes through: the steps of the request path, in their order.

One layer instead of eight: each middleware layer costs a coroutine frame and a handler partial per
request, and what can be known once per route (its metric children, its body limit, whether it needs a
token) is looked up once per route here, not once per request. The steps, outermost first:

1. measure (access.py): the access line and the HTTP metrics see every answer as it leaves;
2. the chat port's guard, which leaves that port nothing but the websocket;
3. CORS, so error answers carry its headers too, and preflights stop here;
4. the request id (X-Request-Id, and the log lines written while the request is handled);
5. the one error path (middlewares.error_answer): documented errors, outages, anything unexpected;
6. the client's address behind trusted proxies (proxies.py), before anything reads `request.remote`;
7. the request limits: a NUL in the path or query, or a body over the route's limit by its
   Content-Length, refused before a byte of it is read (the console's routes read their own bodies);
8. the token (auth.py), last, so its 10003 goes through the error path like any other error;
then the handler, and on the way out stored media paths made absolute in JSON answers.
"""

from __future__ import annotations

import itertools
import secrets
import time
import typing

from aiohttp import web
from aiohttp.web_urldispatcher import UrlMappingMatchInfo

from ..errors import ParameterError, PayloadTooLarge, TokenInvalid
from ..keys import body_limit_key, request_id_key, tokens_key, user_id_key
from ..lib import logformat
from ..ops.metrics import Metrics
from ..settings import Settings
from .access import Access, RouteMeter
from .auth import TokenStore
from .middlewares import Cors, absolute_media_urls, error_answer
from .params import DEFAULT_BODY_LIMIT, on_chat_port
from .proxies import TrustedProxies

Handler = typing.Callable[[web.Request], typing.Awaitable[web.StreamResponse]]
CHAT_PORT_ONLY = "the chat port serves only its websocket, at /"


class RequestIds:
    """Request ids, 16 hex digits: a random prefix per process and a counter. Unique per process and, with
    overwhelming likelihood, among processes; not secret (they are echoed and logged), so drawing each
    from the system's random source (a system call per request) would buy nothing."""

    def __init__(self) -> None:
        self.prefix = secrets.token_hex(4)
        self.counter = itertools.count()

    def __call__(self) -> str:
        return f"{self.prefix}{next(self.counter) & 0xFFFFFFFF:08x}"


class Route:
    """What the request path needs to know of a route, found once: its meter, body limit and token rule."""

    __slots__ = ("console", "limit", "meter", "token_required")

    def __init__(self, meter: RouteMeter, console: bool, limit: int, token_required: bool) -> None:
        self.meter = meter
        # A sub-application's route (the console) reads its own bodies, with limits of its own per field,
        # and refuses a NUL with a page of its own (admin/errors.py), not with the API's JSON.
        self.console = console
        self.limit = limit
        # /api/ routes need a token unless marked public (auth.public); the path is checked per request.
        self.token_required = token_required

    @classmethod
    def of(cls, match: UrlMappingMatchInfo, meter: RouteMeter) -> Route:
        doc = getattr(match.handler, "openapi", None)
        return cls(meter, len(match.apps) > 1, doc.max_body if doc is not None else DEFAULT_BODY_LIMIT,
                   not getattr(match.handler, "public", False))


class Pipeline:
    """`app.middlewares = [Pipeline(settings, metrics)]`: the request path of the H5 API and everything
    the main application routes (the console's sub-application adds its own chain after it)."""

    # What aiohttp's @web.middleware marks: a new-style middleware, (request, handler) -> response.
    __middleware_version__ = 1

    def __init__(self, settings: Settings, metrics: Metrics) -> None:
        self.access = Access(metrics, settings.access_log)
        self.cors = Cors(settings.cors_origins)
        self.chat_port = bool(settings.chat_port)
        self.proxies = TrustedProxies(settings.trusted_proxies) if settings.trust_proxy else None
        # What no route matched needs no token: its 404 or 405 says more than a 10003 would. Under the
        # console's prefix it is the console's to answer.
        self.unmatched = Route(self.access.unmatched, False, DEFAULT_BODY_LIMIT, False)
        self.unmatched_console = Route(self.access.unmatched, True, DEFAULT_BODY_LIMIT, False)
        self.request_ids = RequestIds()
        # Fixed by the settings when set (as in production): not looked up per answer.
        self.public_base = settings.fixed_public_base
        # Keyed by the route object: bounded by the router. A request no route matched has a route object
        # of its own (aiohttp's SystemRoute) and is never kept here.
        self.routes: dict[web.AbstractRoute, Route] = {}
        self.tokens: TokenStore | None = None

    def _tokens(self, request: web.Request) -> TokenStore:
        # The application's token store, found once: it is made at start-up and kept until the end.
        if self.tokens is None:
            self.tokens = request.config_dict[tokens_key]
        return self.tokens

    def route(self, match: UrlMappingMatchInfo) -> Route:
        if match.http_exception is not None:
            return self.unmatched_console if len(match.apps) > 1 else self.unmatched
        found = self.routes.get(match.route)
        if found is None:
            resource = match.route.resource
            label = resource.canonical if resource is not None else self.access.unmatched.label
            found = self.routes[match.route] = Route.of(match, self.access.meter(label))
        return found

    async def __call__(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        started = time.perf_counter()
        route = self.route(request.match_info)
        status = 500
        request_id = None
        inner = request
        try:
            request_id = self.request_ids()
            request[request_id_key] = request_id
            # For the log lines written while it is handled (this request's task has a context of its own).
            logformat.request_id.set(request_id)
            if self.chat_port and request.path != "/" and on_chat_port(request):
                raise web.HTTPNotFound(text=CHAT_PORT_ONLY)
            cors = self.cors.headers(request)
            if cors is not None and (preflight := self.cors.preflight(request, cors)) is not None:
                preflight.headers["X-Request-Id"] = request_id
                status = preflight.status
                return preflight
            try:
                if self.proxies is not None:
                    inner = self.proxies.resolve(request)
                response = await self._handle(inner, handler, route)
            except Exception as exc:
                response = error_answer(inner, exc)
            if not response.prepared:
                response.headers["X-Request-Id"] = request_id
            if cors is not None:
                self.cors.add(response, cors)
            status = response.status
            return response
        except web.HTTPException as exc:
            # What aiohttp answers for us (a page outside /api/ no route has, a redirect) carries the id too.
            if request_id is not None:
                exc.headers["X-Request-Id"] = request_id
            status = exc.status
            raise
        finally:
            self.access.done(request, route.meter, status, started, request_id, inner.get(user_id_key))

    async def _handle(self, request: web.Request, handler: Handler, route: Route) -> web.StreamResponse:
        if not route.console:
            if "\x00" in request.path or "\x00" in request.query_string:
                raise ParameterError("参数错误: 请求地址含有非法字符")
            if (request.content_length or 0) > route.limit:
                raise PayloadTooLarge()
            request[body_limit_key] = route.limit
        token = request.headers.get("token")
        user_id = None
        if token:
            tokens = self.tokens or self._tokens(request)
            # Most requests come with a token seen a moment ago: no coroutine for those.
            user_id = tokens.known(token)
            if user_id is None:
                user_id = await tokens.resolve(token)
        request[user_id_key] = user_id
        if user_id is None and route.token_required and request.path.startswith("/api/"):
            raise TokenInvalid()
        response = await handler(request)
        absolute_media_urls(request, response, self.public_base)
        return response
