import io
import logging
import re

from jiandong.app import create_app
from jiandong.web.auth import public

REQUEST_ID = re.compile(r"^[0-9a-f]{16}$")


async def test_unknown_api_route_is_a_json_404(client):
    # No token: an unknown route is a 404, not a 401.
    resp = await client.get("/api/v1/no/such/thing")
    assert resp.status == 404
    assert resp.content_type == "application/json"
    assert await resp.json() == {"msg": "接口不存在", "error_code": 10000, "request_url": "/api/v1/no/such/thing"}
    assert REQUEST_ID.match(resp.headers["X-Request-Id"])


async def test_wrong_method_is_a_json_405(client):
    resp = await client.delete("/api/v1/user/info")
    assert resp.status == 405
    assert await resp.json() == {"msg": "请求方法不允许", "error_code": 10000, "request_url": "/api/v1/user/info"}
    assert "GET" in resp.headers["Allow"]
    assert REQUEST_ID.match(resp.headers["X-Request-Id"])


async def test_unexpected_exception_is_a_bare_500(aiohttp_client, settings, caplog):
    app = create_app(settings)

    @public
    async def explode(request):
        raise RuntimeError("password=hunter2 in SELECT * FROM users")

    app.router.add_get("/api/v1/test/explode", explode)
    client = await aiohttp_client(app)
    with caplog.at_level(logging.ERROR, logger="jiandong.web.middlewares"):
        resp = await client.get("/api/v1/test/explode")
    assert resp.status == 500
    text = await resp.text()
    assert await resp.json() == {"msg": "服务器内部错误", "error_code": 10000, "request_url": "/api/v1/test/explode"}
    for leak in ("hunter2", "SELECT", "Traceback", "RuntimeError"):
        assert leak not in text
    request_id = resp.headers["X-Request-Id"]
    assert REQUEST_ID.match(request_id)
    records = [r for r in caplog.records if r.name == "jiandong.web.middlewares"]
    assert len(records) == 1
    assert request_id in records[0].getMessage()
    assert records[0].exc_info is not None and "hunter2" in str(records[0].exc_info[1])


async def test_answers_aiohttp_makes_and_preflights_carry_a_request_id_too(client):
    """A page outside /api/ that no route has, a method a path outside /api/ does not take, and a CORS
    preflight: each carries the id its access line has."""
    answers = [await client.get("/no/such/page/1"), await client.post("/healthz"),
               await client.options("/api/v1/user/info", headers={"Origin": "https://h5.example.com",
                                                                  "Access-Control-Request-Method": "GET"})]
    assert [resp.status for resp in answers][:2] == [404, 405]
    for resp in answers:
        assert REQUEST_ID.match(resp.headers.get("X-Request-Id", "")), resp.status
    assert len({resp.headers["X-Request-Id"] for resp in answers}) == 3


async def test_success_carries_a_request_id(client):
    first = await client.post("/api/v1/token/user", data={"code": "a"})
    second = await client.post("/api/v1/token/user", data={"code": "a"})
    assert first.status == second.status == 200
    assert REQUEST_ID.match(first.headers["X-Request-Id"])
    assert first.headers["X-Request-Id"] != second.headers["X-Request-Id"]


async def test_malformed_json_body_is_99999(client, sql):
    resp = await client.post(
        "/api/v1/token/user", data=b'{"code": "abc"', headers={"Content-Type": "application/json"}
    )
    assert resp.status == 400
    body = await resp.json()
    assert body["error_code"] == 99999 and body["request_url"] == "/api/v1/token/user"
    assert "JSON" in body["msg"]
    resp = await client.post("/api/v1/token/user", data=b'["abc"]', headers={"Content-Type": "application/json"})
    assert resp.status == 400 and (await resp.json())["error_code"] == 99999
    assert sql("SELECT id FROM users") == []


async def test_oversized_body_is_413_99999(client, sql):
    body = io.BytesIO(b"code=" + b"x" * (5 * 1024 * 1024))
    resp = await client.post(
        "/api/v1/token/user", data=body, headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert resp.status == 413
    assert await resp.json() == {
        "msg": "参数错误: 请求体过大",
        "error_code": 99999,
        "request_url": "/api/v1/token/user",
    }
    assert sql("SELECT id FROM users") == []
