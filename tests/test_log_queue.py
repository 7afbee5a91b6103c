"""Log lines are formatted and written by a thread of their own: a log output that stalls stalls no request."""

from __future__ import annotations

import datetime as dt
import io
import json
import logging
import subprocess
import sys
import threading

import pytest

from jiandong.lib import logformat, logqueue, logthrottle
from jiandong.lib.logformat import IsoTime, JsonFormatter
from jiandong.ops.metrics import Metrics
from jiandong.web.access import Access
from tests.helpers.api import login

# Released by then even if the server wrote on its event loop, so that such a failure ends the test.
SAFETY_RELEASE = 60.0


class StalledStream(io.StringIO):
    """A log output whose writes wait until it is released, as a pipe nobody reads does."""

    def __init__(self) -> None:
        super().__init__()
        self.released = threading.Event()

    def write(self, text: str) -> int:
        self.released.wait()
        return super().write(text)


def queued_json(stream: io.StringIO, size: int = logqueue.QUEUE_SIZE) -> logqueue.LoopSafeQueueHandler:
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    return logqueue.off_loop(handler, size)


async def test_a_stalled_log_output_stalls_no_request(client):
    token = await login(client, "stalled-log")
    stream = StalledStream()
    front = queued_json(stream)
    safety = threading.Timer(SAFETY_RELEASE, stream.released.set)
    safety.start()
    root = logging.getLogger()
    level = root.level
    root.addHandler(front)
    root.setLevel(logging.INFO)
    try:
        request_ids = []
        for _ in range(5):
            resp = await client.post("/api/v1/identify/code", data={"phone": "13800138000"}, headers={"token": token})
            assert resp.status in (200, 429)
            request_ids.append(resp.headers["X-Request-Id"])
        answered_while_stalled = not stream.released.is_set()
    finally:
        root.removeHandler(front)
        root.setLevel(level)
        stream.released.set()
        safety.cancel()
        front.listener.stop()
    assert answered_while_stalled
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    access = [line for line in lines if line["logger"] == "jiandong.access"]
    assert [line["request_id"] for line in access] == request_ids
    # A line logged while a request is handled carries its id, read where it was logged, not in the writer.
    (sms, *_) = [line for line in lines if line["logger"] == "jiandong.integrations.sms"]
    assert sms["request_id"] == request_ids[0]


def test_lines_past_the_queue_are_dropped_and_counted():
    stream = StalledStream()
    front = queued_json(stream, size=2)
    logger = logging.getLogger("jiandong.tests.log_queue")
    logger.propagate, logger.level = False, logging.INFO
    logger.addHandler(front)
    try:
        for n in range(10):
            logger.warning("line %d", n)
    finally:
        logger.removeHandler(front)
        stream.released.set()
        front.listener.stop()
    lines = [json.loads(line)["message"] for line in stream.getvalue().splitlines()]
    written = [line for line in lines if line.startswith("line ")]
    (said,) = [line for line in lines if "dropped" in line]
    dropped = int(said.split()[0])
    assert said == f"{dropped} log lines dropped: the log output did not keep up"
    # The first lines are kept, in order; the rest is counted, not lost without a word.
    assert written == [f"line {n}" for n in range(len(written))] and 1 <= dropped == 10 - len(written)


@pytest.mark.parametrize("created", [1700820428.6859994, 1700122513.0729995, 1700000000.9999996, 1700000000.0,
                                     1764499916.518, 1764499916.0005])
def test_a_lines_time_reads_as_the_clock_does(created):
    iso_time = IsoTime()
    expected = dt.datetime.fromtimestamp(created).astimezone().isoformat(timespec="milliseconds")
    # Twice: worked out, then from what was kept of its second.
    assert iso_time(logging.makeLogRecord({"created": created})) == expected
    assert iso_time(logging.makeLogRecord({"created": created})) == expected


# A process whose stderr stops being read: its lines wait for the writer thread, the caller goes on.
STALLED_STDERR = """
import io, logging, sys, threading
released = threading.Event()

class Stalled(io.StringIO):
    def write(self, text):
        released.wait()
        return sys.__stdout__.write("written: " + text)

sys.stderr = Stalled()
from jiandong.settings import Settings, configure_logging
configure_logging(Settings())
for n in range(100):
    logging.getLogger("jiandong.test").warning("line %d", n)
print("logged while stalled", flush=True)
released.set()
"""


def test_the_servers_logging_leaves_a_stalled_stderr_to_a_thread_of_its_own():
    done = subprocess.run([sys.executable, "-c", STALLED_STDERR], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    # The caller went on at once; every line was written once the output moved again, before the exit.
    assert lines[0] == "logged while stalled"
    assert [line.rsplit(": ", 1)[1] for line in lines[1:]] == [f"line {n}" for n in range(100)]


class CountedWrites(io.StringIO):
    def __init__(self) -> None:
        super().__init__()
        self.writes = 0

    def write(self, text: str) -> int:
        self.writes += 1
        return super().write(text)


class ThreadNoting(JsonFormatter):
    """Notes the threads it formats on."""

    def __init__(self) -> None:
        super().__init__()
        self.threads: set[int] = set()

    def format(self, record: logging.LogRecord) -> str:
        self.threads.add(threading.get_ident())
        return super().format(record)


def test_lines_are_formatted_by_the_caller_and_written_in_batches():
    # The writer thread holds the GIL only to join and write a batch: a writer that formatted, or wrote
    # line by line, took the GIL from the event loop at every socket call it made.
    stream = CountedWrites()
    handler = logging.StreamHandler(stream)
    formatter = ThreadNoting()
    handler.setFormatter(formatter)
    front = logqueue.off_loop(handler)
    logger = logging.getLogger("jiandong.tests.log_batches")
    logger.propagate, logger.level = False, logging.INFO
    logger.addHandler(front)
    try:
        for n in range(1000):
            logger.info("line %d", n)
    finally:
        logger.removeHandler(front)
        front.listener.stop()
    lines = [json.loads(line)["message"] for line in stream.getvalue().splitlines()]
    assert lines == [f"line {n}" for n in range(1000)]
    assert formatter.threads == {threading.get_ident()}
    assert stream.writes <= 100, stream.writes


class _Request:
    method = "GET"
    raw_path = "/api/v1/competition/7?token=secret"


@pytest.mark.parametrize("formatter", [logformat.TextFormatter, logformat.JsonFormatter])
async def test_an_access_line_goes_straight_to_the_servers_queue_and_reads_as_through_the_logger(formatter):
    """As configure_logging sets logging up, the access line skips the logging module's walk over loggers and
    handlers; any other set-up (a capture beside it, a handler or filter of the access logger's own) gets the
    line through the logger. Either way the line is the same."""
    root, access_logger = logging.getLogger(), logging.getLogger("jiandong.access")
    saved = root.handlers[:], root.level
    out = io.StringIO()
    target = logging.StreamHandler(out)
    target.setFormatter(formatter())
    front = logqueue.off_loop(target)
    logthrottle.install([front])
    root.handlers[:] = [front]
    root.setLevel(logging.INFO)
    beside = logging.Handler()
    captured: list[logging.LogRecord] = []
    beside.emit = captured.append  # type: ignore[method-assign]
    try:
        straight = Access(Metrics(), log_lines=True)
        assert straight.queue is front
        straight.done(_Request(), straight.meter("/api/v1/competition/{id}"), 200, 0.0, "0123abcd", 7)
        assert captured == []
        root.addHandler(beside)
        through = Access(Metrics(), log_lines=True)
        assert through.queue is None
        through.done(_Request(), through.meter("/api/v1/competition/{id}"), 200, 0.0, "0123abcd", 7)
        assert len(captured) == 1
        root.removeHandler(beside)
        access_logger.addFilter(logthrottle.ThrottleFilter())
        assert Access(Metrics(), log_lines=True).queue is None
        access_logger.filters.clear()
        access_logger.addHandler(beside)
        assert Access(Metrics(), log_lines=True).queue is None
        access_logger.removeHandler(beside)
        assert Access(Metrics(), log_lines=False).queue is None
    finally:
        front.listener.stop()
        access_logger.filters.clear()
        access_logger.removeHandler(beside)
        root.handlers[:], _ = saved[0], root.setLevel(saved[1])
    first, second = out.getvalue().splitlines()
    # Alike but for their times (and durations): the query never in it.
    if formatter is logformat.JsonFormatter:
        first_line, second_line = json.loads(first), json.loads(second)
        for line in (first_line, second_line):
            del line["time"], line["duration_ms"]
            line["message"] = line["message"].rsplit(" ", 1)[0]
        assert first_line == second_line
        assert first_line["request_id"] == "0123abcd" and first_line["user_id"] == 7
    else:
        assert first.split(" ", 1)[1].rsplit(" ", 1)[0] == second.split(" ", 1)[1].rsplit(" ", 1)[0]
        assert first.split(" ", 1)[1].startswith("INFO jiandong.access: GET /api/v1/competition/7 200 ")
    assert "secret" not in first + second
