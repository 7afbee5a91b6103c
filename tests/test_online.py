"""Viewers of a live stream (25): the Aliyun shape, websocket viewers, the CDN's count and its failures."""

import asyncio
import datetime as dt
import logging
import re

import pytest

from jiandong.services.viewers import CDN_COUNT_TIMEOUT, CDN_COUNT_TTL
from tests.fakes.aliyun_live import FakeAliyunLive
from tests.helpers.api import login
from tests.helpers.content import add_live
from tests.helpers.realtime import FAST, join
from tests.helpers.waiting import until

SECRET = "SECRET-PUSH-KEY"  # in every test live's plug_flow


def online_path(live_id: int) -> str:
    return f"/api/v1/competition/online/{live_id}"


@pytest.fixture
async def fake_live(aiohttp_server):
    fake = FakeAliyunLive()
    server = await aiohttp_server(fake.app())
    fake.url = str(server.make_url("/"))
    return fake


@pytest.fixture
async def aliyun_client(make_client, fake_live):
    return await make_client(
        aliyun_access_key_id=fake_live.access_key_id,
        aliyun_access_key_secret=fake_live.access_key_secret,
        aliyun_live_url=fake_live.url,
        aliyun_live_domain=fake_live.domain,
        # No reconciliation during these tests.
        live_poll_interval=3600,
    )


async def get_online(client, live_id: int, token: str, status: int = 200) -> dict:
    resp = await client.get(online_path(live_id), headers={"token": token})
    text = await resp.text()
    assert resp.status == status, text
    assert SECRET not in text and "plug_flow" not in text
    body = await resp.json()
    if status == 200:
        assert body["RequestId"] == resp.headers["X-Request-Id"]
    return body


def assert_shape(body: dict, total: int, stream_url: str) -> None:
    assert set(body) == {"TotalUserNumber", "OnlineUserInfo", "RequestId"}
    assert body["TotalUserNumber"] == total
    (item,) = body["OnlineUserInfo"]["LiveStreamOnlineUserNumInfo"]
    assert set(item) == {"Time", "StreamUrl", "UserNumber"}
    assert item["UserNumber"] == total and item["StreamUrl"] == stream_url
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", item["Time"])
    stamp = dt.datetime.strptime(item["Time"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.timezone.utc)
    assert abs((dt.datetime.now(dt.timezone.utc) - stamp).total_seconds()) < 60


async def test_shape_without_aliyun(client, sql):
    live_id = add_live(sql, "决赛", live_status=1)
    token = await login(client)
    body = await get_online(client, live_id, token)
    assert_shape(body, 0, "rtmp://play.example.com/live/s1")


async def test_stream_url_is_a_play_url_never_the_push_url(client, sql):
    live_id = sql(
        "INSERT INTO lives (title, stream_name, play_m3u8, plug_flow) VALUES ('直播', 'hls', %s, %s) RETURNING id",
        "https://play.example.com/live/hls.m3u8", "rtmp://push.example.com/live/hls?auth_key=SECRET-PUSH-KEY",
    )[0]["id"]
    token = await login(client)
    assert_shape(await get_online(client, live_id, token), 0, "https://play.example.com/live/hls.m3u8")


async def test_unknown_or_unpublished_live_is_30005(client, sql):
    hidden = add_live(sql, "未发布", status=0)
    token = await login(client)
    for live_id in (hidden, hidden + 1, 10**30):
        body = await get_online(client, live_id, token, status=404)
        assert body["error_code"] == 30005


async def test_needs_a_token(client, sql):
    live_id = add_live(sql, "决赛")
    resp = await client.get(online_path(live_id))
    assert resp.status == 401
    assert (await resp.json())["error_code"] == 10003


async def test_websocket_viewers_are_counted(make_client, sql):
    client = await make_client(**FAST)
    live_id = add_live(sql, "决赛", live_status=1)
    other = add_live(sql, "别的", live_status=1)
    token = await login(client)
    sockets = [(await join(client, live_id))[0], (await join(client, live_id, by_query=True))[0],
               (await join(client, other))[0]]
    try:
        async def counted() -> bool:
            return (await get_online(client, live_id, token))["TotalUserNumber"] == 2

        await until(counted, "both viewers of the live")
        assert_shape(await get_online(client, live_id, token), 2, "rtmp://play.example.com/live/s1")
    finally:
        for ws in sockets:
            await ws.close()


async def test_cdn_viewers_added_and_cached(aliyun_client, fake_live, sql, redis_sync, settings):
    live_id = add_live(sql, "决赛", live_status=1)
    other = add_live(sql, "别的", live_status=1)
    fake_live.streams = [("live", "s1"), ("live", "s2")]
    # Viewers of every transcoding count; another stream's do not.
    fake_live.viewers = {"s1": {"origin": 5, "lld": 2}, "s2": {"origin": 40}}
    token = await login(aliyun_client)
    assert_shape(await get_online(aliyun_client, live_id, token), 7, "rtmp://play.example.com/live/s1")
    assert_shape(await get_online(aliyun_client, other, token), 40, "rtmp://play.example.com/live/s2")
    # One domain-wide call, shared by both lives and kept in Redis for every process.
    (call,) = fake_live.calls("DescribeLiveDomainOnlineUserNum")
    assert call["DomainName"] == fake_live.domain and call["Version"] == "2016-11-01"
    key = f"{settings.redis_prefix}live:cdn_viewers"
    assert 0 < redis_sync.ttl(key) <= CDN_COUNT_TTL
    fake_live.viewers["s1"]["origin"] = 6
    assert (await get_online(aliyun_client, live_id, token))["TotalUserNumber"] == 7
    # Once the cached counts expire, the next request asks again.
    redis_sync.delete(key)
    assert (await get_online(aliyun_client, live_id, token))["TotalUserNumber"] == 8
    assert len(fake_live.calls("DescribeLiveDomainOnlineUserNum")) == 2


async def test_cdn_stream_named_by_url(aliyun_client, fake_live, sql):
    live_id = add_live(sql, "决赛", live_status=1)
    fake_live.streams = [("live", "s1")]
    fake_live.viewers = {"s1": {"origin": 3}}
    fake_live.viewer_stream_naming = "url"
    token = await login(aliyun_client)
    assert (await get_online(aliyun_client, live_id, token))["TotalUserNumber"] == 3


async def test_concurrent_requests_share_one_cdn_call(aliyun_client, fake_live, sql):
    live_id = add_live(sql, "决赛", live_status=1)
    fake_live.viewers = {"s1": {"origin": 4}}
    fake_live.delay = 0.2
    token = await login(aliyun_client)
    bodies = await asyncio.gather(*(get_online(aliyun_client, live_id, token) for _ in range(5)))
    assert [b["TotalUserNumber"] for b in bodies] == [4] * 5
    assert len(fake_live.calls("DescribeLiveDomainOnlineUserNum")) == 1


@pytest.mark.parametrize("failure", ["error_code", "http_status", "bad_key"])
async def test_cdn_failure_still_answers_with_the_websocket_count(
    make_client, fake_live, sql, redis_sync, settings, caplog, failure
):
    client = await make_client(
        aliyun_access_key_id=fake_live.access_key_id,
        aliyun_access_key_secret="wrong-secret" if failure == "bad_key" else fake_live.access_key_secret,
        aliyun_live_url=fake_live.url,
        aliyun_live_domain=fake_live.domain,
        live_poll_interval=3600,
    )
    live_id = add_live(sql, "决赛", live_status=1)
    fake_live.viewers = {"s1": {"origin": 9}}
    if failure == "error_code":
        fake_live.fail_code, fake_live.fail_status = "Throttling.User", 400
    elif failure == "http_status":
        fake_live.http_status = 503
    token = await login(client)
    with caplog.at_level(logging.WARNING):
        body = await get_online(client, live_id, token)
    assert_shape(body, 0, "rtmp://play.example.com/live/s1")
    assert "CDN viewer counts unavailable" in caplog.text
    assert fake_live.access_key_secret not in caplog.text and "wrong-secret" not in caplog.text
    # The failure is remembered briefly: Aliyun is not asked again on every request.
    assert redis_sync.get(f"{settings.redis_prefix}live:cdn_viewers") == "{}"
    await get_online(client, live_id, token)
    assert len(fake_live.calls("DescribeLiveDomainOnlineUserNum")) == 1


async def test_slow_cdn_is_given_up(aliyun_client, fake_live, sql):
    live_id = add_live(sql, "决赛", live_status=1)
    fake_live.viewers = {"s1": {"origin": 9}}
    fake_live.delay = CDN_COUNT_TIMEOUT + 2
    token = await login(aliyun_client)
    assert (await get_online(aliyun_client, live_id, token))["TotalUserNumber"] == 0


async def test_live_list_shows_the_same_number_as_endpoint_25(aliyun_client, fake_live, sql):
    live_id = add_live(sql, "决赛", live_status=1)
    fake_live.streams = [("live", "s1")]
    fake_live.viewers = {"s1": {"origin": 5}}
    token = await login(aliyun_client)
    viewer, _ = await join(aliyun_client, live_id)
    try:
        async def counted() -> bool:
            return (await get_online(aliyun_client, live_id, token))["TotalUserNumber"] == 6

        await until(counted, "the socket and the CDN's viewers")
        resp = await aliyun_client.get("/api/v1/competition/live", headers={"token": token})
        (item,) = (await resp.json())["data"]
        assert item["online_num"] == 6
    finally:
        await viewer.close()
