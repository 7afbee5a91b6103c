"""/healthz (the process answers) and /readyz (its dependencies answer, its schema is current, it is not stopping).

Public and cheap, for a load balancer or an orchestrator: they say nothing but a status and, when
not ready, which part failed.
"""

from __future__ import annotations

import asyncio
import dataclasses

from aiohttp import web

from ..keys import pg_key, readiness_key, redis_key
from ..store import db
from ..store.outages import POSTGRESQL, REDIS
from .responses import json_response

routes = web.RouteTableDef()

# Seconds each dependency has to answer a readiness check: a check is asked every few seconds and
# must not queue up behind a hung server.
READY_TIMEOUT = 1.0
SCHEMA = "schema"
STOPPING = "shutdown"
LATEST_MIGRATION_SQL = "SELECT coalesce(max(version), 0) FROM schema_migrations"


@dataclasses.dataclass
class Readiness:
    """What /readyz compares against: the code's newest migration (read once), and a shutdown under way."""

    latest_migration: int
    stopping: asyncio.Event = dataclasses.field(default_factory=asyncio.Event)


@routes.get("/healthz")
async def healthz(request: web.Request) -> web.Response:
    """Up: this answer itself shows that the event loop runs."""
    return json_response({"status": "ok"})


@routes.get("/readyz")
async def readyz(request: web.Request) -> web.Response:
    """200 when PostgreSQL and Redis answer within READY_TIMEOUT, the migrations are applied and the server
    is not shutting down; 503 naming what failed otherwise."""
    app = request.app
    readiness = app[readiness_key]
    if readiness.stopping.is_set():
        return not_ready([STOPPING])
    checks = {
        POSTGRESQL: db.fetchval(app[pg_key], LATEST_MIGRATION_SQL),
        REDIS: app[redis_key].ping(),
    }
    results = await asyncio.gather(*(asyncio.wait_for(c, READY_TIMEOUT) for c in checks.values()),
                                   return_exceptions=True)
    failing = [name for name, result in zip(checks, results, strict=True) if isinstance(result, BaseException)]
    if POSTGRESQL not in failing and results[0] < readiness.latest_migration:
        failing.append(SCHEMA)
    if failing:
        return not_ready(failing)
    return json_response({"status": "ready"})


def not_ready(failing: list[str]) -> web.Response:
    """503 with the parts that failed, by name only (the page is public: no address, no error text)."""
    response = json_response({"status": "unavailable", "failing": failing}, status=503)
    response.headers["Retry-After"] = "5"
    return response


def setup(app: web.Application) -> None:
    """The routes, and the shutdown hook that turns /readyz to 503 before sockets and contexts close."""
    app[readiness_key] = Readiness(db.migration_files()[-1][0])
    app.on_shutdown.insert(0, _mark_stopping)
    app.router.add_routes(routes)


async def _mark_stopping(app: web.Application) -> None:
    app[readiness_key].stopping.set()
