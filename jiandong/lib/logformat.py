"""How a log line looks: text (time with its UTC offset, level, process with --workers, logger, message) or
one JSON object per line, with the request's id, route, status, duration and user where known."""

from __future__ import annotations

import contextvars
import datetime as dt
import logging

from . import encoding

# The id of the request being handled, for every line logged while it is (aiohttp runs each request in
# a task of its own, which gets a copy of the context): a context variable is what the logging module
# can read without being handed the request.
request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)
# What an access line (or any line) may carry as `extra=`, written as JSON fields.
REQUEST_FIELDS = ("request_id", "method", "route", "status", "duration_ms", "user_id")


class IsoTime:
    """A record's local time to the millisecond, with its offset: 2026-11-30T18:51:56.518+08:00.

    The date, time and offset are worked out once per second (a busy server logs thousands of lines in
    one), kept as one tuple so that two threads formatting at once each see a whole one.
    """

    def __init__(self) -> None:
        self._second: tuple[int, str, str] = (-1, "", "")

    def __call__(self, record: logging.LogRecord) -> str:
        # As datetime.fromtimestamp reads it: rounded to the microsecond, then cut to the millisecond.
        created = record.created
        second = int(created)
        millis = round((created - second) * 1_000_000) // 1000
        if millis == 1000:
            second, millis = second + 1, 0
        cached = self._second
        if cached[0] != second:
            local = dt.datetime.fromtimestamp(second).astimezone()
            cached = self._second = (second, local.strftime("%Y-%m-%dT%H:%M:%S"), local.isoformat()[19:])
        return f"{cached[1]}.{millis:03d}{cached[2]}"


class TextFormatter(logging.Formatter):
    """`<time> <LEVEL> [<process>] <logger>: <message>`; the process ("main", "worker 2") only with --workers."""

    def __init__(self, process: str | None = None) -> None:
        self.where = f"[{process}] " if process else ""
        super().__init__(f"%(asctime)s %(levelname)s {self.where}%(name)s: %(message)s")
        self.iso_time = IsoTime()

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:  # noqa: N802
        return self.iso_time(record)

    def format(self, record: logging.LogRecord) -> str:
        # What logging.Formatter.format does with the format above, in one f-string: this runs once per
        # request (the access line), where the generic path's style lookups cost more than the line.
        line = f"{self.iso_time(record)} {record.levelname} {self.where}{record.name}: {record.getMessage()}"
        if record.exc_info:
            line = f"{line}\n{self.formatException(record.exc_info)}"
        if record.stack_info:
            line = f"{line}\n{self.formatStack(record.stack_info)}"
        return line


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, and the request's fields when known."""

    def __init__(self, process: str | None = None) -> None:
        super().__init__()
        self.process = process
        self.iso_time = IsoTime()

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "time": self.iso_time(record),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if self.process:
            line["process"] = self.process
        for name in REQUEST_FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                line[name] = value
        if "request_id" not in line and (current := request_id.get()) is not None:
            line["request_id"] = current
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return encoding.dumps_str(line)
