"""The real server process (python server.py): chat on the dedicated port, SIGKILL loses no
acknowledged message and its viewers expire, SIGTERM closes sockets with 1001 and flushes."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest

from jiandong.keys import redis_key
from jiandong.realtime.presence import room_viewers
from tests.realtime_helpers import FAST, frame_of, send

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
async def server(settings, tmp_path):
    """A server process on an HTTP port and a chat port, whose history writer never runs on its own."""
    port, chat_port = free_port(), free_port()
    env = {
        **os.environ,
        "JIANDONG_DATABASE_URL": settings.database_url,
        "JIANDONG_REDIS_URL": settings.redis_url,
        "JIANDONG_REDIS_PREFIX": settings.redis_prefix,
        "JIANDONG_VAR_DIR": str(tmp_path / "server"),
        "JIANDONG_HOST": "127.0.0.1",
        "JIANDONG_CHAT_HISTORY_INTERVAL": "3600",
        "JIANDONG_CHAT_ONLINE_INTERVAL": "0.1",
        "JIANDONG_CHAT_PRESENCE_TTL": "1",
    }
    # A plain Popen, waited on in a thread: asyncio's child watchers are not for a test suite's loops.
    proc = await asyncio.to_thread(
        subprocess.Popen,
        [sys.executable, "server.py", "--port", str(port), "--chat-port", str(chat_port)],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    async with aiohttp.ClientSession() as session:
        for _ in range(300):
            try:
                async with session.get(f"http://127.0.0.1:{port}/api/v1/openapi.json") as resp:
                    if resp.status == 200:
                        break
            except aiohttp.ClientError:
                pass
            assert proc.poll() is None, "the server exited"
            await asyncio.sleep(0.1)
        else:
            raise AssertionError("the server did not start")
        yield proc, port, chat_port, session
    if proc.poll() is None:
        proc.kill()
    await asyncio.to_thread(proc.wait)


async def chat_in_room(session, port, chat_port, room_id):
    async with session.post(f"http://127.0.0.1:{port}/api/v1/token/user", data={"code": "proc-user"}) as resp:
        token = (await resp.json())["token"]
    ws = await session.ws_connect(f"ws://127.0.0.1:{chat_port}/")
    await send(ws, type="LOGIN", room_id=room_id, token=token)
    await frame_of(ws, "LOGIN", myself=True)
    return ws, token


async def test_sigkill_loses_no_acknowledged_message(server, make_client, sql, settings):
    proc, port, chat_port, session = server
    ws, token = await chat_in_room(session, port, chat_port, 41)
    for content in ("before", "the", "kill"):
        await send(ws, type="SEND_ALL", room_id=41, content=content, token=token)
        assert (await frame_of(ws, "SEND_ALL", myself=True))["content"] == content
    watcher = await make_client(**FAST)
    redis = watcher.app[redis_key]
    for _ in range(100):
        if (await room_viewers(redis, settings, [41]))[41] == 1:
            break
        await asyncio.sleep(0.05)
    assert (await room_viewers(redis, settings, [41]))[41] == 1
    proc.send_signal(signal.SIGKILL)
    await asyncio.to_thread(proc.wait)
    # Another process's writer stores them from the stream.
    for _ in range(200):
        if len(sql("SELECT 1 FROM chat_messages")) == 3:
            break
        await asyncio.sleep(0.05)
    assert [r["content"] for r in sql("SELECT content FROM chat_messages ORDER BY id")] == ["before", "the", "kill"]
    # The dead process's viewer drops out of the counts once its TTL runs out.
    for _ in range(100):
        if (await room_viewers(redis, settings, [41]))[41] == 0:
            break
        await asyncio.sleep(0.05)
    assert (await room_viewers(redis, settings, [41]))[41] == 0


async def test_sigterm_closes_chat_with_1001_flushes_and_exits(server, sql):
    proc, port, chat_port, session = server
    ws, token = await chat_in_room(session, port, chat_port, 42)
    main_port_ws = await session.ws_connect(f"ws://127.0.0.1:{port}/ws?room_id=42")
    # In the room once its own LOGIN echo came (the join by query runs after the upgrade).
    await frame_of(main_port_ws, "LOGIN", myself=True)
    await send(ws, type="SEND_ALL", room_id=42, content="last words", token=token)
    assert (await frame_of(ws, "SEND_ALL", myself=True))["content"] == "last words"
    got = await frame_of(main_port_ws, "SEND_ALL")
    assert got["content"] == "last words" and got["myself"] is False
    assert sql("SELECT count(*) AS n FROM chat_messages") == [{"n": 0}]
    proc.send_signal(signal.SIGTERM)
    for sock in (ws, main_port_ws):
        msg = await asyncio.wait_for(sock.receive(), 30)
        while msg.type is aiohttp.WSMsgType.TEXT:
            msg = await asyncio.wait_for(sock.receive(), 30)
        assert msg.type is aiohttp.WSMsgType.CLOSE and msg.data == 1001
    assert await asyncio.to_thread(proc.wait, 30) == 0
    assert [r["content"] for r in sql("SELECT content FROM chat_messages")] == ["last words"]


async def test_plain_get_of_the_chat_paths(server):
    """Not a websocket: "/" (a browser opening the chat port) leads to the docs page, /ws is a bad request."""
    _, port, chat_port, session = server
    async with session.get(f"http://127.0.0.1:{chat_port}/", allow_redirects=False) as resp:
        assert resp.status == 302 and resp.headers["Location"] == f"http://127.0.0.1:{port}/Docs/jiandong.html"
    async with session.get(f"http://127.0.0.1:{port}/", allow_redirects=False) as resp:
        assert resp.status == 302 and resp.headers["Location"] == "/Docs/jiandong.html"
    async with session.get(f"http://127.0.0.1:{port}/ws") as resp:
        assert resp.status == 400


async def test_the_chat_port_serves_its_websocket_alone(server):
    _, port, chat_port, session = server
    for path in ("/admin/login", "/api/v1/openapi.json", "/metrics", "/Docs/jiandong.html", "/ws", "/readyz"):
        async with session.get(f"http://127.0.0.1:{chat_port}{path}", allow_redirects=False) as resp:
            assert resp.status == 404, path
        async with session.get(f"http://127.0.0.1:{port}{path}", allow_redirects=False) as resp:
            assert resp.status != 404, path
