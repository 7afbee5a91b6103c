"""Log lines written off the event loop: formatted where they are logged, written in batches by a thread.

A write to stderr blocks whenever its reader (a terminal, journald, a pipe to a log shipper) falls behind:
on the event loop that stalls every request and chat socket of the process. So the caller's thread only
formats the line and appends it to a bounded queue; a writer thread takes whatever is queued and writes it
with one call. When the queue is full the line is dropped and counted, and the writer says how many were
dropped: a log that cannot keep up must not take the server down with it.

Why the writer does nothing but write: a Python thread that formats lines needs the GIL for it, and the
event loop gives the GIL up at every socket call it makes; each time, it then waits for the writer to give
it back (up to sys.getswitchinterval(), 5 ms). Formatting in the writer, one `write` per line, made the
event loop wait on the GIL for most of its time under load (strace: a futex call per request and then
some). Formatting in the caller costs a few microseconds per line; the writer holds the GIL only to join a
batch, and releases it for the write.

The queue is polled (Lines), not a queue.Queue: queue.Queue wakes the writer on every line, a futex call and
a GIL handover per request.
"""

from __future__ import annotations

import atexit
import collections
import logging
import threading
import time
import typing

from . import logformat
from .logthrottle import ThrottleFilter

# Lines waiting for the writer; past this they are dropped (and counted) rather than held in memory.
QUEUE_SIZE = 10_000
# Seconds the writer sleeps when it finds nothing to write: how late a line may appear.
POLL_INTERVAL = 0.05
# Ends the writer once every line queued before it is written.
_STOP = object()


class Lines:
    """The queue between the handler and the writer: appending to a deque takes no lock and wakes nobody.

    `put` returns False, and keeps nothing, past `size` lines.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self._items: collections.deque[typing.Any] = collections.deque()

    def put(self, item: typing.Any) -> bool:
        if len(self._items) >= self.size:
            return False
        self._items.append(item)
        return True

    def put_past_bound(self, item: typing.Any) -> None:
        """For what stops the writer: it must reach it, however full the queue."""
        self._items.append(item)

    def take(self) -> list[typing.Any]:
        """Every item queued now, oldest first; waits (polling) until there is one."""
        items = self._items
        while not items:
            time.sleep(POLL_INTERVAL)
        # Only this thread takes, so at least this many are there; the caller may append meanwhile.
        return [items.popleft() for _ in range(len(items))]

    def qsize(self) -> int:
        return len(self._items)


class LoopSafeQueueHandler(logging.Handler):
    """Formats a record with `target`'s formatter where it is logged and queues the line, never blocking."""

    listener: Writer

    def __init__(self, lines: Lines, target: logging.StreamHandler[typing.Any]) -> None:
        super().__init__()
        self.lines = lines
        self.target = target
        self.dropped = 0  # lines dropped since the start, as the queue was full

    def emit(self, record: logging.LogRecord) -> None:
        # The request's id is the caller's: read here even where a formatter would not look for it.
        if getattr(record, "request_id", None) is None:
            record.request_id = logformat.request_id.get()
        try:
            line = self.target.format(record)
        except Exception:
            self.handleError(record)
            return
        if not self.lines.put(line):
            self.dropped += 1

    def handle(self, record: logging.LogRecord) -> bool:  # type: ignore[override]
        # No lock: emit touches only the deque (atomic appends) and the drop count (the caller's own).
        rv = self.filter(record)
        if rv:
            self.emit(record)  # type: ignore[arg-type]
        return bool(rv)


class Writer:
    """The thread that writes queued lines to the target handler's stream, a batch per write."""

    def __init__(self, lines: Lines, source: LoopSafeQueueHandler) -> None:
        self.lines = lines
        self.source = source
        # Only the writer reads the handler's drop count: a count written by both threads could lose a drop.
        self.reported = 0
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="log-writer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            batch = self.lines.take()
            stop = any(item is _STOP for item in batch)
            if stop:
                batch = batch[:next(i for i, item in enumerate(batch) if item is _STOP)]
            self._write(batch)
            if stop:
                return

    def _write(self, batch: list[str]) -> None:
        target = self.source.target
        total = self.source.dropped
        dropped, self.reported = total - self.reported, total
        if dropped:
            batch.append(target.format(logging.makeLogRecord({
                "name": __name__, "levelno": logging.WARNING, "levelname": "WARNING",
                "msg": f"{dropped} log lines dropped: the log output did not keep up",
            })))
        if not batch:
            return
        terminator = target.terminator
        try:
            stream = target.stream
            stream.write(terminator.join(batch) + terminator)
            stream.flush()
        except Exception:  # noqa: BLE001 - a log output gone must not end the writer (nor print a line per batch)
            pass

    def stop(self) -> None:
        """Write what is queued, then end the thread (once: atexit may call it after an owner did)."""
        thread, self._thread = self._thread, None
        if thread is not None:
            self.lines.put_past_bound(_STOP)
            thread.join()


def off_loop(handler: logging.StreamHandler[typing.Any], size: int = QUEUE_SIZE) -> LoopSafeQueueHandler:
    """A handler for the root logger that formats records with `handler`'s formatter and leaves writing them
    to `handler`'s stream to a thread of its own, holding at most `size` lines that wait for it.

    The thread runs until `.listener.stop()` or the process's exit (atexit), writing every line queued
    before then.
    """
    lines = Lines(size)
    front = LoopSafeQueueHandler(lines, handler)
    front.listener = Writer(lines, front)
    front.listener.start()
    atexit.register(front.listener.stop)
    return front


def sole_queue_handler(logger: logging.Logger, level: int) -> LoopSafeQueueHandler | None:
    """The queue handler that every record of `logger` at `level` (below WARNING) reaches and nothing else
    does, as configure_logging sets the loggers up; None when the set-up is another (a test's capture, a
    handler of the logger's own, a filter).

    A record given straight to its `emit` is then written as the logging module would write it, without
    the module's walk over the loggers and handlers (for a line per request, a fifth of its cost).
    """
    if logger.disabled or logger.filters or not logger.isEnabledFor(level) or level >= logging.WARNING:
        return None
    handlers: list[logging.Handler] = []
    current: logging.Logger | None = logger
    while current is not None:
        handlers.extend(current.handlers)
        current = current.parent if current.propagate else None
    if len(handlers) != 1:
        return None
    (handler,) = handlers
    # A throttle filter passes every record below WARNING (logthrottle): no other filter may look at one.
    if (type(handler) is not LoopSafeQueueHandler or handler.level > level
            or not all(isinstance(f, ThrottleFilter) for f in handler.filters)):
        return None
    return handler
