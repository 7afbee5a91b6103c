"""Parameter specs (jiandong.web.fields): what they read, what they refuse, what they document."""

import datetime as dt

import pytest
from aiohttp import FormData, web

from jiandong.errors import ParameterError
from jiandong.keys import settings_key
from jiandong.web.fields import (
    Int,
    Listed,
    Many,
    MaybeInt,
    Outside,
    Paged,
    PathId,
    Spec,
    Text,
    TextOrFile,
    Tokens,
    UnixTime,
)
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
    return web.json_response({"id": (await ByPath.read(request)).id})


def shout(value: str) -> str:
    if value.islower():
        raise ParameterError("参数错误: name 必须大写")
    return value + "!"


class Kinds(Spec):
    kind = Int("种类", one_of=(1, 2), refusal="参数错误: kind 只能是 1 或 2")
    team = MaybeInt("球队", minimum=1, maximum=9)
    side = MaybeInt("方向", one_of=(1, 2), refusal="参数错误: side 只能是 1 或 2")
    name = Text("名字", check=shout)
    codes = Many("编码", max_items=3, max_length=4)
    avatar = TextOrFile("头像")


@describe("种类", tag="样例", params=Kinds, public=True)
async def kinds(request: web.Request) -> web.Response:
    p = await Kinds.read(request)
    avatar = p.avatar if isinstance(p.avatar, str) else {"file": p.avatar.filename, "size": len(p.avatar.data)}
    return web.json_response(
        {
            "kind": p.kind,
            "team": p.team,
            "side": p.side,
            "name": p.name,
            "codes": p.codes.values,
            "array": p.codes.array,
            "avatar": avatar,
        }
    )


class Callback(Spec):
    action = Outside("动作")
    client_id = Outside("会话", numbers=True)
    time = UnixTime("时间")
    token = Tokens("密钥")


@pytest.fixture
async def tiny(aiohttp_client, settings):
    app = web.Application(middlewares=[error_middleware])
    app[settings_key] = settings
    app.router.add_post("/api/sample", sample)
    app.router.add_get(r"/api/sample/{id:\d+}", by_path)
    app.router.add_post("/api/kinds", kinds)
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


async def test_path_id_is_read_from_the_url_without_reading_the_body(tiny):
    resp = await tiny.get("/api/sample/42")
    assert await resp.json() == {"id": 42}
    # A spec of path ids alone reads no body: one that is no JSON changes nothing.
    resp = await tiny.get(f"/api/sample/{2**64}", data=b"{", headers={"Content-Type": "application/json"})
    assert (resp.status, await resp.json()) == (200, {"id": 2**64})


async def test_kinds_come_typed(tiny):
    resp = await tiny.post("/api/kinds", data={"kind": "2", "name": "Ab", "codes": "x"})
    assert await resp.json() == {
        "kind": 2,
        "team": None,
        "side": None,
        "name": "Ab!",
        "codes": ["x"],
        "array": False,
        "avatar": "",
    }
    resp = await tiny.post(
        "/api/kinds", json={"kind": 1, "team": 9, "side": "", "codes": [" a", "b", "a"], "avatar": " http://x "}
    )
    assert await resp.json() == {
        "kind": 1,
        "team": 9,
        "side": None,
        "name": "",
        "codes": ["a", "b"],
        "array": True,
        "avatar": "http://x",
    }
    resp = await tiny.post("/api/kinds?codes[]=q", data={"kind": "1", "side": "2"})
    assert (await resp.json())["codes"] == ["q"] and (await resp.json())["array"] is True
    assert (await resp.json())["side"] == 2


async def test_an_uploaded_file_wins_over_text(tiny):
    form = FormData()
    form.add_field("kind", "1")
    form.add_field("codes", "c")
    form.add_field("avatar", b"\x89PNG", filename="a.png", content_type="image/png")
    resp = await tiny.post("/api/kinds?avatar=text", data=form)
    assert (await resp.json())["avatar"] == {"file": "a.png", "size": 4}


@pytest.mark.parametrize(
    ("data", "msg"),
    [
        ({"codes": "c"}, "参数错误: kind 不能为空"),
        ({"kind": "x", "codes": "c"}, "参数错误: kind 必须是整数"),
        ({"kind": "0", "codes": "c"}, "参数错误: kind 只能是 1 或 2"),
        ({"kind": "3", "codes": "c"}, "参数错误: kind 只能是 1 或 2"),
        ({"kind": "1", "team": "x", "codes": "c"}, "参数错误: team 必须是整数"),
        ({"kind": "1", "team": "10", "codes": "c"}, "参数错误: team 超出范围"),
        ({"kind": "1", "team": "0", "codes": "c"}, "参数错误: team 超出范围"),
        ({"kind": "1", "side": "3", "codes": "c"}, "参数错误: side 只能是 1 或 2"),
        ({"kind": "1", "name": "ab", "codes": "c"}, "参数错误: name 必须大写"),
        ({"kind": "1"}, "参数错误: codes 不能为空"),
        ({"kind": "1", "codes": " "}, "参数错误: codes 不能为空"),
        ({"kind": "1", "codes": ["a", ""]}, "参数错误: codes 不能为空"),
        ({"kind": "1", "codes": ["a", "b", "c", "d"]}, "参数错误: codes 最多 3 个"),
        ({"kind": "1", "codes": "abcde"}, "参数错误: codes 不合法"),
        ({"kind": "1", "codes": "a", "avatar": "a\x00"}, "参数错误: avatar 含有非法字符"),
    ],
)
async def test_kinds_refuse_as_parameter_errors(tiny, data, msg):
    resp = await tiny.post("/api/kinds", json=data)
    assert resp.status == 400
    body = await resp.json()
    assert (body["error_code"], body["msg"]) == (99999, msg)


async def test_kinds_are_documented_as_they_are_read(tiny):
    op = build_spec(tiny.server.app)["paths"]["/api/kinds"]["post"]
    body = op["requestBody"]["content"]["application/json"]["schema"]
    assert body["required"] == ["kind", "codes"]
    fields = body["properties"]
    assert fields["kind"] == {"type": "integer", "enum": [1, 2], "description": "种类"}
    assert fields["team"] == {"type": "integer", "minimum": 1, "maximum": 9, "description": "球队"}
    assert fields["side"]["enum"] == [1, 2]
    assert fields["codes"]["type"] == "string"
    assert fields["avatar"] == {"type": "string", "pattern": "^[^\\x00]*$", "description": "头像"}


def test_outside_text_is_cleaned_and_refused_only_when_not_text():
    p = Callback.take({"action": "on_\x00pub\nlish", "client_id": 7, "time": "1700000000", "token": "t"})
    assert (p.action, p.client_id, p.token) == ("on_publish", "7", ["t"])
    assert p.time == dt.datetime(2023, 11, 14, 22, 13, 20, tzinfo=dt.timezone.utc)
    p = Callback.take({})
    assert (p.action, p.client_id, p.time, p.token) == ("", "", None, [])
    assert Callback.take({"time": "soon"}).time is None
    assert Callback.take({"time": "9" * 30}).time is None
    for sent, msg in (
        ({"action": 5}, "参数错误: action 应为字符串"),
        ({"client_id": True}, "参数错误: client_id 应为字符串"),
        ({"action": ["a"]}, "参数错误: action 应为字符串"),
    ):
        with pytest.raises(ParameterError) as caught:
            Callback.take(sent)
        assert caught.value.msg == msg


def test_outside_text_is_documented_as_cleaned():
    docs = {p.name: p for p in Callback.params()}
    assert docs["action"].schema == {"type": "string", "x-cleaned": True}
    assert docs["action"].description == "动作（控制字符会被去掉）"
    assert docs["time"].schema == {"type": "integer"}
    assert docs["token"].schema == {"type": "string"}


def test_many_tells_an_array_from_one_string():
    assert Kinds.take({"kind": "1", "codes": "a"}).codes == Listed(["a"], False)
    assert Kinds.take({"kind": "1", "codes": '["a", "b"]'}).codes == Listed(["a", "b"], True)
