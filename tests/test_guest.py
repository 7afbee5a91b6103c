"""Chat history of a room (guest/:id): the last N, oldest first, user as a JSON string, myself per reader."""

from __future__ import annotations

import json

import pytest

from tests.helpers.api import login
from tests.helpers.realtime import (
    FAST,
    IDLE_WRITER,
    join,
    rows_eventually,
    send_and_ack,
)

pytestmark = pytest.mark.usefixtures("chat_rooms")


async def test_guest_history_is_the_last_n_oldest_first(make_client, sql):
    writer = await make_client(**FAST)
    reader = await make_client(chat_history_size=3, **IDLE_WRITER)
    token_a = await login(writer, "ann")
    token_b = await login(writer, "ben")
    a, uuid_a = await join(writer, 12, token_a)
    b, _ = await join(writer, 12, token_b)
    other, _ = await join(writer, 13, token_a)
    await send_and_ack(a, token_a, 12, "a1")
    await send_and_ack(b, token_b, 12, "b1")
    await send_and_ack(other, token_a, 13, "elsewhere")
    await send_and_ack(a, token_a, 12, "a2")
    await rows_eventually(sql, 4)
    await send_and_ack(b, token_b, 12, "b2")  # maybe not yet written: served from the stream
    resp = await reader.get("/api/v1/guest/12", headers={"token": token_a})
    assert resp.status == 200
    body = await resp.json()
    assert [m["content"] for m in body] == ["b1", "a2", "b2"]
    assert [m["myself"] for m in body] == [False, True, False]
    first = body[1]
    assert first["type"] == "SEND_ALL" and first["room_id"] == 12 and first["uuid"] == uuid_a
    assert isinstance(first["user"], str) and json.loads(first["user"])["username"] == "dev-ann"
    assert isinstance(first["msg_time"], int)
    # Written or not, the same answer once the writer caught up.
    await rows_eventually(sql, 5)
    again = await (await reader.get("/api/v1/guest/12", headers={"token": token_a})).json()
    assert again == body
    resp = await reader.get("/api/v1/guest/12", headers={"token": token_b})
    assert [m["myself"] for m in await resp.json()] == [True, False, True]
    # Default size 50, and an empty room.
    resp = await writer.get("/api/v1/guest/12", headers={"token": token_b})
    assert [m["content"] for m in await resp.json()] == ["a1", "b1", "a2", "b2"]
    resp = await writer.get("/api/v1/guest/99", headers={"token": token_b})
    assert resp.status == 200 and await resp.json() == []


async def test_guest_history_needs_a_token(client):
    resp = await client.get("/api/v1/guest/12")
    assert resp.status == 401
    assert (await resp.json())["error_code"] == 10003
