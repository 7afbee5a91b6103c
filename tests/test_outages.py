"""PostgreSQL or Redis down or frozen: 503 with Retry-After within the timeout, one log line each way,
recovery on its own. Each test stops or freezes a server of its own (tests/helpers/own_servers.py), asked
for before the app so that it outlives the app's shutdown."""

from __future__ import annotations

import asyncio
import logging
import typing
import uuid

import psycopg2
import pytest

from jiandong.lib import encoding
from jiandong.services.admins import hash_password
from tests.helpers.admin import PASSWORD, csrf, sign_in
from tests.helpers.api import login
from tests.helpers.realtime import FAST, frame_of, join, send
from tests.helpers.waiting import until

pytestmark = pytest.mark.usefixtures("chat_rooms")

UNAVAILABLE = {"msg": "服务暂时不可用，请稍后重试", "error_code": 10000}
# A path that reads PostgreSQL on every request (no cache in front of it).
MEMBER = "/api/v1/member/info"




async def answer(client, path: str, token: str) -> tuple[int, dict[str, typing.Any], str | None]:
    resp = await client.get(path, headers={"token": token})
    return resp.status, await resp.json(), resp.headers.get("Retry-After")


def outage_lines(caplog, name: str) -> tuple[list[str], list[str]]:
    """The lines saying `name` went away and came back."""
    messages = [r.getMessage() for r in caplog.records if r.name == "jiandong.store.outages"]
    return ([m for m in messages if m.startswith(f"{name} is unavailable")],
            [m for m in messages if m.startswith(f"{name} is back")])


def no_tracebacks(caplog) -> None:
    assert [r.getMessage() for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR] == []


async def until_back(client, path: str, token: str) -> tuple[int, dict[str, typing.Any], str | None]:
    async def back() -> bool:
        return (await answer(client, path, token))[0] != 503

    await until(back, f"{path} to answer without 503")
    return await answer(client, path, token)


@pytest.mark.parametrize("fault", ["stopped", "frozen"])
async def test_postgresql_away_answers_503_then_recovers(own_postgres, make_client, caplog, fault):
    database = await asyncio.to_thread(own_postgres.create_database, "club")
    client = await make_client(database_url=database, db_timeout=1.0)
    token = await login(client, "patient")
    assert (await answer(client, MEMBER, token))[:2] == (404, {"msg": "会员信息不存在或已被禁用", "error_code": 30002,
                                                              "request_url": MEMBER})
    caplog.set_level(logging.INFO, logger="jiandong")
    await asyncio.to_thread(own_postgres.stop if fault == "stopped" else own_postgres.freeze)
    try:
        for _ in range(3):
            status, body, retry_after = await answer(client, MEMBER, token)
            assert (status, body, retry_after) == (503, {**UNAVAILABLE, "request_url": MEMBER}, "5")
        # A read the process has cached still works (the token, here).
        status, _, _ = await answer(client, "/api/v1/openapi.json", token)
        assert status == 200
        gone, back = outage_lines(caplog, "PostgreSQL")
        assert len(gone) == 1 and back == [], gone
    finally:
        await asyncio.to_thread(own_postgres.start if fault == "stopped" else own_postgres.thaw)
    assert (await until_back(client, MEMBER, token))[0] == 404
    await until(lambda: outage_lines(caplog, "PostgreSQL")[1], "the line saying PostgreSQL is back")
    gone, back = outage_lines(caplog, "PostgreSQL")
    assert len(gone) == 1 and len(back) == 1, (gone, back)
    refused = int(back[0].split("; ")[1].split(" ")[0])
    assert refused >= 3
    no_tracebacks(caplog)


@pytest.mark.parametrize("fault", ["stopped", "frozen"])
async def test_redis_away_answers_503_then_recovers(own_redis, make_client, caplog, fault):
    client = await make_client(redis_url=own_redis.url, redis_timeout=0.5, redis_prefix=f"o{uuid.uuid4().hex[:8]}:",
                               **FAST)
    token = await login(client, "patient")
    caplog.set_level(logging.INFO, logger="jiandong")
    await asyncio.to_thread(own_redis.kill if fault == "stopped" else own_redis.freeze)
    try:
        # A token this process has not seen lately needs Redis to be resolved.
        unknown = uuid.uuid4().hex
        for _ in range(3):
            status, body, retry_after = await answer(client, MEMBER, unknown)
            assert (status, body, retry_after) == (503, {**UNAVAILABLE, "request_url": MEMBER}, "5")
        gone, back = outage_lines(caplog, "Redis")
        assert len(gone) == 1 and back == [], gone
    finally:
        await asyncio.to_thread(own_redis.start if fault == "stopped" else own_redis.thaw)
    assert (await until_back(client, MEMBER, token))[0] == 404
    await until(lambda: outage_lines(caplog, "Redis")[1], "the line saying Redis is back")
    gone, back = outage_lines(caplog, "Redis")
    assert len(gone) == 1 and len(back) == 1, (gone, back)
    no_tracebacks(caplog)


async def test_a_chat_message_during_a_frozen_redis_is_refused_not_held(own_redis, make_client, caplog):
    client = await make_client(redis_url=own_redis.url, redis_timeout=0.5, redis_prefix=f"o{uuid.uuid4().hex[:8]}:",
                               **FAST)
    token = await login(client, "talker")
    ws, _ = await join(client, 7, token)
    caplog.set_level(logging.INFO, logger="jiandong")
    await asyncio.to_thread(own_redis.freeze)
    try:
        await send(ws, type="SEND_ALL", room_id=7, content="有人吗", token=token)
        error = await frame_of(ws, "ERROR")
        assert error == {"type": "ERROR", **UNAVAILABLE}
    finally:
        await asyncio.to_thread(own_redis.thaw)
    # Once Redis answers, the same socket sends again.
    async def sent() -> bool:
        await send(ws, type="SEND_ALL", room_id=7, content="回来了", token=token)
        frame = encoding.loads((await ws.receive()).data)
        while frame.get("type") not in ("SEND_ALL", "ERROR"):
            frame = encoding.loads((await ws.receive()).data)
        assert frame["type"] == "ERROR" or (frame["content"], frame["myself"]) == ("回来了", True), frame
        return frame["type"] == "SEND_ALL"

    await until(sent, "the socket to send again")
    no_tracebacks(caplog)


# -- the console: an HTML page saying so, never a traceback ----------------------------------------------

@pytest.mark.parametrize("dependency", ["PostgreSQL", "Redis"])
async def test_the_console_answers_503_while_a_dependency_is_away(own_postgres, own_redis, make_client, caplog,
                                                                  dependency):
    """A signed-in owner's pages (a list, a form post) while PostgreSQL or Redis (its sessions) is stopped:
    the console's own 503 page with Retry-After, one line saying so, no traceback; back on its own."""
    database = await asyncio.to_thread(own_postgres.create_database, "console")
    client = await make_client(database_url=database, db_timeout=1.0, redis_url=own_redis.url, redis_timeout=0.5,
                               redis_prefix=f"c{uuid.uuid4().hex[:8]}:")
    with psycopg2.connect(database) as conn, conn.cursor() as cur:
        cur.execute("INSERT INTO admins (username, password_hash, role, is_active) VALUES (%s, %s, 'owner', true)",
                    ("boss", hash_password(PASSWORD)))
    conn.close()
    assert (await sign_in(client)).status == 302
    token = await csrf(client, "/admin/")
    caplog.set_level(logging.INFO, logger="jiandong")
    server = own_postgres if dependency == "PostgreSQL" else own_redis
    await asyncio.to_thread(server.stop if dependency == "PostgreSQL" else server.kill)
    try:
        for method, path, data in (("GET", "/admin/competitions", None),
                                   ("POST", "/admin/teams/new", {"name": "断线队", "csrf_token": token})):
            resp = await client.request(method, path, data=data, allow_redirects=False)
            body = await resp.text()
            assert (resp.status, resp.content_type, resp.headers.get("Retry-After")) == (503, "text/html", "5"), path
            assert "服务暂时不可用" in body and "Traceback" not in body
        gone, _ = outage_lines(caplog, dependency)
        assert len(gone) == 1, gone
    finally:
        await asyncio.to_thread(server.start)

    async def back() -> bool:
        return (await client.get("/admin/competitions", allow_redirects=False)).status != 503

    await until(back, "the console to answer without 503")
    no_tracebacks(caplog)


async def test_a_chat_sign_in_while_postgresql_is_away_is_answered_unavailable(own_postgres, make_client, caplog):
    """The chat reads the sender's account from PostgreSQL: while it is stopped, the send is answered with
    the unavailable error frame on a socket that stays open, and goes through once it is back."""
    database = await asyncio.to_thread(own_postgres.create_database, "chat")
    client = await make_client(database_url=database, db_timeout=1.0, **FAST)
    with psycopg2.connect(database) as conn, conn.cursor() as cur:
        cur.execute("INSERT INTO lives (title, stream_name) VALUES ('断线', 's7') RETURNING id")
        (room,) = cur.fetchone()
    conn.close()
    token = await login(client, "talker")
    ws, _ = await join(client, room)
    caplog.set_level(logging.INFO, logger="jiandong")
    await asyncio.to_thread(own_postgres.stop)
    try:
        await send(ws, type="SEND_ALL", room_id=room, content="有人吗", token=token)
        assert await frame_of(ws, "ERROR") == {"type": "ERROR", **UNAVAILABLE}
    finally:
        await asyncio.to_thread(own_postgres.start)

    async def sent() -> bool:
        await send(ws, type="SEND_ALL", room_id=room, content="回来了", token=token)
        frame = encoding.loads((await ws.receive()).data)
        while frame.get("type") not in ("SEND_ALL", "ERROR"):
            frame = encoding.loads((await ws.receive()).data)
        return frame["type"] == "SEND_ALL"

    await until(sent, "the socket to send again")
    no_tracebacks(caplog)
