"""The real server process (python server.py): chat on the dedicated port, SIGKILL loses no
acknowledged message and its viewers expire, SIGTERM closes sockets with 1001 and flushes."""

from __future__ import annotations

import asyncio
import signal

import aiohttp
import pytest

from jiandong.keys import redis_key
from jiandong.store.presence import room_viewers
from tests.helpers.realtime import FAST, frame_of, rows_eventually, send
from tests.helpers.servers import server_env
from tests.helpers.waiting import until

pytestmark = pytest.mark.usefixtures("chat_rooms")



@pytest.fixture
async def server(servers, settings, tmp_path):
    """A server process on an HTTP port and a chat port, whose history writer never runs on its own."""
    env = server_env(settings, tmp_path / "server", JIANDONG_CHAT_HISTORY_INTERVAL="3600")
    proc, port, chat_port = await servers.start(env)
    return proc, port, chat_port, servers.session


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

    async def viewers(count: int) -> bool:
        return (await room_viewers(redis, settings, [41]))[41] == count

    await until(lambda: viewers(1), "the viewer to be counted")
    proc.send_signal(signal.SIGKILL)
    await asyncio.to_thread(proc.wait)
    # Another process's writer stores them from the stream.
    await rows_eventually(sql, 3)
    assert [r["content"] for r in sql("SELECT content FROM chat_messages ORDER BY id")] == ["before", "the", "kill"]
    # The dead process's viewer drops out of the counts once its TTL runs out.
    await until(lambda: viewers(0), "the dead process's viewer to drop out")


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


async def test_the_chat_ports_frames_link_the_default_avatar_on_the_http_port(server):
    """The chat port serves nothing but its websocket: the default avatar of a sender who came through it
    is linked where it is served, on the HTTP port."""
    _, port, chat_port, session = server
    ws, _ = await chat_in_room(session, port, chat_port, 43)
    await send(ws, type="LOGIN", room_id=43)
    head_img = (await frame_of(ws, "LOGIN", myself=True))["user"]["head_img"]
    assert head_img.startswith(f"http://127.0.0.1:{port}/media/"), head_img
    async with session.get(head_img) as resp:
        assert resp.status == 200 and resp.content_type == "image/png"
