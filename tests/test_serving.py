"""The connection policy of the server (jiandong.ops.serving): idle and header-read timeouts, the cap."""

from __future__ import annotations

import asyncio
import json
import logging
import sys

import aiohttp
import pytest
from aiohttp import web

from jiandong.app import create_app
from jiandong.lib.logthrottle import ThrottleFilter
from jiandong.ops.serving import GuardedRunner


@pytest.fixture
async def serve(settings):
    """`await serve(**settings)`: the app under a GuardedRunner on a free port; its base URL."""
    runners = []

    async def start(**overrides: object) -> tuple[str, int]:
        app_settings = settings.replace(**overrides)
        # aiohttp drains an unread body for up to lingering_time, even from a client that left: the
        # runner's cleanup would wait that long.
        runner = GuardedRunner(create_app(app_settings), app_settings, access_log=None, lingering_time=0.5)
        await runner.setup()
        runners.append(runner)
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        return runner.addresses[0][:2]

    yield start
    for runner in runners:
        await runner.cleanup()


async def test_idle_and_half_sent_requests_are_closed(serve):
    host, port = await serve(idle_timeout=0.3)
    idle = await asyncio.open_connection(host, port)
    half = await asyncio.open_connection(host, port)
    half[1].write(b"GET /api/v1/openapi.json HTTP/1.1\r\nHost: x\r\n")
    for reader, writer in (idle, half):
        # EOF from the server: the connection was closed for it (the test's timeout bounds the wait).
        assert await reader.read() == b""
        writer.close()


async def test_a_flood_of_idle_connections_neither_locks_out_clients_nor_floods_the_log(serve, caplog):
    throttle = ThrottleFilter(interval=3600)
    caplog.handler.addFilter(throttle)
    try:
        await flood_the_server(serve, caplog)
    finally:
        caplog.handler.removeFilter(throttle)


async def flood_the_server(serve, caplog) -> None:
    host, port = await serve(max_connections=16, idle_timeout=3600)
    flood = [await asyncio.open_connection(host, port) for _ in range(300)]
    async with aiohttp.ClientSession() as session:
        for _ in range(3):
            async with session.get(f"http://{host}:{port}/api/v1/openapi.json") as resp:
                assert resp.status == 200
                assert (await resp.json())["openapi"] == "3.1.0"
    # The flood was closed but for the cap's worth; each closed one reads EOF.
    closed = 0
    for reader, writer in flood:
        try:
            data = await asyncio.wait_for(reader.read(), 0.05)
            closed += data == b""
        except TimeoutError:
            pass
        writer.close()
    assert closed >= 300 - 16
    lines = [r for r in caplog.records if r.name == "jiandong.ops.serving"]
    assert len(lines) == 1 and "connection limit (16) reached" in lines[0].getMessage()


def test_throttle_writes_one_line_per_kind_per_interval_with_a_count():
    now = [0.0]
    throttle = ThrottleFilter(interval=10, clock=lambda: now[0])

    def record(msg: str, level: int = logging.WARNING, name: str = "x") -> logging.LogRecord:
        return logging.LogRecord(name, level, __file__, 1, msg, None, None)

    passed = [throttle.filter(r) for r in (record("junk %s"), record("junk %s"), record("junk %s"), record("other"))]
    assert passed == [True, False, False, True]
    # Our own lines pass unless they say they are set off by outside input.
    ours = [record("order %s paid twice", logging.ERROR, "jiandong.services.payments") for _ in range(2)]
    assert [throttle.filter(r) for r in ours] == [True, True]
    junk = [record("payment %s rejected", logging.WARNING, "jiandong.services.payments") for _ in range(2)]
    for r in junk:
        r.junk = True
    assert [throttle.filter(r) for r in junk] == [True, False]
    assert throttle.filter(record("junk %s", logging.INFO)) and throttle.filter(record("x", logging.CRITICAL))
    now[0] = 10.5
    later = record("junk %s")
    assert throttle.filter(later) and later.msg == "junk %s [2 more like this in the last 10 s]"


def test_throttle_tells_failures_apart_by_exception_and_where_it_was_raised():
    """One message template for every unexpected error of a request: a flood of one bug must not hide
    another's traceback, so the kind of a failure is its exception's type and where it was raised."""
    throttle = ThrottleFilter(interval=10, clock=lambda: 0.0)

    def failure(thrower) -> logging.LogRecord:
        try:
            thrower()
        except Exception:
            info = sys.exc_info()
        record = logging.LogRecord("jiandong.web.middlewares", logging.ERROR, __file__, 1,
                                   "unexpected error in request %s: %s %s", ("id", "GET", "/x"), info)
        record.junk = True
        return record

    def config_bug() -> None:
        raise TypeError("cannot use a string pattern on a bytes-like object")

    def chat_bug() -> None:
        raise AttributeError("'str' object has no attribute 'sub'")

    def another_type_error() -> None:
        raise TypeError("cannot use a string pattern on a bytes-like object")

    assert [throttle.filter(failure(config_bug)) for _ in range(3)] == [True, False, False]
    # Another exception, and the same type raised elsewhere: written, then held back in their turn.
    assert [throttle.filter(failure(chat_bug)) for _ in range(2)] == [True, False]
    assert [throttle.filter(failure(another_type_error)) for _ in range(2)] == [True, False]


async def test_an_oversized_body_gets_its_413_through_the_guarded_server(serve):
    host, port = await serve()
    async with aiohttp.ClientSession() as session:
        for framing in ({"Content-Length": str(5 + 80 * 65536)}, {}):
            async def body():
                yield b"code="
                for _ in range(80):
                    yield b"x" * 65536

            async with session.post(f"http://{host}:{port}/api/v1/token/user", data=body(),
                                    headers={"Content-Type": "application/x-www-form-urlencoded", **framing}) as resp:
                assert resp.status == 413
                assert (await resp.json())["error_code"] == 99999


async def test_a_malformed_request_gets_a_400_and_one_warning_line(serve, caplog):
    caplog.set_level(logging.DEBUG)
    host, port = await serve()
    answers = []
    # The last two are too long, with a secret in the query and in a header: never quoted in the log.
    for line, header in ((b"GET /a b HTTP/1.1", b""), (b"GET /\x01 HTTP/1.1", b""), (b"GET /\xff HTTP/1.1", b""),
                         (b"GET /api/v1/live/callback/nginx?token=SECRET-IN-QUERY&pad=" + b"a" * 9000 + b" HTTP/1.1",
                          b""),
                         (b"GET / HTTP/1.1", b"token: SECRET-IN-HEADER" + b"b" * 9000 + b"\r\n")):
        reader, writer = await asyncio.open_connection(host, port)
        writer.write(line + b"\r\nHost: x\r\n" + header + b"\r\n")
        answers.append(await reader.read())
        writer.close()
    for answer in answers:
        head, body = answer.split(b"\r\n\r\n", 1)
        assert head.startswith(b"HTTP/1.0 400 Bad Request") and b"application/json" in head
        # Not even the answers aiohttp's parser leads to name the server's software.
        assert b"\r\nserver:" not in head.lower() and b"nosniff" in head
        assert json.loads(body) == {"msg": "参数错误: 请求格式不正确", "error_code": 99999, "request_url": ""}
    # One line each, no traceback, nothing from aiohttp's own logger above DEBUG.
    warnings = [r for r in caplog.records
                if r.levelno >= logging.WARNING and r.name.startswith(("aiohttp", "jiandong.ops.serving"))]
    assert [(r.name, r.exc_info) for r in warnings] == [("jiandong.ops.serving", None)] * 5
    messages = [r.getMessage() for r in warnings]
    assert messages[:3] == [
        "malformed request from 127.0.0.1: Bad status line",
        "malformed request from 127.0.0.1: Invalid char in url path",
        "malformed request from 127.0.0.1: Invalid char in url path",
    ]
    print(messages[3:])
    assert all(m.startswith("malformed request from 127.0.0.1: Got more than 8190 bytes when reading")
               for m in messages[3:])
    assert "SECRET" not in " ".join(messages) and "aaaa" not in " ".join(messages)


async def test_the_servers_address_leads_to_the_docs_or_the_pages(serve, tmp_path):
    (tmp_path / "h5").mkdir()
    (tmp_path / "h5" / "index.html").write_text("<title>建东体育</title>", encoding="utf-8")
    async with aiohttp.ClientSession() as session:
        for overrides, target in (({}, "/Docs/jiandong.html"), ({"h5_dir": str(tmp_path / "h5")}, "/h5/")):
            host, port = await serve(**overrides)
            async with session.get(f"http://{host}:{port}/", allow_redirects=False) as resp:
                assert resp.status == 302 and resp.headers["Location"] == target
        async with session.get(f"http://{host}:{port}/") as resp:
            assert resp.status == 200 and str(resp.url).endswith("/h5/") and "建东体育" in await resp.text()
