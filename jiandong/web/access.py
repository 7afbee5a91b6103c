"""Each request measured once: its HTTP metrics (by route template) and its access log line."""

from __future__ import annotations

import logging
import time
import typing

from aiohttp import web

from ..keys import metrics_key, request_id_key, settings_key, user_id_key
from ..ops.metrics import route_of

logger = logging.getLogger("jiandong.access")
# Any other method a client invents is counted as "other": labels stay few.
METHODS = frozenset(("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"))

Handler = typing.Callable[[web.Request], typing.Awaitable[web.StreamResponse]]


@web.middleware
async def access_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Count the request by route template, method and status, time it, and log one line for it.

    The line names the path without its query string: a query may carry a secret (a stream
    callback's token), a path never does.
    """
    started = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as exc:
        status = exc.status
        raise
    finally:
        elapsed = time.perf_counter() - started
        route = route_of(request)
        metrics = request.config_dict[metrics_key]
        method = request.method if request.method in METHODS else "other"
        metrics.http_requests.labels(route, method, str(status)).inc()
        websocket = request.headers.get("Upgrade", "").lower() == "websocket"
        # A websocket's time is the length of a chat session, not of an answer.
        if not websocket:
            metrics.http_duration.labels(route).observe(elapsed)
        if request.config_dict[settings_key].access_log:
            user_id = request.get(user_id_key)
            logger.info("%s %s %d %.1fms", request.method, request.path, status, elapsed * 1000, extra={
                "request_id": request.get(request_id_key), "method": request.method, "route": route,
                "status": status, "duration_ms": round(elapsed * 1000, 1), "user_id": user_id,
            })
