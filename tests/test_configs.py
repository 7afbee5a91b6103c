import json

import pytest

from jiandong.services.configs import PAGE_CODES

VALUE = "/api/v1/config/value"
HTML = '<p>京ICP备<b>12345678</b>号 &amp; <a href="https://beian.example">备案</a><script>alert(1)</script></p>'


@pytest.fixture
def configs(sql):
    sql(
        "INSERT INTO config_values (code, name, value) VALUES"
        " ('ICP', '备案号', %s), ('copyright', '版权', '© 建东体育'), ('description', '空', '')",
        HTML,
    )


async def test_single_code(client, token, configs):
    resp = await client.post(VALUE, data={"code": "copyright"}, headers={"token": token})
    assert resp.status == 200
    assert await resp.json() == {"value": "© 建东体育"}
    resp = await client.post(VALUE, data={"code": "description", "tags": "1"}, headers={"token": token})
    assert await resp.json() == {"value": ""}


async def test_single_code_by_get_and_json(client, token, configs):
    resp = await client.get(VALUE, params={"code": "ICP"}, headers={"token": token})
    assert resp.status == 200 and await resp.json() == {"value": HTML}
    resp = await client.post(VALUE, json={"code": "ICP", "tags": 0}, headers={"token": token})
    assert resp.status == 200 and await resp.json() == {"value": HTML}


async def test_array_in_every_encoding(client, token, configs):
    expected = {"ICP": HTML, "copyright": "© 建东体育"}
    jquery = [("code[]", "ICP"), ("code[]", "copyright")]
    repeated = [("code", "ICP"), ("code", "copyright")]
    for form in (jquery, repeated):
        resp = await client.post(VALUE, data=form, headers={"token": token})
        assert resp.status == 200
        assert await resp.json() == expected
    resp = await client.post(VALUE, json={"code": ["ICP", "copyright"]}, headers={"token": token})
    assert resp.status == 200 and await resp.json() == expected
    resp = await client.get(VALUE, params=jquery, headers={"token": token})
    assert resp.status == 200 and await resp.json() == expected
    # A JSON array as a form value, as some clients send it.
    resp = await client.post(VALUE, data={"code": json.dumps(["ICP", "copyright"])}, headers={"token": token})
    assert resp.status == 200 and await resp.json() == expected


async def test_one_code_sent_as_an_array_is_still_an_array(client, token, configs):
    resp = await client.post(VALUE, data=[("code[]", "copyright")], headers={"token": token})
    assert resp.status == 200 and await resp.json() == {"copyright": "© 建东体育"}
    resp = await client.post(VALUE, json={"code": ["copyright"]}, headers={"token": token})
    assert resp.status == 200 and await resp.json() == {"copyright": "© 建东体育"}


async def test_tags_strips_html(client, token, configs):
    stripped = "京ICP备12345678号 &amp; 备案"
    resp = await client.post(VALUE, data={"code": "ICP", "tags": "1"}, headers={"token": token})
    assert resp.status == 200
    assert await resp.json() == {"value": stripped}
    form = [("code[]", "ICP"), ("code[]", "copyright"), ("tags", "1")]
    resp = await client.post(VALUE, data=form, headers={"token": token})
    assert await resp.json() == {"ICP": stripped, "copyright": "© 建东体育"}
    resp = await client.post(VALUE, data={"code": "ICP", "tags": "0"}, headers={"token": token})
    assert await resp.json() == {"value": HTML}


async def test_unknown_code(client, token, configs):
    resp = await client.post(VALUE, data={"code": "nope"}, headers={"token": token})
    assert resp.status == 404
    assert await resp.json() == {"msg": "请求配置不存在: nope", "error_code": 40004, "request_url": VALUE}
    resp = await client.post(VALUE, data=[("code[]", "ICP"), ("code[]", "missing")], headers={"token": token})
    assert resp.status == 404
    body = await resp.json()
    assert body["error_code"] == 40004 and "missing" in body["msg"]


async def test_bad_parameters(client, token, configs):
    bad = [
        {},
        {"code": ""},
        {"code": "   "},
        [("code[]", "ICP"), ("code[]", "")],
        {"code": "ICP", "tags": "2"},
        {"code": "ICP", "tags": "yes"},
        {"code": "a\x00b"},
        {"code": "x" * 101},
        [("code[]", f"c{i}") for i in range(51)],
    ]
    for form in bad:
        resp = await client.post(VALUE, data=form, headers={"token": token})
        assert resp.status == 400, form
        body = await resp.json()
        assert body["error_code"] == 99999 and body["request_url"] == VALUE
    resp = await client.post(VALUE, json={"code": []}, headers={"token": token})
    assert resp.status == 400 and (await resp.json())["error_code"] == 99999


async def test_fifty_codes_are_allowed(client, token, sql):
    codes = list(PAGE_CODES) + [f"c{i}" for i in range(50 - len(PAGE_CODES))]
    for code in codes:
        sql("INSERT INTO config_values (code, value) VALUES (%s, %s)", code, code.upper())
    resp = await client.post(VALUE, data=[("code[]", code) for code in PAGE_CODES], headers={"token": token})
    assert resp.status == 200
    assert await resp.json() == {code: code.upper() for code in PAGE_CODES}
    # Fifty is no parameter error; the codes no page reads are not found.
    resp = await client.post(VALUE, data=[("code[]", code) for code in codes], headers={"token": token})
    assert resp.status == 404
    assert (await resp.json())["msg"] == "请求配置不存在: " + ", ".join(codes[len(PAGE_CODES):])


@pytest.mark.parametrize("code", ["chat_banned_words", "demo_data", "agreement_user", "c1"])
async def test_a_code_no_page_reads_answers_like_an_unknown_one(client, token, sql, code):
    """The server's own settings (the moderators' banned words, the demo's marker) stay its own."""
    sql("INSERT INTO config_values (code, name, value) VALUES (%s, '内部', '秘密'), ('ICP', '备案号', '粤')", code)
    for form in ({"code": code}, [("code[]", code)], [("code[]", "ICP"), ("code[]", code)]):
        for method in ("GET", "POST"):
            kwargs = {"params": form} if method == "GET" else {"data": form}
            resp = await client.request(method, VALUE, headers={"token": token}, **kwargs)
            assert resp.status == 404, (method, form)
            assert await resp.json() == {"msg": f"请求配置不存在: {code}", "error_code": 40004, "request_url": VALUE}


async def test_config_requires_token(client, configs):
    resp = await client.post(VALUE, data={"code": "ICP"})
    assert resp.status == 401 and (await resp.json())["error_code"] == 10003


async def test_tags_keep_blocks_apart(client, token, sql):
    sql("INSERT INTO config_values (code, value) VALUES ('service_agreement',"
        " '<h3>服务协议</h3><p>一、总则</p><p>二、服务<br>内容</p>')")
    resp = await client.post(VALUE, data={"code[]": "service_agreement", "tags": "1"}, headers={"token": token})
    assert await resp.json() == {"service_agreement": "服务协议\n一、总则\n二、服务\n内容"}
