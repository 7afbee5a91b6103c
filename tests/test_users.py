from tests.conftest import login


async def test_user_info_requires_token(client):
    resp = await client.get("/api/v1/user/info")
    assert resp.status == 401
    assert await resp.json() == {
        "msg": "Token已过期或无效Token",
        "error_code": 10003,
        "request_url": "/api/v1/user/info",
    }


async def test_user_info_unknown_token(client):
    resp = await client.get("/api/v1/user/info", headers={"token": "0" * 32})
    assert resp.status == 401
    assert (await resp.json())["error_code"] == 10003


async def test_dev_login_then_user_info(client, sql):
    token = await login(client, "alice-code")
    assert len(token) == 32 and token == token.lower()
    resp = await client.get("/api/v1/user/info", headers={"token": token})
    assert resp.status == 200
    body = await resp.json()
    assert body["username"] == "dev-alice-code"
    assert body["mobile"] == "" and body["sex"] == "保密" and body["sex_value"] == 0
    assert body["member_status"] == 0 and body["is_member"] == 0 and body["member_expire_time"] == ""
    again = await login(client, "alice-code")
    assert again != token
    assert len(sql("SELECT id FROM users")) == 1
