"""Log lines that outside junk can set off, kept from flooding: one per kind per interval, with a count."""

from __future__ import annotations

import logging
import time
import typing

# How often one kind of warning or error may be written; the next one says how many were held back.
INTERVAL = 10.0
# Kinds remembered at once; past it the oldest is forgotten (junk must not grow this either).
MAX_KINDS = 512
# `extra=JUNK` on a line of ours that outside input can set off at any rate. Our other lines are
# never held back: two payment warnings in ten seconds name two orders, and both must be read.
JUNK = {"junk": True}
OURS = "jiandong"


def kind_of(record: logging.LogRecord) -> tuple[typing.Any, ...]:
    """What makes two records the same line for the throttle: the logger, the level, the message template
    and where the line was logged; for a failure, also the exception's type and the place (file:line)
    where it was raised. One template serves every unexpected error of a request: a flood of one bug must
    not hold back another's traceback."""
    kind: tuple[typing.Any, ...] = (record.name, record.levelno, str(record.msg).split("\n", 1)[0][:80],
                                    record.pathname, record.lineno)
    exc_type, _, tb = record.exc_info or (None, None, None)
    if exc_type is not None:
        while tb is not None and tb.tb_next is not None:
            tb = tb.tb_next
        place = (tb.tb_frame.f_code.co_filename, tb.tb_lineno) if tb is not None else None
        kind += (exc_type.__module__, exc_type.__qualname__, place)
    return kind


class ThrottleFilter(logging.Filter):
    """A handler filter: of the WARNING and ERROR records of one kind (kind_of: logger, message template,
    where it was logged and, for a failure, the exception and where it was raised), one per `interval`
    seconds is written; the first written after a pause carries the count held back.

    Only other libraries' records (aiohttp's, asyncio's) and ours marked `extra=JUNK` are held back;
    CRITICAL and lower levels than WARNING always pass. The kind of a record logged with a
    preformatted message (asyncio's, say) is its first line's first 80 characters.
    """

    def __init__(self, interval: float = INTERVAL, clock: typing.Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.interval = interval
        self._clock = clock
        # kind -> (when the last record of it was written, records held back since)
        self._kinds: dict[tuple[typing.Any, ...], tuple[float, int]] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        if not logging.WARNING <= record.levelno < logging.CRITICAL:
            return True
        if record.name.split(".", 1)[0] == OURS and not getattr(record, "junk", False):
            return True
        kind = kind_of(record)
        now = self._clock()
        last = self._kinds.get(kind)
        if last is not None and now - last[0] < self.interval:
            self._kinds[kind] = (last[0], last[1] + 1)
            return False
        held = last[1] if last is not None else 0
        self._kinds.pop(kind, None)
        self._kinds[kind] = (now, 0)
        if len(self._kinds) > MAX_KINDS:
            del self._kinds[next(iter(self._kinds))]
        if held:
            record.msg = f"{record.msg} [{held} more like this in the last {self.interval:g} s]"
        return True


def install(handlers: typing.Iterable[logging.Handler], interval: float = INTERVAL) -> None:
    """Throttle what these handlers write (the root logger's, so asyncio's and aiohttp's lines too)."""
    for handler in handlers:
        if not any(isinstance(f, ThrottleFilter) for f in handler.filters):
            handler.addFilter(ThrottleFilter(interval))
