from tests.helpers.api import login

ALLOWED = "https://h5.club.example"
OTHER = "https://evil.example"


def preflight_headers(origin):
    return {
        "Origin": origin,
        "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "token",
    }


def cors_headers(resp):
    return {k: v for k, v in resp.headers.items() if k.lower().startswith("access-control-")}


async def test_preflight_lets_the_token_header_through(make_client):
    client = await make_client(cors_origins=(ALLOWED,))
    resp = await client.options("/api/v1/user/info", headers=preflight_headers(ALLOWED))
    assert resp.status == 204
    assert resp.headers["Access-Control-Allow-Origin"] == ALLOWED
    allowed_headers = [h.strip().lower() for h in resp.headers["Access-Control-Allow-Headers"].split(",")]
    assert "token" in allowed_headers and "content-type" in allowed_headers
    assert "GET" in resp.headers["Access-Control-Allow-Methods"]
    assert "POST" in resp.headers["Access-Control-Allow-Methods"]
    assert resp.headers["Vary"] == "Origin"
    assert await resp.read() == b""


async def test_disallowed_origin_gets_no_cors_headers(make_client):
    client = await make_client(cors_origins=(ALLOWED,))
    resp = await client.options("/api/v1/user/info", headers=preflight_headers(OTHER))
    assert resp.status == 405
    assert cors_headers(resp) == {}
    assert (await resp.json())["error_code"] == 10000
    token = await login(client)
    resp = await client.get("/api/v1/user/info", headers={"Origin": OTHER, "token": token})
    # CORS is the browser's guard: the server still answers, just without granting the origin.
    assert resp.status == 200
    assert cors_headers(resp) == {}


async def test_no_cors_when_not_configured(client):
    resp = await client.options("/api/v1/user/info", headers=preflight_headers(ALLOWED))
    assert resp.status == 405
    assert cors_headers(resp) == {}


async def test_allowed_origin_on_success_and_on_errors(make_client):
    client = await make_client(cors_origins=(OTHER, ALLOWED))
    token = await login(client)
    resp = await client.get("/api/v1/user/info", headers={"Origin": ALLOWED, "token": token})
    assert resp.status == 200
    assert resp.headers["Access-Control-Allow-Origin"] == ALLOWED
    assert resp.headers["Access-Control-Expose-Headers"] == "X-Request-Id"
    assert (await resp.json())["username"] == "dev-dev-code-1"
    # The pages read error_code from the 401 body, so the error must be readable cross-origin too.
    resp = await client.get("/api/v1/user/info", headers={"Origin": ALLOWED})
    assert resp.status == 401
    assert resp.headers["Access-Control-Allow-Origin"] == ALLOWED
    assert (await resp.json())["error_code"] == 10003
    resp = await client.get("/api/v1/no/such/route", headers={"Origin": ALLOWED, "token": token})
    assert resp.status == 404
    assert resp.headers["Access-Control-Allow-Origin"] == ALLOWED


async def test_wildcard_origin(make_client):
    client = await make_client(cors_origins=("*",))
    resp = await client.options("/api/v1/token/user", headers=preflight_headers(OTHER))
    assert resp.status == 204
    assert resp.headers["Access-Control-Allow-Origin"] == "*"
    resp = await client.post("/api/v1/token/user", data={"code": "x"}, headers={"Origin": OTHER})
    assert resp.status == 200
    assert resp.headers["Access-Control-Allow-Origin"] == "*"
