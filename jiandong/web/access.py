"""Each request measured once: its HTTP metrics (by route template) and its access log line.

Counted per route in plain integers and handed to prometheus-client at most every FLUSH_DELAY seconds
and before every scrape (Metrics.flush): its `inc` and `observe` take a lock and walk the buckets on every
call, several times the cost of the rest of a request's accounting. The line is a LogRecord made directly
(no `findCaller` stack walk) and handed to the root logger's handlers, which in the server are a queue
(lib/logqueue.py): it is formatted where it is logged and written off the event loop.
"""

from __future__ import annotations

import asyncio
import bisect
import logging
import os
import time
import typing

from aiohttp import web

from ..lib import logqueue
from ..ops.metrics import UNMATCHED, Metrics

logger = logging.getLogger("jiandong.access")
# Any other method a client invents is counted as "other": labels stay few.
METHODS = frozenset(("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"))
ACCESS_FORMAT = "%s %s %d %.1fms"
# Seconds a request's counts may wait before they reach prometheus-client (a scrape takes them at once;
# with --workers, another worker's scrape sees them within this delay).
FLUSH_DELAY = 0.5


class RouteMeter:
    """One route's counts since the last flush: requests per method and status, and its duration histogram's
    buckets and sum; `flush` adds them to the route's metric children (bound once each)."""

    __slots__ = ("bounds", "buckets", "children", "counts", "duration", "label", "metrics", "seconds")

    def __init__(self, metrics: Metrics, label: str) -> None:
        self.metrics = metrics
        self.label = label
        self.duration = metrics.http_duration.labels(label)
        # The histogram's upper bounds, +Inf last: bucket i counts what is <= bounds[i] and above the one before,
        # as Histogram.observe files it.
        self.bounds: tuple[float, ...] = tuple(self.duration._upper_bounds)
        self.buckets = [0] * len(self.bounds)
        self.seconds = 0.0
        self.counts: dict[tuple[str, int], int] = {}
        self.children: dict[tuple[str, int], typing.Any] = {}

    def add(self, method: str, status: int, elapsed: float | None) -> None:
        """Count a request; `elapsed` (seconds) None for what is not timed (a websocket's session)."""
        # Folded before the lookup: keyed by the method as sent, invented methods would grow the dict.
        if method not in METHODS:
            method = "other"
        key = (method, status)
        counts = self.counts
        counts[key] = counts.get(key, 0) + 1
        if elapsed is not None:
            self.buckets[bisect.bisect_left(self.bounds, elapsed)] += 1
            self.seconds += elapsed

    def flush(self) -> None:
        if self.counts:
            counts, self.counts = self.counts, {}
            for key, n in counts.items():
                child = self.children.get(key)
                if child is None:
                    # Bounded: a handful of methods times the statuses a route answers.
                    child = self.children[key] = self.metrics.http_requests.labels(self.label, key[0], str(key[1]))
                child.inc(n)
        if self.seconds or any(self.buckets):
            buckets, seconds = self.buckets, self.seconds
            self.buckets, self.seconds = [0] * len(self.bounds), 0.0
            # What observe() does per observation, once per bucket: its values are prometheus-client's
            # (in --workers mode, the shared files'). tests/test_metrics.py holds this to observe()'s result.
            for value, n in zip(self.duration._buckets, buckets, strict=True):
                if n:
                    value.inc(n)
            self.duration._sum.inc(seconds)


class Access:
    """The access line and the HTTP metrics of one app; `unmatched` meters what no route matched."""

    def __init__(self, metrics: Metrics, log_lines: bool) -> None:
        self.metrics = metrics
        self.log_lines = log_lines
        # Where an access line goes: straight to the server's log queue when the logging set-up is the
        # server's own (settings.configure_logging, before the app is made), else through the logger.
        self.queue = logqueue.sole_queue_handler(logger, logging.INFO) if log_lines else None
        self.meters: list[RouteMeter] = []
        self.flush_due = False
        self.unmatched = self.meter(UNMATCHED)
        metrics.before_collect.append(self.flush)

    def meter(self, label: str) -> RouteMeter:
        meter = RouteMeter(self.metrics, label)
        self.meters.append(meter)
        return meter

    def flush(self) -> None:
        """Hand every route's counts to prometheus-client (on the event loop, where they are counted)."""
        self.flush_due = False
        for meter in self.meters:
            meter.flush()

    def done(self, request: web.Request, meter: RouteMeter, status: int, started: float,
             request_id: str | None, user_id: int | None) -> None:
        """Count the request by route template, method and status, time it, and log one line for it.

        The line names the path without its query string: a query may carry a secret (a stream
        callback's token), a path never does. The path as sent, still percent-encoded: decoded, a `%0a`
        in it would start a forged line in a text log.
        """
        elapsed = time.perf_counter() - started
        method = request.method
        # A websocket's time is the length of a chat session, not of an answer.
        meter.add(method, status, elapsed if status != 101 else None)
        if not self.flush_due:
            self.flush_due = True
            asyncio.get_running_loop().call_later(FLUSH_DELAY, self.flush)
        if self.log_lines and logger.isEnabledFor(logging.INFO):
            record = AccessRecord((method, request.raw_path.partition("?")[0], status, round(elapsed * 1000, 1)),
                                  request_id, meter.label, user_id)
            if self.queue is not None:
                self.queue.emit(record)
            else:
                logger.handle(record)


class AccessRecord(logging.LogRecord):
    """An access line's LogRecord, made without logging.LogRecord's per-record work that is the same for
    every access line (its source file's name split, the level's name looked up): one per request.

    It has every attribute a LogRecord has, in its `__dict__` where formatters read them, so any formatter
    or handler takes it; the thread and process fields are left empty, as settings.configure_logging has
    the logging module do for every record.
    """

    _same: typing.ClassVar[dict[str, typing.Any]] = {
        "name": logger.name, "msg": ACCESS_FORMAT, "levelno": logging.INFO,
        "levelname": logging.getLevelName(logging.INFO), "pathname": __file__,
        "filename": os.path.basename(__file__), "module": os.path.splitext(os.path.basename(__file__))[0],
        "lineno": 0, "funcName": "done", "exc_info": None, "exc_text": None, "stack_info": None,
        "thread": None, "threadName": None, "processName": None, "process": None,
    }
    # What LogRecord.relativeCreated counts from: when the logging module was loaded.
    _logging_started = getattr(logging, "_startTime", 0.0)

    def __init__(self, args: tuple[str, str, int, float], request_id: str | None, route: str,
                 user_id: int | None) -> None:
        fields = self.__dict__
        fields.update(self._same)
        created = self.created = time.time()
        self.msecs = int((created - int(created)) * 1000) + 0.0
        self.relativeCreated = (created - self._logging_started) * 1000
        self.args = args
        self.request_id = request_id
        self.method, _, self.status, self.duration_ms = args
        self.route = route
        self.user_id = user_id
