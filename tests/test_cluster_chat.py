"""The chat on a Redis Cluster through its three faults, the sender and the viewer on two server processes:
a slot migration of the busy room's slot, a CLUSTER FAILOVER of its master, a kill -9 of its master.

Every message the sender saw acknowledged reaches the viewer once and in order, and the room goes on after
the fault. With redis-py alone a viewer in another process than the sender goes silent after the first two
(redis-cluster.md §1); the broker notices and replays from the room's stream (realtime/broker.py). Each test
prints its figures: time to resume, acknowledged messages lost, duplicates.
"""

from __future__ import annotations

import asyncio
import re
import time
import typing

import aiohttp
import pytest

from jiandong.lib import encoding
from jiandong.store.room_channels import room_channel
from tests.helpers.realtime import send
from tests.helpers.servers import server_env
from tests.helpers.waiting import until

pytestmark = pytest.mark.usefixtures("chat_rooms")

ROOM = 42
METRIC = re.compile(r'^(jiandong_chat_resubscriptions_total|jiandong_chat_replayed_messages_total|'
                    r'jiandong_chat_gaps_total|jiandong_redis_pubsub_reconnects_total)(\{[^}]*\})? ([0-9.e+]+)$', re.M)
# Messages a second from the sender, each sent once the previous one was answered.
RATE = 50


class Viewer:
    """Collects the SEND_ALL frames a socket receives, with the time each arrived."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.got: list[tuple[str, float]] = []
        self.task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for msg in self.ws:
            if msg.type is not aiohttp.WSMsgType.TEXT:
                break
            frame = encoding.loads(msg.data)
            if frame.get("type") == "SEND_ALL":
                self.got.append((frame["content"], time.monotonic()))

    def contents(self) -> list[str]:
        return [content for content, _ in self.got]


async def answer(ws: aiohttp.ClientWebSocketResponse) -> dict[str, typing.Any]:
    """The sender's next own SEND_ALL echo (acknowledged) or ERROR (not)."""
    while True:
        msg = await asyncio.wait_for(ws.receive(), 30)
        assert msg.type is aiohttp.WSMsgType.TEXT, msg
        frame = encoding.loads(msg.data)
        if frame.get("type") == "ERROR" or (frame.get("type") == "SEND_ALL" and frame.get("myself")):
            return typing.cast(dict[str, typing.Any], frame)


async def chat_through(fault: typing.Callable[[int], typing.Awaitable[typing.Any]], redis_cluster, servers, settings,
                       tmp_path, may_lose: float = 0.0) -> dict[str, typing.Any]:
    """Chat at RATE messages/s from a sender on one server to a viewer on another, run `fault(slot of the room)`
    in the middle, and go on until the room works again; what the viewer got, checked, with the figures.

    `may_lose`: seconds before the fault within which an acknowledged message may be lost (a master killed
    before it passed the message on to its replica: replication is asynchronous); otherwise none may."""
    env = server_env(settings.replace(redis_url=redis_cluster.url), tmp_path / "var")
    (_, port_a, chat_a), (_, port_b, chat_b) = await asyncio.gather(servers.start(env), servers.start(env))
    token = await servers.token(port_a, "sender")
    sender, _ = await servers.join(chat_a, ROOM, token)
    viewer_ws, _ = await servers.join(chat_b, ROOM, "")
    viewer = Viewer(viewer_ws)
    acked: list[str] = []
    acked_at: dict[str, float] = {}
    refused = 0
    n = 0

    async def say() -> None:
        nonlocal n, refused
        n += 1
        content = f"m{n}"
        await send(sender, type="SEND_ALL", room_id=ROOM, content=content, token=token)
        if (await answer(sender)).get("type") == "SEND_ALL":
            acked.append(content)
            acked_at[content] = time.monotonic()
        else:
            refused += 1
        await asyncio.sleep(1 / RATE)

    # Both processes hear the room before the fault: the first message reaches the viewer.
    await say()
    await until(lambda: viewer.contents()[-1:] == acked[-1:] and acked, "the viewer to hear the room")
    slot = redis_cluster.slot_of(room_channel(settings, ROOM))
    for _ in range(RATE):
        await say()
    fault_task = asyncio.create_task(fault(slot))
    fault_started = time.monotonic()
    while not fault_task.done():
        await say()
    fault_result = await fault_task
    fault_ended = time.monotonic()
    # On until a second of messages sent after the fault reached the viewer (or 30 s passed: then the check
    # below fails, with the figures).
    after = len(acked)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not (len(acked) > after + RATE and acked[-1] in viewer.contents()):
        await say()
    await until(lambda: acked[-1] in viewer.contents(), "the last acknowledged message to reach the viewer")
    await sender.close()
    await viewer_ws.close()
    await viewer.task
    got = viewer.contents()
    heard = [c for c in got if c in set(acked)]
    lost = [c for c in acked if c not in set(got)]
    duplicates = len(got) - len(set(got))
    # The longest silence of the viewer from the fault on: the time the room took to resume.
    times = [fault_started] + [t for _, t in viewer.got if t >= fault_started]
    resume = max(b - a for a, b in zip(times, times[1:], strict=False))
    # What the viewer's process counted: the subscriptions it made again, and why; what it replayed.
    async with servers.session.get(f"http://127.0.0.1:{port_b}/metrics") as resp:
        exposition = await resp.text()
    counted = {name + labels: float(value) for name, labels, value in METRIC.findall(exposition)}
    figures = {"sent": n, "acknowledged": len(acked), "refused": refused, "lost": len(lost), "duplicates": duplicates,
               "resume_s": round(resume, 3), "fault_s": round(fault_ended - fault_started, 3), "fault": fault_result,
               "viewer_process": {k: v for k, v in counted.items() if v}}
    print(f"\n{figures}")
    assert duplicates == 0, figures
    assert [c for c in lost if not (may_lose and fault_started - may_lose <= acked_at[c] <= fault_ended)] == [], (
        lost, figures)
    assert heard == [c for c in acked if c not in lost], figures  # in order
    return figures


def other_master(redis_cluster, node):
    return next(n for n in redis_cluster.nodes() if n.is_master and n.slots and n.id != node.id)


async def test_the_room_survives_a_migration_of_its_slot(redis_cluster, servers, settings, tmp_path):
    async def migrate(slot: int) -> str:
        owner = redis_cluster.owner(slot)
        target = other_master(redis_cluster, owner)
        await redis_cluster.migrate_slot(slot, target)
        assert redis_cluster.owner(slot).id == target.id
        return f"slot {slot}: {owner.port} -> {target.port}"

    figures = await chat_through(migrate, redis_cluster, servers, settings, tmp_path)
    # The viewer's process noticed (Redis ended its subscription, or it saw the slot move) and subscribed again.
    assert any(k.startswith("jiandong_chat_resubscriptions_total") for k in figures["viewer_process"]), figures


async def test_the_room_survives_a_failover_of_its_master(redis_cluster, servers, settings, tmp_path):
    async def failover(slot: int) -> str:
        owner = redis_cluster.owner(slot)
        promoted = await redis_cluster.failover(owner)
        assert redis_cluster.owner(slot).id == promoted.id
        return f"slot {slot}: {owner.port} -> {promoted.port}"

    figures = await chat_through(failover, redis_cluster, servers, settings, tmp_path)
    assert any(k.startswith("jiandong_chat_resubscriptions_total") for k in figures["viewer_process"]), figures


async def test_the_room_survives_its_master_killed(redis_cluster, servers, settings, tmp_path):
    async def kill(slot: int) -> str:
        owner = redis_cluster.owner(slot)
        seconds = await redis_cluster.kill_master(owner)
        return f"slot {slot}: {owner.port} killed, a replica took over in {seconds:.1f} s"

    try:
        await chat_through(kill, redis_cluster, servers, settings, tmp_path, may_lose=0.5)
    finally:
        await redis_cluster.heal()
