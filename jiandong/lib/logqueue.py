"""Log lines formatted and written off the event loop: the root logger's handler is a queue, a thread writes.

A write to stderr blocks whenever its reader (a terminal, journald, a pipe to a log shipper) falls behind,
and formatting a JSON line costs microseconds per line: on the event loop either stalls every request and
chat socket of the process. The caller's thread only puts the record on a bounded queue
(logging.handlers.QueueHandler); a listener thread (QueueListener) formats and writes it. When the queue is
full the line is dropped and counted, and the listener says how many were dropped: a log that cannot keep
up must not take the server down with it.

The queue is polled (Lines), not a queue.Queue: queue.Queue wakes the writer thread on every line, a
futex call and a fight for the GIL per request, which under load cost more than the line itself.
"""

from __future__ import annotations

import atexit
import collections
import logging
import logging.handlers
import queue
import time
import typing

from . import logformat

# Lines waiting for the writer; past this they are dropped (and counted) rather than held in memory.
QUEUE_SIZE = 10_000
# Seconds the writer sleeps when it finds nothing to write: how late a line may appear.
POLL_INTERVAL = 0.05


class Lines:
    """The queue between the handler and the writer: what QueueHandler and QueueListener use of a queue.Queue.

    Appending to a deque takes no lock and wakes nobody; the writer takes what is there and, finding
    nothing, sleeps POLL_INTERVAL. `put_nowait` raises queue.Full past `size`.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self._items: collections.deque[typing.Any] = collections.deque()

    def put_nowait(self, item: typing.Any) -> None:
        if len(self._items) >= self.size:
            raise queue.Full
        self._items.append(item)

    def put(self, item: typing.Any, block: bool = True, timeout: float | None = None) -> None:
        """Past the bound too: what stops the writer must reach it."""
        self._items.append(item)

    def get(self, block: bool = True, timeout: float | None = None) -> typing.Any:
        while True:
            try:
                return self._items.popleft()
            except IndexError:
                if not block:
                    raise queue.Empty from None
                time.sleep(POLL_INTERVAL)

    def qsize(self) -> int:
        return len(self._items)


class LoopSafeQueueHandler(logging.handlers.QueueHandler):
    """Puts records on the queue without formatting them (the listener does), never blocking."""

    listener: logging.handlers.QueueListener

    def __init__(self, records: Lines) -> None:
        super().__init__(records)  # type: ignore[arg-type]
        self.dropped = 0  # lines dropped since the start, as the queue was full

    def prepare(self, record: logging.LogRecord) -> logging.LogRecord:
        # The message now, as the arguments may change after the call returns; the rest of the
        # formatting in the listener. The record stays in this process, so it is neither copied nor pickled.
        if record.args:
            record.msg, record.args = record.getMessage(), None
        # Read in the caller's context: the listener's thread has no request.
        if getattr(record, "request_id", None) is None:
            record.request_id = logformat.request_id.get()
        return record

    def enqueue(self, record: logging.LogRecord) -> None:
        try:
            self.queue.put_nowait(record)
        except queue.Full:
            self.dropped += 1


class _Listener(logging.handlers.QueueListener):
    def __init__(self, records: Lines, source: LoopSafeQueueHandler, handler: logging.Handler) -> None:
        super().__init__(records, handler, respect_handler_level=True)  # type: ignore[arg-type]
        self.source = source
        # The writer only reads the handler's count: a count written by both threads could lose a drop.
        self.reported = 0

    def handle(self, record: logging.LogRecord) -> None:
        total = self.source.dropped
        dropped, self.reported = total - self.reported, total
        if dropped:
            super().handle(logging.makeLogRecord({
                "name": __name__, "levelno": logging.WARNING, "levelname": "WARNING",
                "msg": f"{dropped} log lines dropped: the log output did not keep up",
            }))
        super().handle(record)

    def stop(self) -> None:
        """Write what is queued, then end the thread (once: atexit may call it after an owner did)."""
        if self._thread is not None:
            super().stop()

    def enqueue_sentinel(self) -> None:
        # Past the bound: every line before the sentinel is written, then the writer stops.
        self.queue.put(self._sentinel)


def off_loop(handler: logging.Handler, size: int = QUEUE_SIZE) -> LoopSafeQueueHandler:
    """A handler for the root logger that passes records to `handler` in a thread of its own, holding
    at most `size` lines that wait for it.

    The thread runs until `.listener.stop()` or the process's exit (atexit), writing every line queued
    before then.
    """
    records = Lines(size)
    front = LoopSafeQueueHandler(records)
    front.listener = _Listener(records, front, handler)
    front.listener.start()
    atexit.register(front.listener.stop)
    return front
