"""Endpoint 1 (token/user): WeChat OAuth login against the fake WeChat server, and dev logins."""

import asyncio
import logging
import uuid

import pytest

from jiandong.keys import tokens_key
from jiandong.store.kv import rkey
from tests.fakes.wechat import CODE_PATH, HTTP_500, NOT_JSON, SLOW, USERINFO_PATH, FakeWeChat, serve, settings_for
from tests.helpers.api import login
from tests.helpers.waiting import until

URL = "/api/v1/token/user"
HEAD = "https://thirdwx.qlogo.cn/mmopen/vi_32/abc/132"


@pytest.fixture
async def wechat(aiohttp_server):
    return await serve(aiohttp_server, FakeWeChat())


@pytest.fixture
async def wx_client(make_client, wechat):
    return await make_client(**settings_for(wechat))


def error(status_code, msg):
    return {"msg": msg, "error_code": status_code, "request_url": URL}


def our_log(caplog):
    """What our code logged (the fake's own access log shows its query strings, secrets included)."""
    return "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("jiandong"))


def token_keys(redis_sync, settings):
    return set(redis_sync.scan_iter(match=rkey(settings, "token", "*")))


async def test_login_creates_user_from_userinfo(wx_client, wechat, sql, redis_sync, settings):
    wechat.add_code("c1", "o-alice", nickname="张三", headimgurl=HEAD, sex=1, country="CN", province="广东",
                    city="深圳", unionid="u-alice")
    resp = await wx_client.post(URL, data={"code": "c1"})
    assert resp.status == 200
    body = await resp.json()
    assert list(body) == ["token"] and len(body["token"]) == 32
    [user] = sql("SELECT * FROM users")
    assert (user["openid"], user["unionid"], user["username"], user["head_img"], user["sex"]) == (
        "o-alice", "u-alice", "张三", HEAD, 1)
    assert (user["country"], user["province"], user["city"]) == ("CN", "广东", "深圳")
    assert user["register_time"] is not None and user["last_login_time"] is not None
    assert redis_sync.get(rkey(settings, "token", body["token"])) == str(user["id"])
    assert wechat.calls[CODE_PATH] == 1 and wechat.calls[USERINFO_PATH] == 1
    info = await wx_client.get("/api/v1/user/info", headers={"token": body["token"]})
    assert info.status == 200
    assert (await info.json())["username"] == "张三"


async def test_second_login_keeps_an_edited_profile(wx_client, wechat, sql):
    wechat.add_code("c1", "o-alice", nickname="张三", headimgurl=HEAD)
    await login(wx_client, "c1")
    sql("UPDATE users SET username = '我的名字', head_img = '/media/me.png', profile_edited = true, "
        "last_login_time = now() - interval '3 days'")
    [before] = sql("SELECT id, register_time, last_login_time FROM users")
    wechat.add_code("c2", "o-alice", nickname="张三丰", headimgurl=HEAD + "?v=2")
    await login(wx_client, "c2")
    [after] = sql("SELECT id, username, head_img, register_time, last_login_time FROM users")
    assert after["id"] == before["id"] and after["register_time"] == before["register_time"]
    assert (after["username"], after["head_img"]) == ("我的名字", "/media/me.png")
    assert after["last_login_time"] > before["last_login_time"]


async def test_second_login_refreshes_an_unedited_profile(wx_client, wechat, sql):
    wechat.add_code("c1", "o-alice", nickname="张三", headimgurl=HEAD)
    wechat.add_code("c2", "o-alice", nickname="张三丰", headimgurl="")
    await login(wx_client, "c1")
    await login(wx_client, "c2")
    # A new nickname is taken; an avatar WeChat no longer sends does not blank the stored one.
    assert sql("SELECT username, head_img FROM users") == [{"username": "张三丰", "head_img": HEAD}]


async def test_snsapi_base_login_needs_no_userinfo(wx_client, wechat, sql):
    wechat.add_code("c1", "o-silent", scope="snsapi_base")
    token = await login(wx_client, "c1")
    assert len(token) == 32
    assert sql("SELECT openid, username, head_img FROM users") == [
        {"openid": "o-silent", "username": "", "head_img": ""}]
    assert wechat.calls[CODE_PATH] == 1 and wechat.calls[USERINFO_PATH] == 0


async def test_missing_code(wx_client, wechat, sql):
    resp = await wx_client.post(URL, data={})
    assert resp.status == 400
    assert await resp.json() == error(99999, "参数错误: code 不能为空")
    assert wechat.calls[CODE_PATH] == 0 and sql("SELECT id FROM users") == []


async def test_used_code(wx_client, wechat, sql):
    wechat.add_code("c1", "o-alice", nickname="张三")
    await login(wx_client, "c1")
    resp = await wx_client.post(URL, data={"code": "c1"})
    assert resp.status == 401
    assert await resp.json() == error(10008, "授权失败: code 已被使用")
    assert len(sql("SELECT id FROM users")) == 1


async def test_invalid_code(wx_client, wechat, sql, redis_sync, settings):
    resp = await wx_client.post(URL, data={"code": "never-issued"})
    assert resp.status == 401
    assert await resp.json() == error(10008, "授权失败: code 无效或已被使用")
    assert sql("SELECT id FROM users") == [] and token_keys(redis_sync, settings) == set()


async def test_expired_code(wx_client, wechat, sql):
    # WeChat expires a code left unused for 5 minutes (reference §1.1).
    wechat.add_code("c1", "o-alice", nickname="张三")
    wechat.advance(300)
    resp = await wx_client.post(URL, data={"code": "c1"})
    assert resp.status == 401
    assert await resp.json() == error(10008, "授权失败: code 已过期，请重新授权")
    assert sql("SELECT id FROM users") == []


async def test_snapshot_page_user_is_refused(wx_client, wechat, sql):
    wechat.add_code("c1", "o-virtual", scope="snsapi_base", snapshot=True)
    resp = await wx_client.post(URL, data={"code": "c1"})
    assert resp.status == 401
    assert (await resp.json())["error_code"] == 10008
    assert sql("SELECT id FROM users") == []


@pytest.mark.parametrize(
    ("path", "mode", "msg"),
    [
        (CODE_PATH, -1, "微信服务器繁忙，请稍后再试"),
        (CODE_PATH, 45009, "微信接口调用次数已达上限，请稍后再试"),
        (CODE_PATH, 40164, "微信公众号配置错误 (errcode 40164)"),
        (CODE_PATH, 50002, "微信服务器异常 (errcode 50002)"),
        (CODE_PATH, HTTP_500, "微信服务器异常 (HTTP 500)"),
        (CODE_PATH, NOT_JSON, "微信服务器返回了无法识别的数据"),
        (USERINFO_PATH, -1, "微信服务器繁忙，请稍后再试"),
    ],
)
async def test_wechat_failures(wx_client, wechat, sql, redis_sync, settings, caplog, path, mode, msg):
    caplog.set_level(logging.DEBUG)
    wechat.add_code("c1", "o-alice", nickname="张三")
    wechat.fail(path, mode)
    resp = await wx_client.post(URL, data={"code": "c1"})
    assert resp.status == 502
    assert await resp.json() == error(50000, msg)
    assert sql("SELECT id FROM users") == [] and token_keys(redis_sync, settings) == set()
    logged = our_log(caplog)
    assert "errcode" in logged or "HTTP" in logged or "JSON" in logged
    assert wechat.secret not in logged and not any(t in logged for t in wechat.web_tokens)


@pytest.mark.parametrize(("override", "errcode"), [({"wechat_appid": "wxother"}, 40013),
                                                    ({"wechat_secret": "wrong"}, 40125)])
async def test_wrong_credentials(make_client, wechat, caplog, override, errcode):
    caplog.set_level(logging.DEBUG)
    client = await make_client(**settings_for(wechat, **override))
    wechat.add_code("c1", "o-alice")
    resp = await client.post(URL, data={"code": "c1"})
    assert resp.status == 502
    assert await resp.json() == error(50000, f"微信公众号配置错误 (errcode {errcode})")
    logged = our_log(caplog)
    assert f"errcode {errcode}" in logged
    assert "wrong" not in logged and wechat.secret not in logged


async def test_timeout(make_client, wechat, sql):
    client = await make_client(**settings_for(wechat, http_timeout=0.2))
    wechat.slow_seconds = 1.0
    wechat.add_code("c1", "o-alice")
    wechat.fail(CODE_PATH, SLOW)
    resp = await client.post(URL, data={"code": "c1"})
    assert resp.status == 502
    assert await resp.json() == error(50000, "微信服务器响应超时，请稍后再试")
    assert sql("SELECT id FROM users") == []


async def test_connection_refused(make_client, unused_tcp_port, sql):
    client = await make_client(wechat_appid="wxfake", wechat_secret="s",
                               wechat_api_url=f"http://127.0.0.1:{unused_tcp_port}")
    resp = await client.post(URL, data={"code": "c1"})
    assert resp.status == 502
    assert await resp.json() == error(50000, "无法连接微信服务器，请稍后再试")
    assert sql("SELECT id FROM users") == []


async def test_disabled_user(wx_client, wechat, sql, redis_sync, settings):
    wechat.add_code("c1", "o-alice", nickname="张三")
    wechat.add_code("c2", "o-alice", nickname="张三")
    await login(wx_client, "c1")
    sql("UPDATE users SET is_disabled = true")
    before = token_keys(redis_sync, settings)
    resp = await wx_client.post(URL, data={"code": "c2"})
    assert resp.status == 404
    assert await resp.json() == error(10004, "用户不存在或被禁用")
    assert token_keys(redis_sync, settings) == before


async def refused(client, token) -> bool:
    """Whether a token-protected endpoint answers 401 + 10003 to `token` (the pages log in again on it)."""
    resp = await client.get("/api/v1/user/info", headers={"token": token})
    if resp.status == 200:
        return False
    assert (resp.status, (await resp.json())["error_code"]) == (401, 10003)
    return True


async def test_a_token_ends_after_token_ttl(make_client, redis_sync, settings):
    client = await make_client(token_ttl=1)
    token = await login(client, "short-lived")
    [user_tokens] = redis_sync.scan_iter(match=rkey(settings, "user_tokens", "*"))
    assert 0 < redis_sync.ttl(rkey(settings, "token", token)) <= 1 and 0 < redis_sync.ttl(user_tokens) <= 1
    # Used, so this process holds a copy of it: that copy must end too.
    assert not await refused(client, token)
    await until(lambda: refused(client, token), "the token to end")
    assert token_keys(redis_sync, settings) == set()


async def test_a_token_used_in_the_last_seconds_is_served_while_redis_is_away(own_redis, make_client):
    client = await make_client(redis_url=own_redis.url, redis_timeout=0.5, redis_prefix=f"t{uuid.uuid4().hex[:8]}:")
    token = await login(client, "regular")
    assert not await refused(client, token)
    await asyncio.to_thread(own_redis.freeze)
    try:
        # The process's own copy of the token (and of user/info) answers; a token it never saw cannot be checked.
        assert not await refused(client, token)
        resp = await client.get("/api/v1/user/info", headers={"token": uuid.uuid4().hex})
        assert (resp.status, (await resp.json())["error_code"]) == (503, 10000)
    finally:
        await asyncio.to_thread(own_redis.thaw)


async def test_revoking_a_users_tokens_ends_them_in_every_process(make_client, sql, redis_sync, settings):
    # Two apps on one Redis stand for two server processes; each has used both users' tokens.
    first, second = await make_client(), await make_client()
    tokens = [await login(first, "revoked"), await login(second, "revoked"), await login(first, "kept")]
    for client in (first, second):
        for token in tokens:
            assert not await refused(client, token)
    [revoked] = sql("SELECT id FROM users WHERE username = 'dev-revoked'")
    await first.server.app[tokens_key].revoke_user(revoked["id"])
    assert await refused(first, tokens[0]) and await refused(first, tokens[1])
    assert token_keys(redis_sync, settings) == {rkey(settings, "token", tokens[2])}
    assert not redis_sync.exists(rkey(settings, "user_tokens", revoked["id"]))
    # The other process trusted its copies for a few seconds at most.
    # Each copy for its own few seconds: they were cached one after the other.
    await until(lambda: refused(second, tokens[0]), "the other process to drop the revoked token")
    await until(lambda: refused(second, tokens[1]), "the other process to drop the other revoked token")
    assert not await refused(first, tokens[2]) and not await refused(second, tokens[2])


async def test_dev_logins(client, sql):
    first = await login(client, "code-a")
    again = await login(client, "code-a")
    other = await login(client, "code-b")
    assert len({first, again, other}) == 3
    users = sql("SELECT id, openid, username FROM users ORDER BY id")
    assert [u["username"] for u in users] == ["dev-code-a", "dev-code-b"]
    for token, user in ((first, users[0]), (again, users[0]), (other, users[1])):
        resp = await client.get("/api/v1/user/info", headers={"token": token})
        assert (await resp.json())["username"] == user["username"]


async def test_control_characters_from_wechat_are_cleaned_before_storing(wx_client, wechat, sql):
    # A nickname with U+0000 used to fail every login of its user (PostgreSQL refuses NUL).
    wechat.add_code("c1", "o-alice", nickname="张\x00三\n\x7f\u2028", headimgurl=HEAD + "\x00", sex=1,
                    country="C\x00N", province="广\x1b东", city="深\x00圳")
    wechat.add_code("c2", "o-alice", nickname="张\x00三")
    for code in ("c1", "c2"):
        resp = await wx_client.post(URL, data={"code": code})
        assert resp.status == 200, await resp.text()
    [user] = sql("SELECT username, head_img, country, province, city FROM users")
    assert user == {"username": "张三", "head_img": HEAD, "country": "CN", "province": "广东", "city": "深圳"}


@pytest.mark.parametrize("avatar", ["javascript:alert(1)", "data:image/png;base64,AAAA",
                                    'https://x.example/a.png" onerror="alert(1)', "//x.example/a.png"])
async def test_an_avatar_that_is_not_an_http_url_is_not_taken(wx_client, wechat, sql, avatar):
    wechat.add_code("c1", "o-alice", nickname="张三", headimgurl=avatar)
    assert (await wx_client.post(URL, data={"code": "c1"})).status == 200
    assert sql("SELECT username, head_img FROM users") == [{"username": "张三", "head_img": ""}]
