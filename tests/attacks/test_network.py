"""Attacks on the network edges: connection slots, WeChat Pay's notify URLs, the Host header, phone lookups.

Each is made as a hostile client would make it, over HTTP or the websocket, and asserts that nothing was
written and nothing changed.
"""

from __future__ import annotations

import asyncio
import re

import aiohttp
import pytest

from jiandong.lib import encoding
from tests.helpers.waiting import until

# Fast viewer counts: the test waits tenths of a second for them.
FAST = {"chat_online_interval": 0.1, "chat_presence_ttl": 1.0}
NOTIFY = "/api/v1/pay/notify"
REFUND_NOTIFY = "/api/v1/pay/refund_notify"


def dropped(metrics_text: str, kind: str) -> int:
    """jiandong_notifications_dropped_total of a kind, summed over its reasons."""
    pattern = rf'^jiandong_notifications_dropped_total{{kind="{kind}",reason="[a-z_]+"}} ([0-9.e+]+)$'
    return int(sum(float(m) for m in re.findall(pattern, metrics_text, re.MULTILINE)))


JUNK = [
    b"",
    b"not xml at all",
    b"<xml><return_code>FAIL</return_code></xml>",
    b"<xml><return_code>SUCCESS</return_code><out_trade_no>2099%d</out_trade_no><sign>x</sign></xml>",
    b"<xml><return_code>SUCCESS</return_code><appid>wx1</appid><mch_id>1</mch_id><req_info>%d</req_info></xml>",
]


@pytest.mark.parametrize("path", [NOTIFY, REFUND_NOTIFY])
async def test_junk_notifications_leave_no_rows(client, sql, path):
    """200 posts of junk to a notify URL: each refused (FAIL), none kept, all counted."""
    tables = ("payment_notifications", "refund_notifications", "orders", "refunds", "users")
    before = {t: sql(f"SELECT count(*) AS n FROM {t}")[0]["n"] for t in tables}
    for i in range(200):
        body = JUNK[i % len(JUNK)]
        resp = await client.post(path, data=body.replace(b"%d", str(i).encode()) if b"%d" in body else body,
                                 headers={"Content-Type": "text/xml"})
        assert resp.status == 200 and "<return_code><![CDATA[FAIL]]></return_code>" in await resp.text()
    assert {t: sql(f"SELECT count(*) AS n FROM {t}")[0]["n"] for t in tables} == before
    metrics = await (await client.get("/metrics")).text()
    assert dropped(metrics, "payment" if path == NOTIFY else "refund") == 200


async def test_identify_code_does_not_tell_whose_phone_it_is(client, sql, redis_sync, settings):
    """A player asks codes for 40 numbers, half of them bound to club accounts: the answers are alike
    whichever the number, every lookup counts against the daily limit, and no account changes."""
    for i in range(20):
        sql("INSERT INTO users (openid, username, mobile) VALUES (%s, %s, %s)", f"o-{i}", f"member{i}",
            f"1380013{i:04d}")
    accounts = sql("SELECT id, openid, username, mobile, updated_at FROM users ORDER BY id")
    token = (await (await client.post("/api/v1/token/user", data={"code": "prober"})).json())["token"]
    answers = {"bound": [], "free": []}
    for i in range(40):
        kind = "bound" if i % 2 == 0 else "free"
        phone = f"1380013{i // 2:04d}" if kind == "bound" else f"1390013{i // 2:04d}"
        resp = await client.post("/api/v1/identify/code", data={"phone": phone}, headers={"token": token})
        body = await resp.json()
        answers[kind].append((resp.status, body["error_code"], body["msg"]))
    # Alike, pair by pair; and counted: past the per-address daily limit everyone gets 10010.
    assert answers["bound"] == answers["free"]
    limit = settings.sms_ip_daily_limit
    assert [a[1] for a in answers["bound"] + answers["free"]].count(0) == limit
    assert answers["bound"][-1][:2] == (429, 10010)
    assert sql("SELECT id, openid, username, mobile, updated_at FROM users WHERE openid LIKE 'o-%%' ORDER BY id") \
        == accounts
    assert sql("SELECT mobile FROM users WHERE username = 'dev-prober'") == [{"mobile": None}]


async def open_sockets(session: aiohttp.ClientSession, urls: list[str]) -> tuple[list, list[int]]:
    """Websockets opened one after another: those accepted, and the HTTP status of each refused upgrade."""
    accepted, refused = [], []
    for url in urls:
        try:
            accepted.append(await session.ws_connect(url, autoping=True))
        except aiohttp.WSServerHandshakeError as exc:
            refused.append(exc.status)
    return accepted, refused


async def online(ws: aiohttp.ClientWebSocketResponse, expected: int) -> int:
    """The viewer count pushed to a socket once it reaches `expected` (counts pushed while the last sockets
    were still being registered are skipped), or the last count pushed within 15 s."""
    loop = asyncio.get_running_loop()
    deadline, count = loop.time() + 15, None
    while count != expected and (left := deadline - loop.time()) > 0:
        try:
            msg = await asyncio.wait_for(ws.receive(), left)
        except TimeoutError:
            break
        assert msg.type is aiohttp.WSMsgType.TEXT, msg
        if msg.data != "@heart" and (frame := encoding.loads(msg.data)).get("type") == "OnLine":
            count = frame["ONLINE"]
    return count


async def test_one_address_cannot_hold_every_connection_slot(guarded_server, redis_sync, settings):
    """One anonymous client opens 60 websockets on a server capped at 60 connections: plain HTTP still has
    slots (/healthz answers), the sockets past the chat's share (3/4) are refused with 503, and none refused
    is a viewer. The per-address cap is raised out of the way so that the connection cap alone is tested."""
    base = await guarded_server(max_connections=60, chat_max_per_address=1000, **FAST)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        accepted, refused = await open_sockets(session, [f"{base}/ws?room_id=1"] * 60)
        try:
            assert set(refused) == {503} and len(accepted) == 45
            for _ in range(3):
                async with session.get(f"{base}/healthz") as resp:
                    assert resp.status == 200
            await until(lambda: redis_sync.zscore(f"{settings.redis_prefix}chat:peaks", "1") is not None,
                        "the room's viewers counted")
            assert await online(accepted[-1], len(accepted)) == len(accepted)
            assert redis_sync.zscore(f"{settings.redis_prefix}chat:peaks", "1") == len(accepted)
        finally:
            for ws in accepted:
                await ws.close()


async def test_one_address_opening_more_websockets_than_its_cap_is_refused(guarded_server, redis_sync, settings):
    """300 anonymous websockets from one address, on /ws and on the chat path /: refused past the
    per-address cap, with the API's 429 body; /healthz answered; the refused ones counted nowhere."""
    base = await guarded_server(**FAST)
    urls = [f"{base}/ws?room_id=2" if i % 2 else f"{base}/?room_id=2" for i in range(300)]
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        accepted, refused = await open_sockets(session, urls)
        try:
            assert len(accepted) <= 100 and set(refused) == {429} and len(accepted) + len(refused) == 300
            async with session.get(f"{base}/ws", headers={"Connection": "Upgrade", "Upgrade": "websocket",
                                                          "Sec-WebSocket-Version": "13",
                                                          "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="}) as resp:
                assert resp.status == 429 and (await resp.json())["error_code"] == 10010
            async with session.get(f"{base}/healthz") as resp:
                assert resp.status == 200
            assert await online(accepted[-1], len(accepted)) == len(accepted)
            await until(lambda: redis_sync.zscore(f"{settings.redis_prefix}chat:peaks", "2") == len(accepted),
                        "the room's peak")
            assert redis_sync.zscore(f"{settings.redis_prefix}chat:peaks", "2") == len(accepted)
        finally:
            for ws in accepted:
                await ws.close()


def tiny_png() -> str:
    import base64
    import io

    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (4, 4), (10, 200, 10)).save(out, "PNG")
    return base64.b64encode(out.getvalue()).decode()


@pytest.mark.parametrize("public_url", ["", "https://club.example.com"])
async def test_a_host_header_never_steers_stored_media_urls(make_client, sql, public_url):
    """An avatar uploaded with `Host: evil.example`: stored as a path, and answered to everyone else
    under the public URL (or, in development mode, under the host they asked)."""
    client = await make_client(public_url=public_url)
    token = (await (await client.post("/api/v1/token/user", data={"code": "attacker"})).json())["token"]
    resp = await client.post("/api/v1/user/save", data={"head_img": tiny_png()},
                             headers={"token": token, "Host": "evil.example"})
    assert resp.status == 200
    stored = [*sql("SELECT head_img AS url FROM users"), *sql("SELECT name AS url FROM files")]
    assert stored and all(row["url"].startswith("/media/avatars/") for row in stored), stored
    info = await (await client.get("/api/v1/user/info", headers={"token": token})).json()
    base = public_url or str(client.make_url("")).rstrip("/")
    assert info["head_img"] == base + stored[0]["url"]
    # Even the attacker's own later reads get no evil host back outside development mode; and in it, a
    # Host that is no host name is not copied into answers.
    evil = await (await client.get("/api/v1/user/info", headers={"token": token, "Host": 'evil.example"><x'})).json()
    assert "evil" not in evil["head_img"]
    if public_url:
        evil = await (await client.get("/api/v1/user/info", headers={"token": token, "Host": "evil.example"})).json()
        assert evil["head_img"] == base + stored[0]["url"]
