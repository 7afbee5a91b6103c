"""Console config section (配置项): it holds the values the H5 pages read and nothing else; the moderators'
banned words belong to chat moderation, out of an editor's reach on every route of this section."""

from __future__ import annotations

import html
import re

import pytest

from jiandong.services.configs import PAGE_CODES
from tests.helpers.admin import add_admin, csrf, sign_in

BANNED = "秘密屏蔽词甲\n秘密屏蔽词乙"
INTERNAL = "chat_banned_words"


def section_routes(app) -> list[tuple[str, str]]:
    """Every (method, path) of the config section, from the router, with the internal code as the id."""
    found = []
    for route in app.router.routes():
        info = route.resource.get_info() if route.resource else {}
        path = info.get("path") or info.get("formatter") or ""
        if route.method in ("GET", "POST") and path.startswith("/admin/configs"):
            found.append((route.method, re.sub(r"\{id[^}]*\}", INTERNAL, path)))
    return found


@pytest.fixture
def stored(sql):
    sql("INSERT INTO config_values (code, name, value) VALUES (%s, '聊天屏蔽词', %s), ('ICP', '备案号', '粤ICP备1号')",
        INTERNAL, BANNED)


def banned_row(sql) -> list[dict]:
    return sql("SELECT code, name, value, rich, updated_at FROM config_values WHERE code = %s", INTERNAL)


async def test_an_editor_can_neither_read_nor_change_the_banned_words_through_the_config_section(client, sql,
                                                                                                  stored):
    add_admin(sql, "writer", "editor")
    assert (await sign_in(client, "writer")).status == 302
    before = banned_row(sql)
    routes = section_routes(client.app)
    assert {m for m, _ in routes} == {"GET", "POST"} and len(routes) >= 4
    for method, path in routes:
        if method == "GET":
            for query in ({}, {"q": "秘密"}, {"q": INTERNAL}, {"sort": "code"}, {"all": "1"}):
                resp = await client.get(path, params=query)
                text = await resp.text()
                assert "秘密屏蔽词" not in text and "聊天屏蔽词" not in text, (path, query)
                assert resp.status in (200, 404), (path, resp.status)
                if path.endswith(INTERNAL):
                    assert resp.status == 404
        else:
            token = await csrf(client, "/admin/configs")
            for data in ({"name": "x", "value": ""}, {"code": INTERNAL, "name": "x", "value": "", "rich": ""}):
                resp = await client.post(path, data={**data, "csrf_token": token}, allow_redirects=False)
                assert resp.status in (400, 404), (path, data, resp.status)
                assert "秘密屏蔽词" not in await resp.text()
    assert banned_row(sql) == before
    assert not sql("SELECT 1 FROM audit_log WHERE target LIKE %s", f"%{INTERNAL}%")
    # The public values are still the editor's to keep.
    listing = await (await client.get("/admin/configs")).text()
    assert "粤ICP备1号" in listing


async def test_a_moderator_keeps_the_banned_words_on_the_moderation_page(client, sql, stored):
    add_admin(sql, "mod", "moderator")
    assert (await sign_in(client, "mod")).status == 302
    page = await (await client.get("/admin/chat")).text()
    assert "秘密屏蔽词甲" in page
    assert (await client.get("/admin/configs")).status == 403
    token = await csrf(client, "/admin/chat")
    resp = await client.post("/admin/chat/banned-words", data={"words": "新词", "csrf_token": token},
                             allow_redirects=False)
    assert resp.status == 302
    assert banned_row(sql)[0]["value"] == "新词"


# -- the page shows what the H5 pages read ---------------------------------------------------------------

@pytest.fixture
async def editor(client, sql):
    add_admin(sql, "writer", "editor")
    assert (await sign_in(client, "writer")).status == 302
    return client


def listed_codes(body: str) -> set[str]:
    """The codes the page's lists link to: set ones (edit) and unset ones (new?code=)."""
    return set(re.findall(r'href="/admin/configs/(?:new\?code=)?([A-Za-z][A-Za-z0-9_.-]*)"', body)) - {"new"}


async def test_the_config_page_lists_exactly_the_codes_the_pages_read_each_with_its_page(editor, sql):
    sql("INSERT INTO config_values (code, name, value) VALUES ('agreement_user', '用户协议', '<p>旧</p>'),"
        " ('demo_data', '演示数据', '1'), ('ICP', '备案号', '粤ICP备1号')")
    body = await (await editor.get("/admin/configs")).text()
    assert listed_codes(body) == set(PAGE_CODES)
    for reads in PAGE_CODES.values():
        assert reads in body
    assert "agreement_user" not in body and "demo_data" not in body.replace("显示页面不读取的编码", "")
    # Kept, and shown on request (never as a link to edit them).
    shown = await (await editor.get("/admin/configs", params={"all": "1"})).text()
    assert "agreement_user" in shown and "demo_data" in shown and listed_codes(shown) == set(PAGE_CODES)
    assert sql("SELECT count(*) FROM config_values WHERE code IN ('agreement_user', 'demo_data')")[0]["count"] == 2


async def test_an_unset_page_code_links_to_a_form_for_it(editor):
    body = await (await editor.get("/admin/configs/new", params={"code": "copyright"})).text()
    assert re.search(r'<input[^>]*name="code"[^>]*value="copyright"', body)


async def test_no_new_button_once_every_page_code_is_set(editor, sql):
    assert "新建配置项" in await (await editor.get("/admin/configs")).text()
    for code in PAGE_CODES:
        sql("INSERT INTO config_values (code, name, value) VALUES (%s, %s, 'x') ON CONFLICT (code) DO NOTHING",
            code, code)
    assert "新建配置项" not in await (await editor.get("/admin/configs")).text()


async def test_a_rich_value_is_previewed_sanitised_in_a_sandbox(editor, sql):
    # Stored unsanitised (as before the console sanitised on save): the preview still shows no script.
    sql("INSERT INTO config_values (code, name, value, rich) VALUES ('service_agreement', '服务协议', %s, true)",
        '<p onclick="steal()">条款</p><script>alert("x")</script><img src=x onerror="steal()">')
    body = await (await editor.get("/admin/configs/service_agreement")).text()
    assert "读取页面：" + PAGE_CODES["service_agreement"] in body
    frame = re.search(r'<iframe class="rich-preview" sandbox [^>]*srcdoc="([^"]*)"', body)
    assert frame, "no sandboxed preview"
    preview = html.unescape(frame.group(1))
    assert "<p>条款</p>" in preview
    assert "<script" not in preview and "alert" not in preview and "onclick" not in preview and "onerror" not in preview
    assert "<script>alert" not in body
