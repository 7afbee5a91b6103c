"""Request parsing shared by every endpoint: bodies, arrays, limits."""

import io

import aiohttp

from tests.conftest import login


async def test_multipart_body_over_the_limit_is_refused(client):
    token = await login(client)
    form = aiohttp.FormData()
    form.add_field("content", "hello")
    form.add_field(
        "file", io.BytesIO(b"x" * (5 * 1024 * 1024)), filename="big.bin", content_type="application/octet-stream"
    )
    resp = await client.post("/api/v1/feeds", data=form, headers={"token": token})
    assert resp.status == 413
    assert (await resp.json())["error_code"] == 99999


async def test_nul_character_is_a_parameter_error(client, sql):
    token = await login(client)
    resp = await client.post("/api/v1/feeds", data={"content": "a\x00b"}, headers={"token": token})
    assert resp.status == 400
    assert (await resp.json())["error_code"] == 99999
    assert sql("SELECT count(*) AS n FROM feedback") == [{"n": 0}]


async def test_form_json_and_multipart_bodies_are_read_alike(client, sql):
    token = await login(client)
    headers = {"token": token}
    form = aiohttp.FormData()
    form.add_field("content", "三")
    for resp in (
        await client.post("/api/v1/feeds", data={"content": "一"}, headers=headers),
        await client.post("/api/v1/feeds", json={"content": "二"}, headers=headers),
        await client.post("/api/v1/feeds", data=form, headers=headers),
        await client.post("/api/v1/feeds?content=四", headers=headers),
    ):
        assert resp.status == 200, await resp.text()
    assert [r["content"] for r in sql("SELECT content FROM feedback ORDER BY id")] == ["一", "二", "三", "四"]
