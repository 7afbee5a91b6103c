"""Several server processes on one room: python server.py --workers N on shared ports, two separately
started servers, and a Redis restart in the middle of a chat."""

from __future__ import annotations

import asyncio
import signal
import typing

import aiohttp
import pytest

from jiandong.lib import encoding
from tests.helpers.realtime import frame_of, send
from tests.helpers.servers import server_env
from tests.helpers.waiting import WAIT, until

pytestmark = pytest.mark.usefixtures("chat_rooms")

def process_of(uuid: str) -> str:
    return uuid.rsplit("-", 1)[0]


async def chat_frames(ws: aiohttp.ClientWebSocketResponse, kind: str, count: int) -> list[dict[str, typing.Any]]:
    return [await frame_of(ws, kind) for _ in range(count)]


async def check_room(clients: list[tuple[aiohttp.ClientWebSocketResponse, str, str]], room_id: int) -> None:
    """SEND_ALL from the first reaches every other once, SEND_ONE from the first reaches the last."""
    (first, first_uuid, token), *others = clients
    await send(first, type="SEND_ALL", room_id=room_id, content="大家好", token=token)
    assert (await frame_of(first, "SEND_ALL"))["myself"] is True
    for ws, _, _ in others:
        got = await frame_of(ws, "SEND_ALL")
        assert (got["content"], got["uuid"], got["myself"]) == ("大家好", first_uuid, False)
    last, last_uuid, _ = others[-1]
    assert process_of(last_uuid) != process_of(first_uuid)
    await send(first, type="SEND_ONE", send_to_one=last_uuid, content="悄悄话", token=token)
    assert (await frame_of(first, "SEND_ONE"))["myself"] is True
    assert (await frame_of(last, "SEND_ONE"))["content"] == "悄悄话"
    # Once each: the next chat frame anyone gets is the next message, not a second copy of the first.
    await send(first, type="SEND_ALL", room_id=room_id, content="第二条", token=token)
    for ws, _, _ in clients:
        assert (await frame_of(ws, "SEND_ALL"))["content"] == "第二条"


async def test_workers_share_the_ports_and_the_room(servers, settings, tmp_path, sql):
    proc, port, chat_port = await servers.start(server_env(settings, tmp_path / "var"), "--workers", "2")
    # The second worker may still be starting when the first answers: connect until both have clients.
    # Each its own user: a user watching from several sockets is one viewer (and their sockets are capped).
    clients = []

    async def both_reached() -> bool:
        token = await servers.token(port, f"worker-user-{len(clients)}")
        clients.append((*await servers.join(chat_port, 61, token), token))
        return len(clients) >= 16 and len({process_of(uuid) for _, uuid, _ in clients}) == 2

    await until(both_reached, "the connections to reach both workers")
    processes = {process_of(uuid) for _, uuid, _ in clients}
    assert len(processes) == 2
    # The first sender and the last addressee on different workers.
    first = process_of(clients[0][1])
    clients.sort(key=lambda c: process_of(c[1]) == first, reverse=True)
    # Before the chat: frame_of passes over (and so consumes) the count pushes it is not waiting for.
    for ws, _, _ in clients:
        await frame_of(ws, "OnLine", room_id="61", ONLINE=len(clients))
    await check_room(clients, 61)
    proc.send_signal(signal.SIGTERM)
    for ws, _, _ in clients:
        msg = await asyncio.wait_for(ws.receive(), 30)
        while msg.type is aiohttp.WSMsgType.TEXT:
            msg = await asyncio.wait_for(ws.receive(), 30)
        assert msg.type is aiohttp.WSMsgType.CLOSE and msg.data == 1001
    assert await asyncio.to_thread(proc.wait, 60) == 0
    assert [r["content"] for r in sql("SELECT content FROM chat_messages ORDER BY id")] == ["大家好", "第二条"]


async def test_two_separate_servers_share_the_room(servers, settings, tmp_path):
    env = server_env(settings, tmp_path / "var")
    _, port_a, chat_a = await servers.start(env)
    _, port_b, chat_b = await servers.start(env)
    token_a, token_b = await servers.token(port_a, "sep-a"), await servers.token(port_b, "sep-b")
    token_c = await servers.token(port_a, "sep-c")
    clients = [(*await servers.join(chat_a, 62, token_a), token_a), (*await servers.join(chat_a, 62, token_c), token_c),
               (*await servers.join(chat_b, 62, token_b), token_b)]
    for ws, _, _ in clients:
        await frame_of(ws, "OnLine", room_id="62", ONLINE=3)
    await check_room(clients, 62)


class Reader:
    """Every frame of a socket, read in the background, so a test can wait on what it has seen so far."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.frames: list[dict[str, typing.Any]] = []
        self.task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for msg in self.ws:
            if msg.type is aiohttp.WSMsgType.TEXT and msg.data != "@heart":
                self.frames.append(encoding.loads(msg.data))

    def chat(self, myself: bool) -> list[str]:
        return [f["content"] for f in self.frames if f.get("type") == "SEND_ALL" and f.get("myself") is myself]

    def errors(self) -> int:
        return sum(f.get("type") == "ERROR" for f in self.frames)


async def say(reader: Reader, token: str, room_id: int, content: str) -> bool:
    """Send one message; True once its echo (the acknowledgement) came, False on an error frame."""
    errors = reader.errors()
    await send(reader.ws, type="SEND_ALL", room_id=room_id, content=content, token=token)
    await until(lambda: content in reader.chat(True) or reader.errors() > errors, f"the answer to {content}")
    return content in reader.chat(True)


async def test_redis_restart_during_a_chat(servers, settings, tmp_path, own_redis, sql):
    """Two processes, two rooms, a viewer of each room on each: every message acknowledged after Redis
    came back reaches the other viewers live, once each, however soon after it was sent."""
    env = server_env(settings, tmp_path / "var", JIANDONG_REDIS_URL=own_redis.url)
    _, port_a, chat_a = await servers.start(env)
    _, port_b, chat_b = await servers.start(env)
    token_a, token_b = await servers.token(port_a, "restart-a"), await servers.token(port_b, "restart-b")
    # (room, process name) -> reader; each sends as its process's user.
    readers = {(room, name): Reader((await servers.join(chat, room, token))[0])
               for room in (63, 64) for name, chat, token in (("a", chat_a, token_a), ("b", chat_b, token_b))}
    tokens = {"a": token_a, "b": token_b}
    acked: dict[int, list[str]] = {63: [], 64: []}

    async def talk(room: int, name: str, label: str, count: int, pause: float) -> None:
        for i in range(count):
            content = f"{label}-{room}{name}{i}"
            if await say(readers[room, name], tokens[name], room, content):
                acked[room].append(content)
            # Pacing, not waiting: the talk spreads over the outage and the subscribers' return.
            await asyncio.sleep(pause)

    def heard(room: int, name: str) -> list[str]:
        return readers[room, name].chat(False)

    await asyncio.gather(*(talk(room, name, "before", 2, 0) for room, name in readers))
    await asyncio.to_thread(own_redis.kill)
    # Down for a few seconds, long enough for the subscribers to back off between their attempts.
    await asyncio.gather(*(talk(room, name, "during", 5, 0.5) for room, name in readers))
    await asyncio.to_thread(own_redis.start)
    # Talk at once and all through the subscribers' return.
    await asyncio.gather(*(talk(room, name, "after", 40, 0.05) for room, name in readers))
    assert all(any(c.startswith("after") for c in acked[room]) for room in acked), acked

    def missing() -> dict[tuple[int, str], list[str]]:
        """Per viewer, the acknowledged messages of its room's other viewer it has not heard."""
        lost = {}
        for (room, name) in readers:
            other = "b" if name == "a" else "a"
            expected = [c for c in acked[room] if c[len(c.split("-")[0]) + 1 + len(str(room))] == other]
            lost[room, name] = [c for c in expected if c not in heard(room, name)]
        return lost

    await until(lambda: not any(missing().values()), "every acknowledged message to reach the other viewers")
    for (room, name) in readers:
        mine = heard(room, name)
        # Once each and in the order they were acknowledged, however they arrived (live or replayed).
        assert len(mine) == len(set(mine)), sorted(c for c in mine if mine.count(c) > 1)
        other = "b" if name == "a" else "a"
        theirs = [c for c in acked[room] if c[len(c.split("-")[0]) + 1 + len(str(room))] == other]
        assert [c for c in mine if c in theirs] == theirs

    def stored() -> set[str]:
        return {r["content"] for r in sql("SELECT content FROM chat_messages WHERE room_id IN (63, 64)")}

    acknowledged = set(acked[63]) | set(acked[64])
    await until(lambda: acknowledged <= stored(), "every acknowledged message to be stored")
    async with servers.session.get(f"http://127.0.0.1:{port_a}/api/v1/guest/63", headers={"token": token_a}) as resp:
        assert resp.status == 200
        history = [m["content"] for m in await resp.json()]
    assert set(history) <= set(acked[63]) and len(history) == min(len(acked[63]), 50)
    for reader in readers.values():
        await reader.ws.close()
        await asyncio.wait_for(reader.task, WAIT)
