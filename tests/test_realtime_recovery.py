"""Recovery for reconnecting clients: a LOGIN with the `seq` of the last message seen gets every message of
the room after it, in order, before its echo (`"recovered": true`), or none (`"recovered": false`) when they
cannot all be given; then the live messages, none missed and none twice."""

from __future__ import annotations

import asyncio
import time

import aiohttp
import pytest

from jiandong.keys import realtime_key
from jiandong.realtime.facade import RECOVERY_LIMIT
from jiandong.realtime.history import entry, open_frame
from jiandong.store.room_channels import room_stream
from tests.helpers.api import login
from tests.helpers.realtime import FAST, frame, frame_of, join, send, send_and_ack
from tests.helpers.waiting import WAIT

pytestmark = pytest.mark.usefixtures("chat_rooms")

ROOM = 12


async def relogin(client, seq: str, room=ROOM) -> tuple[aiohttp.ClientWebSocketResponse, list[str], dict]:
    """A new socket that LOGINs with `seq`: the SEND_ALL contents before its echo, and the echo."""
    ws = await client.ws_connect("/ws")
    await send(ws, type="LOGIN", room_id=str(room), seq=seq)
    before = []
    while (got := await frame(ws))["type"] != "LOGIN":
        if got["type"] == "SEND_ALL":
            before.append(got["content"])
    return ws, before, got


async def test_a_client_back_with_its_last_seq_gets_what_it_missed_then_the_live_messages(make_client):
    client = await make_client(**FAST)
    token = await login(client, "talker")
    talker, _ = await join(client, ROOM, token)
    viewer, _ = await join(client, ROOM)
    await send_and_ack(talker, token, ROOM, "一", "二")
    await frame_of(viewer, "SEND_ALL", content="一")
    last = (await frame_of(viewer, "SEND_ALL", content="二"))["seq"]
    await viewer.close()
    await send_and_ack(talker, token, ROOM, "三", "四")
    back, missed, echo = await relogin(client, last)
    assert missed == ["三", "四"]
    assert echo["recovered"] is True and echo["myself"] is True
    await send_and_ack(talker, token, ROOM, "五")
    newest = await frame_of(back, "SEND_ALL")
    assert newest["content"] == "五"
    # Nothing missed: recovered, with nothing to give.
    _, missed, echo = await relogin(client, newest["seq"])
    assert missed == [] and echo["recovered"] is True


@pytest.mark.parametrize("seq", ["1-0", "99999999999999-0"], ids=["trimmed long ago", "never in the stream"])
async def test_a_seq_no_longer_in_the_stream_recovers_nothing_and_says_so(make_client, seq):
    client = await make_client(**FAST)
    token = await login(client, "talker")
    talker, _ = await join(client, ROOM, token)
    await send_and_ack(talker, token, ROOM, "一")
    ws, missed, echo = await relogin(client, seq)
    assert missed == [] and echo["recovered"] is False
    # The socket is in the room all the same.
    await send_and_ack(talker, token, ROOM, "二")
    assert (await frame_of(ws, "SEND_ALL"))["content"] == "二"


async def test_more_missed_than_the_limit_recovers_nothing(make_client, redis_sync, settings):
    client = await make_client(**FAST)
    token = await login(client, "talker")
    talker, _ = await join(client, ROOM, token)
    viewer, _ = await join(client, ROOM)
    await send_and_ack(talker, token, ROOM, "起点")
    last = (await frame_of(viewer, "SEND_ALL"))["seq"]
    await viewer.close()
    # As many as the limit, then one more, straight into the room's stream (the rate limit would take minutes).
    message = entry(ROOM, 0, "000000000000-1", "x", {"username": "", "head_img": ""}, time.time())
    for n in range(RECOVERY_LIMIT):
        redis_sync.xadd(room_stream(settings, ROOM), {"m": message, "f": open_frame({"type": "SEND_ALL",
                                                                                   "content": f"m{n}"})})
    # The process delivered those to nobody: the stream is read up to what the room heard live.
    await send_and_ack(talker, token, ROOM, "满")
    _, missed, echo = await relogin(client, last)
    assert missed == [] and echo["recovered"] is False
    # Within the limit, all of them.
    second = redis_sync.xrange(room_stream(settings, ROOM))[1][0]
    _, missed, echo = await relogin(client, second)
    assert echo["recovered"] is True and missed == [f"m{n}" for n in range(1, RECOVERY_LIMIT)] + ["满"]


@pytest.mark.parametrize("seq", ["abc", "1-", "-1", "1-2-3", "1" * 20 + "-0", "١-0", 12])
async def test_a_malformed_seq_is_a_parameter_error(make_client, seq):
    client = await make_client(**FAST)
    ws = await client.ws_connect("/ws")
    await send(ws, type="LOGIN", room_id=str(ROOM), seq=seq)
    assert (await frame(ws))["error_code"] == 99999
    assert client.app[realtime_key].hub.rooms.get(ROOM) is None


async def test_messages_sent_while_a_client_recovers_reach_it_once_each_and_in_order(make_client):
    """The race the recovery guards: the room keeps talking while the stream is read."""
    sending = await make_client(**FAST, chat_rate_count=10_000, chat_rate_address_count=0)
    # Without the old no-room mode, where a socket hears every room until it joins one.
    watching = await make_client(**FAST, chat_legacy_mode=False)
    token = await login(sending, "talker")
    talker, _ = await join(sending, ROOM, token)
    viewer, _ = await join(watching, ROOM)
    await send_and_ack(talker, token, ROOM, "0")
    last = (await frame_of(viewer, "SEND_ALL"))["seq"]
    sent = ["0"]
    done = asyncio.Event()

    async def talk() -> None:
        while not done.is_set() or len(sent) < 40:
            content = str(len(sent))
            await send(talker, type="SEND_ALL", room_id=ROOM, content=content, token=token)
            assert (await frame_of(talker, "SEND_ALL", myself=True))["content"] == content
            sent.append(content)

    task = asyncio.create_task(talk())
    heard = []
    for _ in range(5):
        await viewer.close()
        await asyncio.sleep(0.01)
        viewer, missed, echo = await relogin(watching, last)
        assert echo["recovered"] is True
        heard += missed
        # Live from here on, up to a few more.
        for _ in range(3):
            got = await frame_of(viewer, "SEND_ALL")
            heard.append(got["content"])
            last = got["seq"]
    done.set()
    await asyncio.wait_for(task, WAIT)
    assert heard == [str(n) for n in range(1, len(heard) + 1)]
    assert len(heard) >= 15
