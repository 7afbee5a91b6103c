from tests.helpers.api import login

FEEDS = "/api/v1/feeds"


async def assert_param_error(resp):
    assert resp.status == 400, await resp.text()
    body = await resp.json()
    assert body["error_code"] == 99999 and body["request_url"] == FEEDS
    return body


def feedback_rows(sql):
    return sql("SELECT user_id, type, phone, title, content FROM feedback ORDER BY id")


async def test_feedback_stored(client, token, sql):
    form = {"type": "2", "phone": "+86-13800138000", "title": " 场地 ", "content": "灯光太暗\n请修"}
    resp = await client.post(FEEDS, data=form, headers={"token": token})
    assert resp.status == 200
    assert await resp.json() == {"msg": "success", "error_code": 0, "request_url": FEEDS}
    (user,) = sql("SELECT id FROM users")
    assert feedback_rows(sql) == [
        {"user_id": user["id"], "type": 2, "phone": "+86-13800138000", "title": "场地", "content": "灯光太暗\n请修"}
    ]


async def test_feedback_defaults(client, token, sql):
    resp = await client.post(FEEDS, json={"content": "建议增加夜场"}, headers={"token": token})
    assert resp.status == 200
    (row,) = feedback_rows(sql)
    assert row["type"] == 1 and row["phone"] == "" and row["title"] == "" and row["content"] == "建议增加夜场"


async def test_feedback_limits_are_inclusive(client, token, sql):
    form = {"content": "字" * 2000, "title": "题" * 100, "phone": "1" * 20, "type": "3"}
    assert (await client.post(FEEDS, data=form, headers={"token": token})).status == 200
    (row,) = feedback_rows(sql)
    assert len(row["content"]) == 2000 and len(row["title"]) == 100 and row["type"] == 3


async def test_feedback_invalid_input(client, token, sql):
    bad = [
        {},
        {"content": "   "},
        {"content": "字" * 2001},
        {"content": "ok", "type": "4"},
        {"content": "ok", "type": "0"},
        {"content": "ok", "type": "建议"},
        {"content": "ok", "phone": "call me"},
        {"content": "ok", "phone": "1" * 21},
        {"content": "ok", "title": "题" * 101},
        {"content": "a\x00b"},
    ]
    for form in bad:
        await assert_param_error(await client.post(FEEDS, data=form, headers={"token": token}))
    assert feedback_rows(sql) == []


async def test_feedback_requires_token(client, sql):
    resp = await client.post(FEEDS, data={"content": "hi"})
    assert resp.status == 401
    assert (await resp.json())["error_code"] == 10003
    assert feedback_rows(sql) == []


async def test_feedback_rate_limit(client, token, sql, settings, redis_sync):
    # Invalid submissions are rejected before they are counted.
    for _ in range(3):
        await assert_param_error(await client.post(FEEDS, data={}, headers={"token": token}))
    for i in range(5):
        resp = await client.post(FEEDS, data={"content": f"第{i}条"}, headers={"token": token})
        assert resp.status == 200
    resp = await client.post(FEEDS, data={"content": "第6条"}, headers={"token": token})
    assert resp.status == 429
    assert await resp.json() == {"msg": "提交过于频繁", "error_code": 10010, "request_url": FEEDS}
    assert len(feedback_rows(sql)) == 5
    (user,) = sql("SELECT id FROM users")
    key = f"{settings.redis_prefix}feedback_rate:{user['id']}"
    assert 0 < redis_sync.ttl(key) <= 600
    # The limit is per user.
    other = await login(client, "someone-else")
    assert (await client.post(FEEDS, data={"content": "我的第一条"}, headers={"token": other})).status == 200
    # When the window ends the user may submit again.
    redis_sync.delete(key)
    assert (await client.post(FEEDS, data={"content": "又一条"}, headers={"token": token})).status == 200
    assert len(feedback_rows(sql)) == 7
