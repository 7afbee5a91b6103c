"""Console members: search, a user's page, memberships granted by hand (a paid order of kind "manual"),
disabling and enabling a membership, and what the H5 API and the chat then answer."""

from __future__ import annotations

import datetime as dt
import re

import pytest

from jiandong.integrations.wechat import dev_openid
from tests.helpers.admin import add_admin, post_form, sign_in
from tests.helpers.api import call, login
from tests.helpers.orders import add_product
from tests.helpers.realtime import FAST, frame_of, join, send

pytestmark = pytest.mark.usefixtures("chat_rooms")


async def member_client(make_client, sql, role: str = "owner"):
    client = await make_client(**FAST)
    add_admin(sql, "boss", role)
    assert (await sign_in(client, "boss")).status == 302
    return client


async def a_user(client, sql, code: str = "player-1", phone: str = "13900000001") -> tuple[str, int]:
    token = await login(client, code)
    user_id = sql("SELECT id FROM users WHERE openid = %s", dev_openid(code))[0]["id"]
    sql("UPDATE users SET username = %s, mobile = %s WHERE id = %s", "张三" if code == "player-1" else code, phone,
        user_id)
    return token, user_id


async def grant(client, user_id: int, **data):
    return await post_form(client, f"/admin/members/{user_id}/grant", data, token_from=f"/admin/members/{user_id}")


async def test_search_users_by_name_phone_openid_id_and_status(make_client, sql):
    client = await member_client(make_client, sql)
    _, first = await a_user(client, sql)
    _, second = await a_user(client, sql, "player-2", "13900000002")
    sql("UPDATE users SET member_status = 1, member_expire_time = now() + interval '20 days' WHERE id = %s", second)
    for q, found in (("张三", [first]), ("13900000002", [second]), (dev_openid("player-1"), [first]),
                     (f"#{second}", [second]), ("", [second, first])):
        text = await (await client.get("/admin/members", params={"q": q})).text()
        assert [i for i in (first, second) if f'href="/admin/members/{i}"' in text] == sorted(found), q
    text = await (await client.get("/admin/members", params={"status": "1"})).text()
    assert f"/admin/members/{second}" in text and f"/admin/members/{first}\"" not in text and "正常" in text


async def refused_page(client, resp, user_id: int) -> str:
    """A refused form on the member page: back to the page itself (a reload shows it, posting nothing), with
    the red 未保存 banner at the top saying why, and the form as it was typed."""
    assert resp.status == 303 and resp.headers["Location"] == f"/admin/members/{user_id}#refused"
    page = await (await client.get(resp.headers["Location"])).text()
    assert page.index('class="refused"') < page.index("<h2>"), "the banner is at the top"
    assert "未保存" in page
    # Shown once: a reload is the plain page.
    assert 'class="refused"' not in await (await client.get(f"/admin/members/{user_id}")).text()
    return page


async def test_grant_by_years_is_a_paid_manual_order(make_client, sql):
    client = await member_client(make_client, sql)
    product = add_product(sql)
    token, user_id = await a_user(client, sql)
    resp = await grant(client, user_id, years="1", amount="150.00", reason="现场现金缴费")
    assert resp.status == 302
    [order] = sql("SELECT * FROM orders")
    assert (order["kind"], order["status"], order["pay_amount"], order["total_price"]) == ("manual", 1, 15000, 15000)
    assert order["remark"] == "现场现金缴费" and order["business_id"] == product and order["transaction_id"] is None
    assert order["pay_way"] == "线下（手动开通）" and "手动开通 1 年" in order["name"]
    [ext] = sql("SELECT order_id, valid_until = valid_from + interval '1 year' AS year FROM member_extensions")
    assert ext == {"order_id": order["id"], "year": True}
    status, info = await call(client, "GET", "/api/v1/user/info", token)
    assert info["member_status"] == 1 and info["is_member"] == 1
    # A member like any other: a player card, and the order in their history.
    status, card = await call(client, "GET", "/api/v1/member/info", token)
    assert status == 200 and card["cn_name"] and card["order_id"] == card["number"] == ""
    status, page = await call(client, "GET", "/api/v1/order/by_user", token)
    assert page["data"][0]["id"] == order["id"]
    assert page["data"][0]["pay_amount"] == "150.00" and page["data"][0]["business_id"] == product
    [entry] = sql("SELECT admin_name, client_ip, action, target, summary, after FROM audit_log")
    assert entry["action"] == "member.grant" and entry["target"] == f"user:{user_id}"
    assert entry["admin_name"] == "boss" and entry["client_ip"] == "127.0.0.1" and entry["summary"] == "现场现金缴费"
    assert entry["after"]["amount"] == 15000
    page = await (await client.get(f"/admin/members/{user_id}")).text()
    assert "会员已开通" in page and "手动开通" in page and "现场现金缴费" in page
    # The operation list in staff's words: the action's name, the amount in yuan, no codes or escapes.
    history = re.sub(r">\s+<", "><", page.split("<h2>操作记录</h2>", 1)[1])
    assert '<strong title="member.grant">手工开通会员</strong>' in history and "\\u" not in page
    assert '<span class="field">金额</span><span class="new">150.00 元</span>' in history
    # Each changed field with its old and its new value.
    assert re.search('<span class="field">会员状态</span><span class="old">非会员</span>.{0,40}'
                     '<span class="new">正常</span>', history), history
    assert re.search('<span class="field">会员到期</span><span class="old">[^<]*</span>.{0,40}'
                     '<span class="new">20[0-9-]+ ', history), history
    # Staff are told what a member sees, not what the API answers.
    assert "在 H5 页面看不到自己的会员信息" in page and "接口" not in page and "30002" not in page


async def test_grant_until_a_date_extends_from_the_current_end(make_client, sql, settings):
    client = await member_client(make_client, sql)
    _, user_id = await a_user(client, sql)
    end = dt.date.today() + dt.timedelta(days=400)
    assert (await grant(client, user_id, until=end.isoformat(), amount="0", reason="赞助商赠送")).status == 302
    [user] = sql("SELECT member_status, member_expire_time FROM users WHERE id = %s", user_id)
    assert user["member_status"] == 1
    assert user["member_expire_time"].astimezone(settings.tz) == dt.datetime.combine(
        end + dt.timedelta(days=1), dt.time(), settings.tz)
    # An end before the current one is refused, and nothing is written.
    resp = await grant(client, user_id, until=(end - dt.timedelta(days=1)).isoformat(), amount="0", reason="再送")
    assert "结束日期须晚于当前有效期" in await refused_page(client, resp, user_id)
    assert len(sql("SELECT id FROM orders")) == 1 and len(sql("SELECT id FROM audit_log")) == 1


async def test_an_extension_says_extended_to_the_date_entered(make_client, sql):
    client = await member_client(make_client, sql)
    _, user_id = await a_user(client, sql)
    page = await (await client.get(f"/admin/members/{user_id}")).text()
    assert "<h2>手动开通会员</h2>" in page and ">开通</button>" in page
    assert (await grant(client, user_id, years="1", amount="0", reason="现场现金缴费")).status == 302
    page = await (await client.get(f"/admin/members/{user_id}")).text()
    assert "<h2>延长会员</h2>" in page and ">延长</button>" in page and ">开通</button>" not in page
    resp = await grant(client, user_id, until="2038-06-30", amount="0", reason="续费")
    page = await (await client.get(resp.headers["Location"])).text()
    assert "会员已延长至 2038-06-30（含当天）" in page and "2038-07-01" not in page
    # The order by the number the order lists show, not its row id.
    [number] = [r["order_no"] for r in sql("SELECT order_no FROM orders ORDER BY id DESC LIMIT 1")]
    assert f"（订单号 {number}）" in page


async def test_grant_needs_a_reason_and_one_term(make_client, sql):
    client = await member_client(make_client, sql)
    _, user_id = await a_user(client, sql)
    cases = [({"years": "1", "amount": "0"}, "必填"), ({"amount": "0", "reason": "x"}, "请填写年数或结束日期"),
             ({"years": "1", "until": "2031-01-01", "amount": "0", "reason": "x"}, "二选一"),
             ({"years": "1", "amount": "abc", "reason": "x"}, "金额无效"),
             ({"years": "11", "amount": "0", "reason": "x"}, "须在 1~10 之间")]
    for data, message in cases:
        resp = await grant(client, user_id, **data)
        page = await refused_page(client, resp, user_id)
        assert message in page, data
        # What was typed is there to correct, not to type again.
        assert all(f'value="{value}"' in page for key, value in data.items() if key != "years"), data
    assert sql("SELECT count(*) FROM orders")[0]["count"] == 0
    assert sql("SELECT member_status FROM users WHERE id = %s", user_id)[0]["member_status"] == 0


async def test_disabled_member_as_the_h5_api_and_the_chat_see_it(make_client, sql):
    client = await member_client(make_client, sql)
    token, user_id = await a_user(client, sql)
    assert (await grant(client, user_id, years="1", amount="0", reason="测试")).status == 302
    resp = await post_form(client, f"/admin/members/{user_id}/disable", {"reason": "多次辱骂他人"},
                           token_from=f"/admin/members/{user_id}")
    assert resp.status == 302
    assert sql("SELECT member_status, member_note FROM users WHERE id = %s", user_id)[0] == {
        "member_status": 2, "member_note": "多次辱骂他人"}
    status, info = await call(client, "GET", "/api/v1/user/info", token)
    assert status == 200 and (info["member_status"], info["is_member"]) == (2, 0)
    status, card = await call(client, "GET", "/api/v1/member/info", token)
    assert (status, card["error_code"], card["msg"]) == (404, 30002, "会员信息不存在或已被禁用")
    ws, _ = await join(client, 7)
    await send(ws, type="SEND_ALL", room_id=7, content="还能说话吗", token=token)
    error = await frame_of(ws, "ERROR")
    assert error == {"type": "ERROR", "error_code": 30002, "msg": "会员信息不存在或已被禁用"}
    product = add_product(sql)
    status, body = await call(client, "POST", "/api/v1/order/commit", token, business_id=product)
    assert status == 403
    await ws.close()
    # Enabled again: a member as before.
    resp = await post_form(client, f"/admin/members/{user_id}/enable", {"reason": "申诉通过"},
                           token_from=f"/admin/members/{user_id}")
    assert resp.status == 302
    status, info = await call(client, "GET", "/api/v1/user/info", token)
    assert info["member_status"] == 1
    assert (await call(client, "GET", "/api/v1/member/info", token))[0] == 200
    actions = [r["action"] for r in sql("SELECT action FROM audit_log ORDER BY id")]
    assert actions == ["member.grant", "member.disable", "member.enable"]
    # A reason is required.
    resp = await post_form(client, f"/admin/members/{user_id}/disable", {"reason": " "},
                           token_from=f"/admin/members/{user_id}")
    assert "原因" in await refused_page(client, resp, user_id)
    assert sql("SELECT member_status FROM users WHERE id = %s", user_id)[0]["member_status"] == 1


async def test_member_pages_by_role(make_client, sql):
    client = await member_client(make_client, sql, "moderator")
    _, user_id = await a_user(client, sql)
    for path in ("/admin/members", f"/admin/members/{user_id}", "/admin/orders"):
        assert (await client.get(path)).status == 403, path
    resp = await post_form(client, f"/admin/members/{user_id}/grant", {"years": "1", "reason": "x"})
    assert resp.status == 403 and sql("SELECT count(*) FROM orders")[0]["count"] == 0
    add_admin(sql, "writer", "editor")
    assert (await sign_in(client, "writer")).status == 302
    assert (await client.get(f"/admin/members/{user_id}")).status == 200
    assert (await client.get("/admin/members/99999")).status == 404


async def test_an_editor_grants_only_at_list_price(make_client, sql):
    client = await member_client(make_client, sql, "editor")
    _, user_id = await a_user(client, sql)
    sql("INSERT INTO businesses (title, price, valid_time, amount, status) VALUES ('年度会员', 19900, 1, 100, 1)")
    for data in ({"years": "3", "amount": "0", "reason": "朋友"}, {"years": "1", "amount": "100", "reason": "折扣"},
                 {"until": "2038-06-30", "amount": "199", "reason": "到期日"}):
        resp = await grant(client, user_id, **data)
        assert "须由所有者办理" in await refused_page(client, resp, user_id), data
    assert sql("SELECT count(*) FROM orders")[0]["count"] == 0
    assert (await grant(client, user_id, years="2", amount="398", reason="现场缴费")).status == 302


async def test_owners_see_grants_below_the_list_price_on_the_home_page(make_client, sql):
    client = await member_client(make_client, sql)
    _, user_id = await a_user(client, sql)
    sql("INSERT INTO businesses (title, price, valid_time, amount, status) VALUES ('年度会员', 19900, 1, 100, 1)")
    assert (await grant(client, user_id, years="3", amount="0", reason="朋友")).status == 302
    page = await (await client.get("/admin/")).text()
    assert "低于标价的手动开通" in page and "收款 0.00 元（标价 597.00 元），原因：朋友" in page
