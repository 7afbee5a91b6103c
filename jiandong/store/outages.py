"""Outages of PostgreSQL and Redis: which failures are one, the 503 they answer, one log line each way.

While a dependency is down every request that needs it fails the same way; a traceback each
would bury the log. The first failure logs one line and starts a probe; the probe logs one line
when the dependency answers again, with how long it was away and how many requests were refused.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
import typing

import psycopg2
from aiohttp import web
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from ..errors import ApiError, ServiceUnavailable
from ..keys import metrics_key, outages_key, pg_key, redis_key, settings_key
from ..lib.stopping import cancel_and_wait
from . import db

if typing.TYPE_CHECKING:
    from ..ops.metrics import Metrics

logger = logging.getLogger(__name__)

POSTGRESQL, REDIS = "PostgreSQL", "Redis"
PROBE_INTERVAL = 1.0
# SQLSTATEs that say the server is unreachable or going away, not that a statement was wrong:
# class 08 (connection exception), shutdowns (57P01-57P03) and too many connections (53300).
# Client-side connection failures carry no SQLSTATE at all.
PG_GONE_CLASS = "08"
PG_GONE_CODES = frozenset(("57P01", "57P02", "57P03", "53300"))


def dependency_of(exc: BaseException) -> str | None:
    """The dependency an exception says is down or too slow (POSTGRESQL, REDIS), or None for any other failure."""
    if isinstance(exc, (RedisConnectionError, RedisTimeoutError)):
        return REDIS
    if isinstance(exc, db.DatabaseTimeout | psycopg2.InterfaceError):
        return POSTGRESQL
    if isinstance(exc, psycopg2.OperationalError):
        code = exc.pgcode
        if code is None or code.startswith(PG_GONE_CLASS) or code in PG_GONE_CODES:
            return POSTGRESQL
    return None


def summary(exc: BaseException) -> str:
    """The first line of an exception's message: enough to tell refused from timed out."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


class Streak:
    """The failures of a job that runs over and over, logged per streak instead of per round.

    The first failure is logged (one line for an outage, a traceback for anything else), then only
    every tenfold count, and one line once a round works again.
    """

    def __init__(self, log: logging.Logger, name: str) -> None:
        self.log = log
        self.name = name
        self.failures = 0

    def failed(self, exc: BaseException) -> None:
        self.failures += 1
        n = self.failures
        if n != 1 and str(n).rstrip("0") != "1":
            return
        dependency = dependency_of(exc)
        if dependency is not None:
            self.log.warning("%s: %s unavailable (%s); %d failed round(s), retrying",
                             self.name, dependency, summary(exc), n)
        elif isinstance(exc, ApiError):
            # A documented failure, such as an outside service's error: expected, no traceback.
            self.log.warning("%s: %s; %d failed round(s), retrying", self.name, exc.msg, n)
        else:
            self.log.error("%s: round failed (%d in a row); retrying", self.name, n, exc_info=exc)

    def succeeded(self) -> None:
        if self.failures:
            self.log.info("%s: working again after %d failed round(s)", self.name, self.failures)
            self.failures = 0


@dataclasses.dataclass
class Outage:
    since: float
    refused: int = 0


class Outages:
    """Per dependency: up, or down since when and how many requests were refused meanwhile."""

    def __init__(self, probes: dict[str, typing.Callable[[], typing.Awaitable[object]]], timeout: float,
                 metrics: Metrics | None = None) -> None:
        self._probes = probes
        self._timeout = timeout
        self._metrics = metrics
        self._down: dict[str, Outage] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}

    def is_down(self, name: str) -> bool:
        return name in self._down

    def names(self) -> list[str]:
        return list(self._probes)

    def refused(self, name: str, exc: BaseException) -> ServiceUnavailable:
        """Count a request refused because `name` failed with `exc`; the error to answer it with."""
        self.noted(name, exc)
        self._down[name].refused += 1
        return ServiceUnavailable()

    def noted(self, name: str, exc: BaseException) -> None:
        """Record that `name` failed (logged once per outage), without counting a refused request."""
        if self._metrics is not None:
            self._metrics.dependency_errors.labels(name).inc()
        if name in self._down:
            return
        self._down[name] = Outage(time.monotonic())
        logger.warning("%s is unavailable (%s): answering 503 until it is back", name, summary(exc))
        self._tasks[name] = asyncio.create_task(self._probe(name), name=f"probe-{name}")

    async def _probe(self, name: str) -> None:
        while True:
            await asyncio.sleep(PROBE_INTERVAL)
            try:
                await asyncio.wait_for(self._probes[name](), self._timeout)
            except Exception:
                continue
            outage = self._down.pop(name)
            self._tasks.pop(name, None)
            logger.warning("%s is back after %.1f s; %d request(s) were answered 503 meanwhile",
                           name, time.monotonic() - outage.since, outage.refused)
            return

    async def close(self) -> None:
        await cancel_and_wait(*self._tasks.values())


async def outages_ctx(app: web.Application) -> typing.AsyncIterator[None]:
    settings = app[settings_key]

    async def postgresql() -> None:
        await db.fetchval(app[pg_key], "SELECT 1")

    async def redis() -> None:
        await app[redis_key].ping()

    outages = Outages({POSTGRESQL: postgresql, REDIS: redis}, max(settings.db_timeout, settings.redis_timeout),
                      app[metrics_key])
    app[outages_key] = outages
    yield
    await outages.close()
