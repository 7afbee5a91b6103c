"""A busy room's frames reach each socket in one write per batch window, in order, each once; a quiet
room's go out at once."""

from __future__ import annotations

import pytest

from jiandong.keys import realtime_key
from jiandong.realtime.hub import RATE_TAU, Batch, Hub, text_frame
from tests.helpers.api import login
from tests.helpers.realtime import FAST, frame_of, join, send
from tests.helpers.waiting import until

pytestmark = pytest.mark.usefixtures("chat_rooms")


class Transport:
    """What the hub uses of an asyncio transport, recording each write."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.writes.append(data)

    def is_closing(self) -> bool:
        return False

    def get_write_buffer_size(self) -> int:
        return 0


class Socket:
    closed = False


def room(hub: Hub, room_id: int, size: int) -> list[Transport]:
    transports = []
    for _ in range(size):
        transport = Transport()
        hub.join(hub.connect(Socket(), transport), room_id, room_id)  # type: ignore[arg-type]
        transports.append(transport)
    return transports


async def test_frames_within_the_window_go_out_in_one_write_each_sender_skipping_its_own() -> None:
    hub = Hub(1 << 20, False, batch_window=0.05, batch_min_members=3, batch_gain=0)
    transports = room(hub, 1, 3)
    sender = next(iter(hub.rooms[1])).uuid
    sender_transport = hub.conns[sender].transport
    one, two, three = b'{"n":1}', b'{"n":2}', b'{"n":3}'

    hub.deliver_room(1, one, skip=sender)  # after a quiet window: at once
    for t in transports:
        assert t.writes == ([] if t is sender_transport else [text_frame(one)])
    hub.deliver_room(1, two)
    hub.deliver_room(1, three, skip=sender)
    assert all(len(t.writes) == (0 if t is sender_transport else 1) for t in transports)

    # The window ends: what waited goes out in one write per socket.
    await until(lambda: all(len(t.writes) == (1 if t is sender_transport else 2) for t in transports), "the batch")
    for t in transports:
        if t is sender_transport:
            assert t.writes == [text_frame(two)]
        else:
            assert t.writes == [text_frame(one), text_frame(two) + text_frame(three)]


async def test_small_rooms_and_a_zero_window_write_at_once_and_shutdown_flushes() -> None:
    small = Hub(1 << 20, False, batch_window=10.0, batch_min_members=3, batch_gain=0)
    transports = room(small, 1, 2)
    for n in range(3):
        small.deliver_room(1, b"%d" % n)
    assert all(t.writes == [text_frame(b"0"), text_frame(b"1"), text_frame(b"2")] for t in transports)

    off = Hub(1 << 20, False, batch_window=0.0, batch_min_members=1, batch_gain=0)
    transports = room(off, 1, 3)
    off.deliver_room(1, b"a")
    off.deliver_room(1, b"b")
    assert all(len(t.writes) == 2 for t in transports)

    busy = Hub(1 << 20, False, batch_window=10.0, batch_min_members=1, batch_gain=0)
    transports = room(busy, 1, 3)
    busy.deliver_room(1, b"a")
    busy.deliver_room(1, b"b")
    busy.deliver_room(1, b"c")
    assert all(t.writes == [text_frame(b"a")] for t in transports)
    busy.flush_all()  # what close_all does before the close frames
    assert all(t.writes == [text_frame(b"a"), text_frame(b"b") + text_frame(b"c")] for t in transports)
    assert not busy._batches[1].frames and busy._batches[1].timer is None


async def test_a_quiet_room_is_written_at_once_and_a_busy_one_batched() -> None:
    hub = Hub(1 << 20, False, batch_window=0.05, batch_min_members=1)
    transports = room(hub, 1, 2)
    # A few frames in a room that was quiet: a window would gather no other, so none waits.
    for n in range(3):
        hub.deliver_room(1, b"%d" % n)
    assert all(t.writes == [text_frame(b"%d" % n) for n in range(3)] for t in transports)
    # A crowd's pace (hundreds a second): a window gathers many, so they wait for it, and arrive in order.
    frames = [b"busy %d" % n for n in range(200)]
    for frame in frames:
        hub.deliver_room(1, frame)
    await until(lambda: hub._batches[1].timer is None, "the batch")
    for t in transports:
        assert b"".join(t.writes[3:]) == b"".join(map(text_frame, frames))
        assert len(t.writes) - 3 < len(frames) / 2


def test_a_rooms_rate_follows_its_pace() -> None:
    batch = Batch()
    for _ in range(100):
        batch.count(0.0)
    assert batch.rate == pytest.approx(100 / RATE_TAU)
    # Steady at 20 a second: the rate settles at 20.
    for n in range(1, 400):
        batch.count(n / 20)
    assert batch.rate == pytest.approx(20, rel=0.05)
    # Quiet for a while: a frame then is the first of a quiet room.
    assert batch.count(400 / 20 + 10 * RATE_TAU) < 1


async def test_a_room_that_empties_drops_its_queue() -> None:
    hub = Hub(1 << 20, False, batch_window=0.05, batch_min_members=1, batch_gain=0)
    room(hub, 1, 1)
    hub.deliver_room(1, b"a")
    hub.deliver_room(1, b"b")
    timer = hub._batches[1].timer
    assert timer is not None
    hub.disconnect(next(iter(hub.rooms[1])))
    assert 1 not in hub._batches and timer.cancelled()


async def test_batched_chat_through_real_websockets_arrives_in_order_once(make_client) -> None:
    client = await make_client(chat_batch_window=0.3, **FAST)
    client.app[realtime_key].hub.batch_min_members = 1
    client.app[realtime_key].hub.batch_gain = 0
    token = await login(client, "batcher")
    sender, sender_uuid = await join(client, 5, token)
    viewers = [(await join(client, 5, by_query=True))[0] for _ in range(3)]

    for n in range(4):
        await send(sender, type="SEND_ALL", room_id="5", content=f"m{n}", token=token)
    echoes = [await frame_of(sender, "SEND_ALL") for _ in range(4)]
    assert [e["content"] for e in echoes] == ["m0", "m1", "m2", "m3"] and all(e["myself"] for e in echoes)
    for ws in viewers:
        got = [await frame_of(ws, "SEND_ALL") for _ in range(4)]
        assert [g["content"] for g in got] == ["m0", "m1", "m2", "m3"]
        assert all(g["uuid"] == sender_uuid and g["myself"] is False for g in got)
    # The sender got nothing more of its own: its next chat frame is somebody else's.
    await send(viewers[0], type="LOGIN", room_id="5", token=await login(client, "other"))
    await send(viewers[0], type="SEND_ALL", room_id="5", content="reply")
    assert (await frame_of(sender, "SEND_ALL"))["content"] == "reply"
