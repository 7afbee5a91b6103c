"""Endpoint 31 (wxconfig): JS-SDK signature, URL handling, and the shared token/ticket cache in Redis."""

import asyncio
import hashlib
import json
import time
from urllib.parse import quote

import pytest

from jiandong.store.kv import rkey
from tests.fakes.wechat import HTTP_500, TICKET_PATH, TOKEN_PATH, FakeWeChat, serve, settings_for
from tests.helpers.api import login

URL = "/api/v1/wxconfig"
PAGE = "https://club.example.com/h5/index.html?from=menu&id=42"


@pytest.fixture
async def wechat(aiohttp_server):
    return await serve(aiohttp_server, FakeWeChat())


@pytest.fixture
async def wx_client(make_client, wechat):
    return await make_client(**settings_for(wechat))


@pytest.fixture
async def wx_token(wx_client, wechat):
    wechat.add_code("login", "o-alice", nickname="张三")
    return await login(wx_client, "login")


def sha1_of(ticket, body):
    raw = f"jsapi_ticket={ticket}&noncestr={body['nonceStr']}&timestamp={body['timestamp']}&url={body['url']}"
    return hashlib.sha1(raw.encode()).hexdigest()


def cached(redis_sync, settings, appid, name):
    raw = redis_sync.get(rkey(settings, "wechat", appid, name))
    return None if raw is None else json.loads(raw)


async def wxconfig(client, token, cur_url=PAGE):
    return await client.post(URL, data={"cur_url": cur_url}, headers={"token": token})


async def test_signature(wx_client, wechat, wx_token):
    resp = await wxconfig(wx_client, wx_token)
    assert resp.status == 200
    text = await resp.text()
    body = json.loads(text)
    assert set(body) == {"appId", "nonceStr", "timestamp", "url", "signature", "rawString"}
    [ticket] = wechat.tickets
    assert body["appId"] == wechat.appid and body["url"] == PAGE
    assert isinstance(body["timestamp"], int) and abs(body["timestamp"] - time.time()) < 60
    assert len(body["nonceStr"]) >= 16 and body["nonceStr"].isalnum()
    assert body["signature"] == sha1_of(ticket, body)
    assert body["rawString"] == (
        f"jsapi_ticket=***&noncestr={body['nonceStr']}&timestamp={body['timestamp']}&url={PAGE}")
    # Neither the ticket nor the basic access_token leaves the server.
    assert ticket not in text and wechat.current_token not in text and "access_token" not in text
    again = await (await wxconfig(wx_client, wx_token)).json()
    assert again["nonceStr"] != body["nonceStr"]


async def test_fragment_dropped(wx_client, wechat, wx_token):
    resp = await wxconfig(wx_client, wx_token, PAGE + "#/orders/7")
    assert resp.status == 200
    body = await resp.json()
    assert body["url"] == PAGE
    assert body["signature"] == sha1_of(wechat.tickets[0], body)


async def test_encoded_url_decoded(wx_client, wechat, wx_token):
    resp = await wxconfig(wx_client, wx_token, quote(PAGE + "#/orders/7", safe=""))
    assert resp.status == 200
    body = await resp.json()
    assert body["url"] == PAGE
    assert body["signature"] == sha1_of(wechat.tickets[0], body)


@pytest.mark.parametrize(
    ("data", "msg"),
    [
        ({}, "参数错误: cur_url 不能为空"),
        ({"cur_url": "  "}, "参数错误: cur_url 不能为空"),
        ({"cur_url": "javascript:alert(1)"}, "参数错误: cur_url 必须是 http 或 https 页面地址"),
        ({"cur_url": "/h5/index.html"}, "参数错误: cur_url 必须是 http 或 https 页面地址"),
        # urlsplit refuses an unbalanced IPv6 bracket outright.
        ({"cur_url": "http://[club.example.com/h5/"}, "参数错误: cur_url 必须是 http 或 https 页面地址"),
        # What schema fuzzing found taken though its documented pattern refuses it: a host that is no host name.
        ({"cur_url": "HTTP://0*"}, "参数错误: cur_url 必须是 http 或 https 页面地址"),
        ({"cur_url": "http://club.example.com/h5/a b.html"}, "参数错误: cur_url 必须是 http 或 https 页面地址"),
        ({"cur_url": "http%3A%2F%2Fclub.example.com%2Fh5%2F%0A"}, "参数错误: cur_url 必须是 http 或 https 页面地址"),
        ({"cur_url": PAGE + "&x=" + "a" * 2048}, "参数错误: cur_url 不能超过 2048 个字符"),
    ],
)
async def test_bad_cur_url(wx_client, wechat, wx_token, data, msg):
    resp = await wx_client.post(URL, data=data, headers={"token": wx_token})
    assert resp.status == 400
    assert await resp.json() == {"msg": msg, "error_code": 99999, "request_url": URL}
    assert wechat.calls[TOKEN_PATH] == 0 and wechat.calls[TICKET_PATH] == 0


async def test_needs_login(wx_client, wechat):
    resp = await wx_client.post(URL, data={"cur_url": PAGE})
    assert resp.status == 401
    assert (await resp.json())["error_code"] == 10003
    assert wechat.calls[TOKEN_PATH] == 0


@pytest.mark.parametrize(("path", "mode"), [(TOKEN_PATH, -1), (TOKEN_PATH, HTTP_500), (TICKET_PATH, 45009)])
async def test_wechat_failure(wx_client, wechat, wx_token, redis_sync, settings, path, mode):
    wechat.fail(path, mode)
    resp = await wxconfig(wx_client, wx_token)
    assert resp.status == 502
    body = await resp.json()
    assert body["error_code"] == 50000 and body["request_url"] == URL
    assert cached(redis_sync, settings, wechat.appid, "jsapi_ticket") is None
    # The failure is not sticky: the next request fetches what is missing.
    resp = await wxconfig(wx_client, wx_token)
    assert resp.status == 200
    assert (await resp.json())["signature"] == sha1_of(wechat.tickets[-1], await resp.json())


async def test_token_and_ticket_cached(wx_client, wechat, wx_token, redis_sync, settings):
    for _ in range(5):
        assert (await wxconfig(wx_client, wx_token)).status == 200
    assert wechat.calls[TOKEN_PATH] == 1 and wechat.calls[TICKET_PATH] == 1
    token = cached(redis_sync, settings, wechat.appid, "access_token")
    ticket = cached(redis_sync, settings, wechat.appid, "jsapi_ticket")
    assert token["value"] == wechat.current_token and ticket["value"] == wechat.tickets[0]
    for entry in (token, ticket):
        assert 7000 < entry["expires_at"] - time.time() <= 7200
    assert 0 < redis_sync.ttl(rkey(settings, "wechat", wechat.appid, "jsapi_ticket")) <= 7200


async def test_two_processes_fetch_once(make_client, wechat, wx_token):
    # Two app instances sharing Redis, as two worker processes would.
    first = await make_client(**settings_for(wechat))
    second = await make_client(**settings_for(wechat))
    wechat.token_delay = 0.2
    answers = await asyncio.gather(*(wxconfig(c, wx_token) for c in (first, second) * 5))
    assert [r.status for r in answers] == [200] * 10
    assert wechat.calls[TOKEN_PATH] == 1 and wechat.calls[TICKET_PATH] == 1
    for resp in answers:
        assert (await resp.json())["signature"] == sha1_of(wechat.tickets[0], await resp.json())


async def test_ticket_refreshed_before_expiry(wx_client, wechat, wx_token, redis_sync, settings):
    assert (await wxconfig(wx_client, wx_token)).status == 200
    key = rkey(settings, "wechat", wechat.appid, "jsapi_ticket")
    redis_sync.set(key, json.dumps({"value": wechat.tickets[0], "expires_at": time.time() + 100}))
    resp = await wxconfig(wx_client, wx_token)
    assert resp.status == 200
    assert wechat.calls[TOKEN_PATH] == 1 and wechat.calls[TICKET_PATH] == 2
    assert (await resp.json())["signature"] == sha1_of(wechat.tickets[1], await resp.json())
    assert cached(redis_sync, settings, wechat.appid, "jsapi_ticket")["value"] == wechat.tickets[1]


async def test_old_ticket_serves_while_another_process_refreshes(wx_client, wechat, wx_token, redis_sync, settings):
    redis_sync.set(rkey(settings, "wechat", wechat.appid, "jsapi_ticket"),
                   json.dumps({"value": "OLD-TICKET", "expires_at": time.time() + 100}))
    redis_sync.set(rkey(settings, "wechat", wechat.appid, "jsapi_ticket:lock"), "another-process", px=10_000)
    resp = await wxconfig(wx_client, wx_token)
    assert resp.status == 200
    assert (await resp.json())["signature"] == sha1_of("OLD-TICKET", await resp.json())
    assert wechat.calls[TOKEN_PATH] == 0 and wechat.calls[TICKET_PATH] == 0


async def test_rotated_token_refreshed_once(wx_client, wechat, wx_token, redis_sync, settings):
    # A token cached here but replaced at WeChat (e.g. fetched by another tool): getticket says 40001.
    redis_sync.set(rkey(settings, "wechat", wechat.appid, "access_token"),
                   json.dumps({"value": "AT_rotated", "expires_at": time.time() + 3600}))
    resp = await wxconfig(wx_client, wx_token)
    assert resp.status == 200
    assert wechat.calls[TOKEN_PATH] == 1 and wechat.calls[TICKET_PATH] == 2
    assert (await resp.json())["signature"] == sha1_of(wechat.tickets[0], await resp.json())
    assert cached(redis_sync, settings, wechat.appid, "access_token")["value"] == wechat.current_token


async def test_token_expired_at_wechat_is_fetched_again(wx_client, wechat, wx_token, redis_sync, settings):
    assert (await wxconfig(wx_client, wx_token)).status == 200
    first = wechat.current_token
    # Two hours pass at WeChat, where the token expires (42001), while ours still has a minute to live
    # (clocks differ); the ticket is due for its refresh.
    wechat.advance(7200)
    redis_sync.set(rkey(settings, "wechat", wechat.appid, "access_token"),
                   json.dumps({"value": first, "expires_at": time.time() + 360}))
    redis_sync.set(rkey(settings, "wechat", wechat.appid, "jsapi_ticket"),
                   json.dumps({"value": wechat.tickets[0], "expires_at": time.time() + 100}))
    resp = await wxconfig(wx_client, wx_token)
    assert resp.status == 200
    assert wechat.calls[TOKEN_PATH] == 2 and wechat.calls[TICKET_PATH] == 3 and wechat.current_token != first
    assert (await resp.json())["signature"] == sha1_of(wechat.tickets[1], await resp.json())
    assert cached(redis_sync, settings, wechat.appid, "access_token")["value"] == wechat.current_token


async def test_token_rejected_twice_gives_up(wx_client, wechat, wx_token, redis_sync, settings):
    wechat.fail(TICKET_PATH, 40001, times=2)
    resp = await wxconfig(wx_client, wx_token)
    assert resp.status == 502
    assert (await resp.json())["error_code"] == 50000
    assert wechat.calls[TOKEN_PATH] == 2 and wechat.calls[TICKET_PATH] == 2
    assert cached(redis_sync, settings, wechat.appid, "jsapi_ticket") is None


async def test_dev_mode(client, token):
    resp = await wxconfig(client, token, PAGE + "#x")
    assert resp.status == 200
    body = await resp.json()
    assert body["appId"] == "" and body["url"] == PAGE
    assert body["signature"] == sha1_of("dev-jsapi-ticket", body)
