"""Request parsing shared by every endpoint: bodies, arrays, limits."""

import asyncio
import io
import json
import logging
import re

import aiohttp
import pytest
from yarl import URL

from tests.helpers.api import login


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


LOGIN = "/api/v1/token/user"
BOUNDARY = "xYzZY"


def multipart(*parts: bytes, end: bool = True) -> bytes:
    body = b"".join(b"--" + BOUNDARY.encode() + b"\r\n" + part + b"\r\n" for part in parts)
    return body + (b"--" + BOUNDARY.encode() + b"--\r\n" if end else b"")


MALFORMED_BODIES = {
    # curl -H 'Content-Type: multipart/form-data' -d code=x: a form body labelled multipart, no boundary
    "multipart without a boundary": ("multipart/form-data", b"code=x"),
    "multipart with a control character in a part header": (
        f"multipart/form-data; boundary={BOUNDARY}",
        multipart(b'Content-Disposition: form-data; name="code"\x01\r\n\r\nx'),
    ),
    "multipart cut off in the middle": (
        f"multipart/form-data; boundary={BOUNDARY}",
        multipart(b'Content-Disposition: form-data; name="code"\r\n\r\nabc', end=False)[:-10],
    ),
    "multipart with a part header but no body": (
        f"multipart/form-data; boundary={BOUNDARY}",
        b"--" + BOUNDARY.encode() + b"\r\nContent-Disposition: form-data; name=\"code\"\r\n",
    ),
    "form body with invalid UTF-8": ("application/x-www-form-urlencoded", b"code=\xff"),
    "form body with invalid UTF-8 percent-encoded": ("application/x-www-form-urlencoded", b"code=%ff"),
    "form body in an unknown charset": ("application/x-www-form-urlencoded; charset=no-such-charset", b"code=x"),
    "JSON body with invalid UTF-8": ("application/json", b'{"code": "\xff"}'),
    "JSON body nested too deep": ("application/json", b'{"code": ' + b"[" * 2000 + b"]" * 2000 + b"}"),
    "multipart part in an unknown charset": (
        f"multipart/form-data; boundary={BOUNDARY}",
        multipart(b'Content-Disposition: form-data; name="code"\r\nContent-Type: text/plain; charset=nope\r\n\r\nx'),
    ),
}


@pytest.mark.parametrize("case", list(MALFORMED_BODIES))
async def test_malformed_body_is_a_parameter_error(client, sql, caplog, case):
    content_type, body = MALFORMED_BODIES[case]
    resp = await client.post(LOGIN, data=body, headers={"Content-Type": content_type})
    assert resp.status == 400, await resp.text()
    answer = await resp.json()
    assert answer["error_code"] == 99999 and answer["request_url"] == LOGIN
    assert sql("SELECT id FROM users") == []
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_body_of_another_type_is_415(client, sql):
    for content_type in ("text/plain", "application/octet-stream", "text/xml"):
        resp = await client.post(LOGIN, data=b"code=x", headers={"Content-Type": content_type})
        assert resp.status == 415, content_type
        assert await resp.json() == {
            "msg": "参数错误: 请求体类型不支持，请用表单、JSON 或 multipart",
            "error_code": 99999,
            "request_url": LOGIN,
        }
    assert sql("SELECT id FROM users") == []


async def test_body_over_the_route_limit_is_refused_by_its_length(client, sql):
    # 100 KiB is over the 64 KiB of a plain form route, far under the upload limit of user/save.
    big = b"code=" + b"x" * (100 * 1024)
    resp = await client.post(LOGIN, data=big, headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert resp.status == 413 and (await resp.json())["error_code"] == 99999
    assert resp.headers.get("Connection", "").lower() == "close"
    assert sql("SELECT id FROM users") == []


async def test_body_without_a_length_is_counted_as_it_arrives(client, sql):
    async def chunks():
        yield b"code="
        for _ in range(100):
            yield b"x" * 1024

    resp = await client.post(LOGIN, data=chunks(), headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert resp.status == 413 and (await resp.json())["error_code"] == 99999
    assert sql("SELECT id FROM users") == []


@pytest.mark.parametrize("target", ["/h5/%00", "/h5/a%00b/index.html", "/media/%00", "/api/v1/user/info?x=%00"])
async def test_nul_in_the_path_or_query_is_a_parameter_error(make_client, tmp_path, target):
    (tmp_path / "h5").mkdir()
    client = await make_client(h5_dir=str(tmp_path / "h5"))
    resp = await client.get(URL(target, encoded=True))
    assert resp.status == 400
    assert (await resp.json())["error_code"] == 99999


async def test_body_that_does_not_arrive_is_408(make_client, sql):
    client = await make_client(body_timeout=0.2)
    reader, writer = await asyncio.open_connection(client.host, client.port)
    writer.write(
        b"POST /api/v1/token/user HTTP/1.1\r\nHost: localhost\r\n"
        b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\ncode=abc"
    )
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    length = int(re.search(rb"Content-Length: (\d+)", head).group(1))
    body = await reader.readexactly(length)
    writer.close()
    assert head.startswith(b"HTTP/1.1 408 ") and b"Connection: close" in head
    assert json.loads(body) == {"msg": "参数错误: 请求体接收超时", "error_code": 99999, "request_url": LOGIN}
    assert sql("SELECT id FROM users") == []


async def test_json_numbers_that_are_integers_read_as_integers(client):
    token = await login(client)
    # The JSON number 3.0 is the integer 3 (as in JSON Schema); an array where one value is expected is refused.
    resp = await client.post("/api/v1/feeds", json={"content": "x", "type": 3.0}, headers={"token": token})
    assert resp.status == 200, await resp.text()
    # Text is another matter: "2.0" in a form is no integer.
    for text in ("2.0", "2.5"):
        resp = await client.post("/api/v1/feeds", data={"content": "x", "type": text}, headers={"token": token})
        assert resp.status == 400
    resp = await client.post("/api/v1/feeds", json={"content": ["x", "y"]}, headers={"token": token})
    assert resp.status == 400 and (await resp.json())["msg"] == "参数错误: content 不能是数组"


@pytest.mark.parametrize("value", [{}, {"a": 1}, None, False], ids=["object", "filled object", "null", "boolean"])
async def test_a_json_value_that_is_no_text_or_number_is_refused_where_it_is_read(client, sql, value):
    """Schema fuzzing found {"code": {}} logged in as the user of the code "{}" (and false as the code "0"):
    a JSON null, boolean, object or nested array stands for no text, so the handler that reads it answers 400."""
    resp = await client.post(LOGIN, json={"code": value})
    assert resp.status == 400
    assert await resp.json() == {"msg": "参数错误: code 必须是字符串或数字", "error_code": 99999, "request_url": LOGIN}
    assert sql("SELECT id FROM users") == []
    token = await login(client)
    resp = await client.post("/api/v1/competition/live?page=1&size=1", json={"competition_id": value},
                             headers={"token": token})
    assert resp.status == 400
    assert (await resp.json())["msg"] == "参数错误: competition_id 必须是字符串或数字"
    # A key no handler reads costs nothing.
    resp = await client.post("/api/v1/competition/live?page=1&size=1", json={"extra": value}, headers={"token": token})
    assert resp.status == 200


async def test_a_json_array_of_no_text_is_refused(client, sql):
    token = await login(client)
    for value in ([None], [{}], [[1]]):
        resp = await client.post("/api/v1/config/value", json={"code": value}, headers={"token": token})
        assert resp.status == 400
        assert (await resp.json())["msg"] == "参数错误: code 必须是字符串或数字"
