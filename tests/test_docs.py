import re
from html import unescape
from pathlib import Path

import pytest
from aiohttp import web
from openapi_spec_validator import validate

from jiandong.api.docs import schema_fields, settings_markdown
from jiandong.errors import all_errors
from jiandong.keys import docs_cache_key
from jiandong.lib import encoding
from jiandong.web.openapi import array, integer, obj, string
from tests.helpers.api import login
from tests.helpers.realtime import FAST, frame_of, send

pytestmark = pytest.mark.usefixtures("chat_rooms")

README = Path(__file__).resolve().parent.parent / "README.md"


def api_routes(app):
    """(path, method, handler) of every /api/v1 route, as the router has them."""
    found = []
    for route in app.router.routes():
        info = route.resource.get_info()
        path = info.get("formatter") or info.get("path") or ""
        # The document itself and the base address (which leads to the docs page) are no operations.
        if path.startswith("/api/v1/") and route.method != "HEAD" and path not in ("/api/v1/openapi.json", "/api/v1/"):
            found.append((re.sub(r"\{([^}:]+):[^}]*\}", r"{\1}", path), route.method.lower(), route.handler))
    return found


async def test_openapi_is_public_valid_and_complete(client):
    resp = await client.get("/api/v1/openapi.json")
    assert resp.status == 200
    assert resp.content_type == "application/json"
    spec = await resp.json()
    validate(spec)
    assert spec["openapi"] == "3.1.0"
    assert spec["components"]["securitySchemes"]["token"] == {"type": "apiKey", "in": "header", "name": "token"}
    routes = api_routes(client.app)
    assert len(routes) >= 2
    for path, method, handler in routes:
        assert path in spec["paths"], path
        op = spec["paths"][path][method]
        assert op["summary"] and op["tags"]
        if getattr(handler, "public", False):
            assert op["security"] == [], path
        else:
            assert "401" in op["responses"], path
            assert 10003 in op["x-error-codes"], path
            assert {"error_code": 10003, "status": 401, "msg": "Token已过期或无效Token"} in op["x-errors"]
        # The description the docs show must say what the auth middleware does.
        assert handler.openapi.public == getattr(handler, "public", False), path
    documented = {(path, method) for path, item in spec["paths"].items() for method in item}
    assert documented == {(path, method) for path, method, _ in routes}
    assert "/api/v1/openapi.json" not in spec["paths"]
    assert {(e["error_code"], e["status"]) for e in spec["x-error-codes"]} == {
        (e.error_code, e.status) for e in all_errors()
    }


async def test_openapi_declares_login_and_user_info(client):
    spec = await (await client.get("/api/v1/openapi.json")).json()
    login = spec["paths"]["/api/v1/token/user"]["post"]
    assert login["security"] == []
    form = login["requestBody"]["content"]["application/x-www-form-urlencoded"]["schema"]
    assert form["required"] == ["code"]
    assert "10003" not in str(login["x-error-codes"])
    info = spec["paths"]["/api/v1/user/info"]["get"]
    fields = info["responses"]["200"]["content"]["application/json"]["schema"]["properties"]
    assert {"username", "mobile", "sex", "member_status", "member_expire_time"} <= set(fields)
    assert info["responses"]["401"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}


async def test_openapi_states_what_the_parsing_enforces(client):
    spec = await (await client.get("/api/v1/openapi.json")).json()
    login = spec["paths"]["/api/v1/token/user"]["post"]
    # Without a body the required code is missing: the body is required, and the code not blank.
    assert login["requestBody"]["required"] is True
    code = login["requestBody"]["content"]["application/json"]["schema"]["properties"]["code"]
    assert not re.search(code["pattern"], "  ") and not re.search(code["pattern"], "a\x00") and re.search(
        code["pattern"], " a ")
    # A part name with a control character makes a multipart body malformed.
    multipart = login["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert not re.search(multipart["propertyNames"]["pattern"], "a\x06")
    # Every status the shared request handling can answer, on every operation.
    for path, item in spec["paths"].items():
        for method, op in item.items():
            assert {"405", "413"} <= set(op["responses"]), (path, method)
            if any(p["in"] != "path" for p in op["parameters"]) or "requestBody" in op:
                assert {"400", "408", "415"} <= set(op["responses"]), (path, method)
            if "{" in path:
                assert 10000 in {e["error_code"] for e in op["x-errors"] if e["status"] == 404}, (path, method)
    videos = spec["paths"]["/api/v1/competition/video"]["get"]
    limits = {p["name"]: p["schema"] for p in videos["parameters"]}
    assert limits["page"]["maximum"] == 1_000_000 and limits["size"]["maximum"] == 100
    assert limits["competition_id"]["maximum"] == 2**63 - 1
    # The stream servers' callbacks take only the body type their server sends.
    srs = spec["paths"]["/api/v1/live/callback/srs"]["post"]["requestBody"]
    assert list(srs["content"]) == ["application/json"] and srs["required"] is True


async def test_openapi_built_once_per_app(client):
    first = await (await client.get("/api/v1/openapi.json")).read()
    cached = client.app[docs_cache_key]["spec"]
    second = await (await client.get("/api/v1/openapi.json")).read()
    assert first == second
    assert client.app[docs_cache_key]["spec"] is cached


async def test_docs_page_lists_every_path_and_error(client):
    spec = await (await client.get("/api/v1/openapi.json")).json()
    resp = await client.get("/Docs/jiandong.html")
    assert resp.status == 200
    assert resp.content_type == "text/html"
    html = await resp.text()
    assert html.startswith("<!DOCTYPE html>")
    for path, item in spec["paths"].items():
        assert path in html, path
        for op in item.values():
            assert op["summary"] in html
    for error in spec["x-error-codes"]:
        assert f"<td>{error['error_code']}</td><td>{error['status']}</td><td>{error['msg']}" in html
    for convention in ("token", "application/x-www-form-urlencoded", "per_page", "YYYY-MM-DD HH:MM:SS", '"199.00"'):
        assert convention in html
    # The user/info fields and its errors are shown with the endpoint.
    assert "member_expire_time" in html and "用户不存在或被禁用" in html
    # No outside assets, no scripts: the page works offline.
    assert "<script" not in html.lower()
    assert not re.search(r"""<link[^>]+href=["']?(https?:)?//""", html, re.I)
    assert not re.search(r"""\ssrc=["']?(https?:)?//""", html, re.I)
    # The app serves the chat websocket at /ws, so the page describes it, with the configured batch window.
    assert 'id="chat"' in html
    assert "100 人以上），75 毫秒内的消息合并为一次写出" in html


async def test_readme_quotes_error_texts_the_docs_page_lists(client):
    """Every "NNNNN (`text`" in the README is that code's row of the docs page's error table."""
    html = await (await client.get("/Docs/jiandong.html")).text()
    rows = {}
    for code, text in re.findall(r"<tr><td>(\d{5})</td><td>\d+</td><td>(.*?)</td></tr>", html):
        rows[code] = rows.get(code, "") + "\n" + unescape(text)
    quoted = re.findall(r"\b(\d{5}) \(`([^`]+)`", README.read_text())
    assert quoted
    for code, text in quoted:
        assert text in rows.get(code, ""), (code, text, rows.get(code))


async def test_docs_page_describes_chat_when_served(aiohttp_client, settings):
    from jiandong.app import create_app

    app = create_app(settings)
    if not any(r.resource.canonical == "/ws" for r in app.router.routes()):

        async def chat(request):
            raise web.HTTPNotImplemented()

        app.router.add_get("/ws", chat)
    client = await aiohttp_client(app)
    html = await (await client.get("/Docs/jiandong.html")).text()
    assert 'id="chat"' in html
    for word in ("LOGIN", "SEND_ALL", "SEND_ONE", "LOGOUT", "OnLine", "@heart", "myself"):
        assert word in html


def test_schema_fields_walks_nested_objects_and_arrays():
    schema = obj(
        "球队",
        name=string("球队名称"),
        coach=obj("教练", name=string("姓名"), age=integer("年龄")),
        competitions=array(obj("赛事", id=integer("赛事id"), tags=array(string("标签")))),
    )
    rows = [(f.name, f.type, f.description, f.depth) for f in schema_fields(schema)]
    assert rows == [
        ("name", "string", "球队名称", 0),
        ("coach", "object", "教练", 0),
        ("coach.name", "string", "姓名", 1),
        ("coach.age", "integer", "年龄", 1),
        ("competitions", "array<object>", "", 0),
        ("competitions[].id", "integer", "赛事id", 1),
        ("competitions[].tags", "array<string>", "", 1),
    ]
    page = schema_fields(array(obj("x", id=integer("id"))))
    assert [f.name for f in page] == ["[].id"]


def test_readme_configuration_table_is_generated_from_settings():
    assert settings_markdown() in README.read_text(encoding="utf-8")


async def test_docs_chat_examples_are_frames_the_server_sends(make_client):
    """Each example frame the docs page shows has the fields, and their types, of a real one of its kind."""
    client = await make_client(**FAST)
    html = await (await client.get("/Docs/jiandong.html")).text()
    assert '<a href="#chat">' in html.split('<h2 id="rules">')[0], "no link to the chat section at the top"
    assert "ws://host:8080/ws?room_id=1" in html
    assert "ws://host:19833/?room_id=1" in html
    examples = re.search(r'<pre class="frames">(.*?)</pre>', html, re.S).group(1)
    shown = [encoding.loads(unescape(line)) for line in re.findall(r'<span class="from">← (\{.*?\})</span>', examples)]
    sent = [encoding.loads(unescape(line)) for line in re.findall(r'<span class="to">→ (\{.*?\})</span>', examples)]
    assert "→ @heart" in examples and "← @heart" in examples

    def shape(frame):
        return frame.get("type"), frame.get("myself"), {k: type(v).__name__ for k, v in frame.items()}

    # A real session in the same steps: another viewer first, then the sender, then a third arrives.
    tokens = [await login(client, code) for code in ("li", "zhang", "wang")]
    other = await client.ws_connect("/ws")
    await send(other, type="LOGIN", room_id="1", token=tokens[0])
    ws = await client.ws_connect("/ws")
    real = []
    for frame in sent[:3]:
        await send(ws, **{**frame, "token": tokens[1]})
        if frame["type"] == "SEND_ALL" and frame["content"] == "":
            real.append(await frame_of(ws, "ERROR"))
        elif frame["type"] == "SEND_ALL":
            real.append(await frame_of(ws, "SEND_ALL", myself=True))
        else:
            real += [await frame_of(ws, "LOGIN", myself=True), await frame_of(ws, "OnLine", ONLINE=2)]
            third = await client.ws_connect("/ws")
            await send(third, type="LOGIN", room_id="1", token=tokens[2])
            real += [await frame_of(ws, "LOGIN", myself=False), await frame_of(ws, "OnLine", ONLINE=3)]
    assert sorted(map(repr, map(shape, shown))) == sorted(map(repr, map(shape, real)))


async def test_the_readme_says_where_every_endpoint_is_right_after_the_walk_through(client):
    """A newcomer guessed POST /api/v1/feedback (404) for the API document's 提交意见反馈, POST /api/v1/feeds:
    the paragraph after the walk-through links the docs page's endpoint list and the OpenAPI document, and
    says how their paths are the API document's."""
    text = README.read_text(encoding="utf-8")
    walk_through = text.index("<!-- the walk-through")
    after = text[text.index("\n```\n", walk_through) + len("\n```\n"):].lstrip("\n")
    paragraph = " ".join(after.split("\n\n", 1)[0].split())
    assert "<http://localhost:8080/Docs/jiandong.html#endpoints>" in paragraph
    assert "<http://localhost:8080/api/v1/openapi.json>" in paragraph
    assert "API document" in paragraph and "`POST /api/v1/feeds`" in paragraph
    html = await (await client.get("/Docs/jiandong.html")).text()
    # Every anchor the README links to is on the page; the endpoint list names every operation.
    for anchor in re.findall(r"/Docs/jiandong\.html#([\w-]+)", text):
        assert f'id="{anchor}"' in html, anchor
    listed = html[html.index('id="endpoints"'):html.index("</nav>")]
    spec = await (await client.get("/api/v1/openapi.json")).json()
    for path, item in spec["paths"].items():
        for method in item:
            assert f"<code>{method.upper()} {path}</code>" in listed, (method, path)
