"""Chat socket caps (jiandong.realtime.admission): per client address (behind trusted proxies, the
forwarded client; IPv6 per /64), per signed-in user, the chat's share of the process's connections;
counted per process."""

from __future__ import annotations

import aiohttp
import pytest

from jiandong.keys import realtime_key
from jiandong.lib import encoding
from jiandong.realtime.admission import address_group
from tests.helpers.api import login
from tests.helpers.realtime import FAST, frame_of
from tests.helpers.waiting import until

pytestmark = pytest.mark.usefixtures("chat_rooms")


async def open_all(client, count: int, path: str = "/ws?room_id=1", **headers: str) -> tuple[list, list]:
    accepted, refused = [], []
    for _ in range(count):
        try:
            accepted.append(await client.ws_connect(path, headers=headers))
        except aiohttp.WSServerHandshakeError as exc:
            refused.append(exc.status)
    return accepted, refused


async def close_all(sockets) -> None:
    for ws in sockets:
        await ws.close()


def test_addresses_are_grouped_as_one_subscriber_holds_them():
    assert address_group("203.0.113.7") == "203.0.113.7"
    assert address_group("::ffff:203.0.113.7") == "203.0.113.7"
    assert address_group("2001:db8:0:0:1::7") == address_group("2001:db8::ffff") == "2001:db8::/64"
    assert address_group("2001:db8:0:1::7") == "2001:db8:0:1::/64"
    assert address_group("not an address") == "not an address"


async def test_an_address_past_its_cap_is_refused_until_one_of_its_sockets_closes(make_client):
    client = await make_client(chat_max_per_address=3, **FAST)
    accepted, refused = await open_all(client, 5)
    assert len(accepted) == 3 and refused == [429, 429]
    resp = await client.get("/ws", headers={"Connection": "Upgrade", "Upgrade": "websocket",
                                            "Sec-WebSocket-Version": "13", "Sec-WebSocket-Key": "x" * 22 + "=="})
    assert resp.status == 429 and await resp.json() == {"msg": "连接过多，请稍后再试", "error_code": 10010,
                                                        "request_url": "/ws"}
    await accepted.pop().close()
    await until(lambda: client.app[realtime_key].admission.total == 2, "the closed socket released")
    again, refused = await open_all(client, 2)
    assert len(again) == 1 and refused == [429]
    metrics = await (await client.get("/metrics")).text()
    assert 'jiandong_chat_connections_refused_total{reason="address"} 4.0' in metrics
    await close_all(accepted + again)


async def test_behind_a_trusted_proxy_the_forwarded_client_is_counted(make_client):
    client = await make_client(trust_proxy=True, chat_max_per_address=2, **FAST)
    first, refused_first = await open_all(client, 3, **{"X-Forwarded-For": "198.51.100.1"})
    second, refused_second = await open_all(client, 2, **{"X-Forwarded-For": "198.51.100.2"})
    assert (len(first), refused_first, len(second), refused_second) == (2, [429], 2, [])
    # IPv6: one subscriber's /64 is one address.
    v6, refused_v6 = await open_all(client, 3, **{"X-Forwarded-For": "2001:db8::1"})
    more, refused_more = await open_all(client, 1, **{"X-Forwarded-For": "2001:db8::2"})
    assert (len(v6), refused_v6, more, refused_more) == (2, [429], [], [429])
    await close_all(first + second + v6)


async def test_without_a_trusted_proxy_a_forged_forwarded_for_changes_nothing(make_client):
    client = await make_client(chat_max_per_address=2, **FAST)
    accepted, refused = [], []
    for i in range(4):
        got, no = await open_all(client, 1, **{"X-Forwarded-For": f"198.51.100.{i}"})
        accepted += got
        refused += no
    assert len(accepted) == 2 and refused == [429, 429]
    await close_all(accepted)


async def test_the_chat_takes_at_most_its_share_of_the_connections(make_client):
    client = await make_client(max_connections=16, chat_connection_share=0.5, **FAST)
    accepted, refused = await open_all(client, 10)
    assert len(accepted) == 8 and refused == [503, 503]
    resp = await client.get("/ws", headers={"Connection": "Upgrade", "Upgrade": "websocket",
                                            "Sec-WebSocket-Version": "13", "Sec-WebSocket-Key": "x" * 22 + "=="})
    assert resp.status == 503 and resp.headers["Retry-After"] == "5"
    assert (await resp.json())["msg"] == "聊天室连接已满，请稍后再试"
    await close_all(accepted)


async def test_a_user_past_their_cap_is_closed_and_counted_once(make_client, sql):
    client = await make_client(chat_max_per_user=2, **FAST)
    token, other = await login(client, "alice"), await login(client, "bob")
    sockets = []
    for _ in range(2):
        ws = await client.ws_connect("/ws")
        await ws.send_str(encoding.dumps_str({"type": "LOGIN", "room_id": "1", "token": token}))
        await frame_of(ws, "LOGIN", myself=True)
        sockets.append(ws)
    # Two sockets of one user are one viewer.
    assert (await frame_of(sockets[-1], "OnLine"))["ONLINE"] == 1
    third = await client.ws_connect("/ws")
    await third.send_str(encoding.dumps_str({"type": "LOGIN", "room_id": "1", "token": token}))
    error = await frame_of(third, "ERROR")
    assert error == {"type": "ERROR", "error_code": 10010, "msg": "同一账号打开的聊天连接过多，请关闭其他页面后再试"}
    assert (await third.receive()).type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
    # Another user is not held back; and once one of alice's sockets goes, she may sign in again.
    bob = await client.ws_connect("/ws")
    await bob.send_str(encoding.dumps_str({"type": "LOGIN", "room_id": "1", "token": other}))
    await frame_of(bob, "LOGIN", myself=True)
    await sockets.pop().close()
    admission = client.app[realtime_key].admission
    alice = sql("SELECT id FROM users WHERE username = 'dev-alice'")[0]["id"]
    await until(lambda: admission.users.get(alice) == 1, "alice's closed socket released")
    again = await client.ws_connect("/ws")
    await again.send_str(encoding.dumps_str({"type": "LOGIN", "room_id": "1", "token": token}))
    assert (await frame_of(again, "LOGIN", myself=True))["user"]["username"] == "dev-alice"
    await close_all([*sockets, bob, again])


async def test_the_caps_are_per_process(make_client):
    """Two processes (two apps on one Redis): one address may hold its cap on each, like max_connections."""
    one = await make_client(chat_max_per_address=2, **FAST)
    two = await make_client(chat_max_per_address=2, **FAST)
    a, refused_a = await open_all(one, 3)
    b, refused_b = await open_all(two, 3)
    assert (len(a), refused_a, len(b), refused_b) == (2, [429], 2, [429])
    await close_all(a + b)
