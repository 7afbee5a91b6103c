"""Each request measured once: its HTTP metrics (by route template) and its access log line.

Bound once per route and status: the metric children (prometheus-client's `labels()` validates, locks
and looks up on every call). The line is a LogRecord made directly (no `findCaller` stack walk) and
handed to the root logger's handlers, which in the server are a queue (lib/logqueue.py): it is
formatted and written off the event loop.
"""

from __future__ import annotations

import logging
import os
import time
import typing

from aiohttp import web

from ..ops.metrics import UNMATCHED, Metrics

logger = logging.getLogger("jiandong.access")
# Any other method a client invents is counted as "other": labels stay few.
METHODS = frozenset(("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"))
ACCESS_FORMAT = "%s %s %d %.1fms"


class RouteMeter:
    """One route's metric children: its duration histogram, and its request counter per method and status."""

    __slots__ = ("counted", "duration", "label", "metrics")

    def __init__(self, metrics: Metrics, label: str) -> None:
        self.metrics = metrics
        self.label = label
        self.duration = metrics.http_duration.labels(label)
        self.counted: dict[tuple[str, int], typing.Any] = {}

    def count(self, method: str, status: int) -> None:
        # Folded before the lookup: keyed by the method as sent, invented methods would grow the dict forever.
        if method not in METHODS:
            method = "other"
        child = self.counted.get((method, status))
        if child is None:
            # Bounded: a handful of methods times the statuses a route answers.
            child = self.counted[(method, status)] = self.metrics.http_requests.labels(self.label, method, str(status))
        child.inc()


class Access:
    """The access line and the HTTP metrics of one app; `unmatched` meters what no route matched."""

    def __init__(self, metrics: Metrics, log_lines: bool) -> None:
        self.metrics = metrics
        self.log_lines = log_lines
        self.unmatched = RouteMeter(metrics, UNMATCHED)

    def meter(self, label: str) -> RouteMeter:
        return RouteMeter(self.metrics, label)

    def done(self, request: web.Request, meter: RouteMeter, status: int, started: float,
             request_id: str | None, user_id: int | None) -> None:
        """Count the request by route template, method and status, time it, and log one line for it.

        The line names the path without its query string: a query may carry a secret (a stream
        callback's token), a path never does. The path as sent, still percent-encoded: decoded, a `%0a`
        in it would start a forged line in a text log.
        """
        elapsed = time.perf_counter() - started
        method = request.method
        meter.count(method, status)
        # A websocket's time is the length of a chat session, not of an answer.
        if status != 101:
            meter.duration.observe(elapsed)
        if self.log_lines and logger.isEnabledFor(logging.INFO):
            ms = round(elapsed * 1000, 1)
            logger.handle(AccessRecord((method, request.raw_path.partition("?")[0], status, ms),
                                       request_id, meter.label, user_id))


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
