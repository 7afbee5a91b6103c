"""Parameter specs (jiandong.web.fields): what they read, what they refuse, what they document."""

import pytest
from aiohttp import web

from jiandong.keys import settings_key
from jiandong.web.fields import Int, Paged, PathId, Spec, Text
from jiandong.web.middlewares import error_middleware
from jiandong.web.openapi import build_spec, describe
from jiandong.web.params import MAX_ID


class Sample(Paged):
    id = Int("编号", minimum=1, maximum=MAX_ID)
    keyword = Text("关键词", max_length=5)
    title = Text("标题", required=True)


class ByPath(Spec):
    id = PathId("编号")


@describe("样例", tag="样例", params=Sample, public=True)
async def sample(request: web.Request) -> web.Response:
    p = await Sample.read(request)
    return web.json_response({"id": p.id, "keyword": p.keyword, "title": p.title, "page": p.page, "size": p.size})


@describe("按路径", tag="样例", params=ByPath, public=True)
async def by_path(request: web.Request) -> web.Response:
    return web.json_response({})


@pytest.fixture
async def tiny(aiohttp_client, settings):
    app = web.Application(middlewares=[error_middleware])
    app[settings_key] = settings
    app.router.add_post("/api/sample", sample)
    app.router.add_get(r"/api/sample/{id:\d+}", by_path)
    return await aiohttp_client(app)


async def test_values_come_typed_with_defaults(tiny):
    resp = await tiny.post("/api/sample", data={"id": "7", "title": " 标题 "})
    assert resp.status == 200
    assert await resp.json() == {"id": 7, "keyword": "", "title": "标题", "page": 1, "size": 30}


async def test_json_body_and_query_are_read_alike(tiny):
    resp = await tiny.post("/api/sample?page=2&size=5", json={"id": 3, "title": "t", "keyword": "ab"})
    assert await resp.json() == {"id": 3, "keyword": "ab", "title": "t", "page": 2, "size": 5}


@pytest.mark.parametrize(
    ("data", "msg"),
    [
        ({"title": "t"}, "参数错误: id 不能为空"),
        ({"id": "x", "title": "t"}, "参数错误: id 必须是整数"),
        ({"id": "0", "title": "t"}, "参数错误: id 超出范围"),
        ({"id": str(MAX_ID + 1), "title": "t"}, "参数错误: id 超出范围"),
        ({"id": "1"}, "参数错误: title 不能为空"),
        ({"id": "1", "title": "  "}, "参数错误: title 不能为空"),
        ({"id": "1", "title": "t", "keyword": "abcdef"}, "参数错误: keyword 不能超过 5 个字符"),
        ({"id": "1", "title": "a\x00b"}, "参数错误: title 含有非法字符"),
        ({"id": "1", "title": "t", "size": "101"}, "参数错误: size 超出范围"),
        ({"id": "1", "title": "t", "page": "0"}, "参数错误: page 超出范围"),
    ],
)
async def test_refusals_are_parameter_errors(tiny, data, msg):
    resp = await tiny.post("/api/sample", data=data)
    assert resp.status == 400
    body = await resp.json()
    assert (body["error_code"], body["msg"]) == (99999, msg)


def test_take_checks_an_already_parsed_mapping():
    p = Sample.take({"id": "9", "title": "x"})
    assert (p.id, p.title, p.keyword, p.page, p.size) == (9, "x", "", 1, 30)


async def test_document_comes_from_the_spec(tiny):
    spec = build_spec(tiny.server.app)
    op = spec["paths"]["/api/sample"]["post"]
    query = {p["name"]: p for p in op["parameters"]}
    assert query["page"]["schema"] == {"type": "integer", "minimum": 1, "maximum": 1_000_000}
    assert query["size"]["required"] is False
    body = op["requestBody"]["content"]["application/json"]["schema"]
    assert body["required"] == ["id", "title"]
    assert body["properties"]["id"]["maximum"] == MAX_ID
    assert body["properties"]["keyword"]["maxLength"] == 5
    path = spec["paths"]["/api/sample/{id}"]["get"]["parameters"]
    assert path == [
        {"name": "id", "in": "path", "required": True, "description": "编号", "schema": {"type": "integer"}}
    ]
