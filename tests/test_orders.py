"""Endpoints 9-13 (order commit, cancel, detail, close, list)."""

import asyncio
import datetime as dt
import re
import typing

import pytest

from tests.helpers import merchants
from tests.helpers.api import call
from tests.helpers.orders import (
    BY_USER,
    CANCEL,
    CLOSE,
    CLOSE_WAIT_MINUTES,
    COMMIT,
    PRE_ORDER,
    add_product,
    commit,
    dev_buyer,
    minutes_pass,
    order_row,
    order_with_prepay,
    stock,
    wx_buyer,
)


def error(path: str, code: int, msg: str | None = None) -> typing.Callable[[dict[str, typing.Any]], bool]:
    def check(body: dict[str, typing.Any]) -> bool:
        return body["error_code"] == code and body["request_url"] == path and (msg is None or body["msg"] == msg)

    return check


def user_id_of(sql, openid: str) -> int:
    return sql("SELECT id FROM users WHERE openid = %s", openid)[0]["id"]


# -- commit ----------------------------------------------------------------------------------

async def test_commit_takes_the_price_from_the_product_and_keeps_a_snapshot(client, sql):
    product = add_product(sql)
    token = await dev_buyer(client, sql)
    # Whatever the client claims about money is ignored.
    body = await commit(client, token, product, price="0.01", total_price="0.01", total_fee=1)
    assert set(body) == {"id", "order_no", "total_price", "name", "create_time"}
    assert body["total_price"] == "199.00" and body["name"] == "建东体育年度会员"
    assert re.fullmatch(r"\d{14}[0-9A-F]{16}", body["order_no"])
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", body["create_time"])
    row = order_row(sql, body["id"])
    assert (row["status"], row["price"], row["total_price"], row["count"], row["pay_amount"]) == (0, 19900, 19900, 1, 0)
    assert row["phone"] == "13800138000" and row["business_id"] == product and row["prepay_id"] is None
    assert row["snap_items"] == [{
        "id": product, "s_id": 0, "title": "建东体育年度会员", "cost": "299.00", "price": "199.00",
        "content": "<p>全年赛事报名</p>", "remark": "支付成功后立即生效", "num": "VIP-2026", "valid_time": 1,
        "specs": "一年", "people": 1, "audit_time": "", "istui": 1, "count": 1, "total_price": "199.00",
    }]
    assert stock(sql, product) == 9


async def test_commit_with_a_title_and_unique_order_numbers(client, sql):
    product = add_product(sql)
    numbers = set()
    for i in range(5):
        token = await dev_buyer(client, sql, f"buyer{i}", phone=f"1380013800{i}")
        body = await commit(client, token, product, name=f"  张三的会员{i} ")
        assert body["name"] == f"张三的会员{i}"
        numbers.add(body["order_no"])
    assert len(numbers) == 5 and stock(sql, product) == 5


async def test_an_order_number_starts_with_the_clubs_time(client, sql, settings):
    body = await commit(client, await dev_buyer(client, sql), add_product(sql))
    assert re.fullmatch(r"[0-9]{14}[0-9A-F]{16}", body["order_no"]), body
    stamp = dt.datetime.strptime(body["order_no"][:14], "%Y%m%d%H%M%S").replace(tzinfo=settings.tz)
    # The club's clock (Asia/Shanghai): read in another zone it would be hours away.
    assert abs((dt.datetime.now(dt.timezone.utc) - stamp).total_seconds()) < 60


async def test_a_double_click_gets_the_same_order(client, sql):
    product = add_product(sql)
    token = await dev_buyer(client, sql)
    first, second = await asyncio.gather(commit(client, token, product), commit(client, token, product))
    assert first == second
    assert len(sql("SELECT id FROM orders")) == 1 and stock(sql, product) == 9
    # Once that order is cancelled, a new commit makes a new order.
    assert (await call(client, "POST", CANCEL, token, id=first["id"]))[0] == 200
    third = await commit(client, token, product)
    assert third["id"] != first["id"] and stock(sql, product) == 9


async def test_two_buyers_race_for_the_last_item(client, sql):
    product = add_product(sql, amount=1)
    tokens = [await dev_buyer(client, sql, f"racer{i}", phone=f"1390000000{i}") for i in range(2)]
    results = await asyncio.gather(*(call(client, "POST", COMMIT, t, business_id=product) for t in tokens))
    statuses = sorted(status for status, _ in results)
    assert statuses == [200, 404]
    [(_, refused)] = [r for r in results if r[0] == 404]
    assert refused == {"msg": "业务库存不足", "error_code": 20000, "request_url": COMMIT}
    assert len(sql("SELECT id FROM orders")) == 1 and stock(sql, product) == 0


async def test_many_buyers_never_oversell(client, sql):
    product = add_product(sql, amount=3)
    tokens = [await dev_buyer(client, sql, f"crowd{i}", phone=f"1370000000{i}") for i in range(10)]
    results = await asyncio.gather(*(call(client, "POST", COMMIT, t, business_id=product) for t in tokens))
    assert sorted(status for status, _ in results) == [200] * 3 + [404] * 7
    assert len(sql("SELECT id FROM orders")) == 3 and stock(sql, product) == 0


@pytest.mark.parametrize(
    "data, msg",
    [
        ({}, "参数错误: business_id 不能为空"),
        ({"business_id": "abc"}, "参数错误: business_id 必须是整数"),
        ({"business_id": "0"}, "参数错误: business_id 超出范围"),
        ({"business_id": "1", "name": "名" * 65}, "参数错误: name 不能超过 64 个字符"),
    ],
)
async def test_commit_bad_parameters(client, sql, data, msg):
    token = await dev_buyer(client, sql)
    status, body = await call(client, "POST", COMMIT, token, **data)
    assert (status, body) == (400, {"msg": msg, "error_code": 99999, "request_url": COMMIT})
    assert sql("SELECT id FROM orders") == []


async def test_commit_needs_a_bound_phone(client, sql):
    product = add_product(sql)
    token = await dev_buyer(client, sql, phone=None)
    status, body = await call(client, "POST", COMMIT, token, business_id=product)
    assert (status, body) == (400, {"msg": "当前用户未绑定手机号码", "error_code": 10011, "request_url": COMMIT})
    assert sql("SELECT id FROM orders") == [] and stock(sql, product) == 10


async def test_commit_unknown_disabled_or_sold_out_product(client, sql):
    token = await dev_buyer(client, sql)
    disabled = add_product(sql, status=0)
    sold_out = add_product(sql, amount=0)
    for business_id, msg in ((disabled + 100, "业务不存在或已禁用"), (disabled, "业务不存在或已禁用"),
                             (sold_out, "业务库存不足")):
        status, body = await call(client, "POST", COMMIT, token, business_id=business_id)
        assert (status, body) == (404, {"msg": msg, "error_code": 20000, "request_url": COMMIT})
    assert sql("SELECT id FROM orders") == []
    assert stock(sql, disabled) == 10 and stock(sql, sold_out) == 0


async def test_commit_refused_to_disabled_users_and_disabled_members(client, sql):
    product = add_product(sql)
    token = await dev_buyer(client, sql)
    sql("UPDATE users SET member_status = 2")
    status, body = await call(client, "POST", COMMIT, token, business_id=product)
    assert status == 403 and body["error_code"] == 10001 and body["request_url"] == COMMIT
    sql("UPDATE users SET member_status = 0, is_disabled = true")
    status, body = await call(client, "POST", COMMIT, token, business_id=product)
    assert (status, body) == (404, {"msg": "用户不存在或被禁用", "error_code": 10004, "request_url": COMMIT})
    assert sql("SELECT id FROM orders") == [] and stock(sql, product) == 10


async def test_commit_makes_a_new_order_when_the_pending_one_is_too_late_to_pay(client, sql):
    product = add_product(sql)
    token = await dev_buyer(client, sql)
    first = await commit(client, token, product)
    # Five minutes before its time-out: no new prepay can be made for it (pay/pre_order refuses).
    minutes_pass(sql, None, 25, first["id"])
    second = await commit(client, token, product)
    assert second["id"] != first["id"] and stock(sql, product) == 8
    assert [order_row(sql, o["id"])["status"] for o in (first, second)] == [0, 0]


async def test_commit_an_expired_member_may_buy(client, sql):
    product = add_product(sql)
    token = await dev_buyer(client, sql)
    sql("UPDATE users SET member_status = 1, member_expire_time = now() - interval '1 day'")
    assert (await commit(client, token, product))["total_price"] == "199.00"


@pytest.mark.parametrize("path", [COMMIT, CANCEL, CLOSE, PRE_ORDER, "/api/v1/pay/dev/complete"])
async def test_order_endpoints_need_a_token(client, path):
    status, body = await call(client, "POST", path, business_id=1, id=1)
    assert (status, body["error_code"]) == (401, 10003)
    for get_path in (BY_USER, "/api/v1/order/1"):
        status, body = await call(client, "GET", get_path)
        assert (status, body["error_code"]) == (401, 10003)


# -- cancel and close --------------------------------------------------------------------------

@pytest.mark.parametrize(
    "path, status_after, code, msg",
    [(CANCEL, 5, 60002, "订单不允许取消"), (CLOSE, -1, 60003, "订单不允许关闭")],
)
async def test_cancel_and_close(client, sql, path, status_after, code, msg):
    product = add_product(sql)
    token = await dev_buyer(client, sql)
    other = await dev_buyer(client, sql, "other", phone="13900000000")
    order = await commit(client, token, product)
    assert stock(sql, product) == 9

    status, body = await call(client, "POST", path, other, id=order["id"])
    assert (status, body) == (403, {"msg": "订单与用户不匹配", "error_code": 10005, "request_url": path})
    status, body = await call(client, "POST", path, token, id=order["id"] + 1000)
    assert (status, body) == (404, {"msg": "订单不存在", "error_code": 60000, "request_url": path})
    status, body = await call(client, "POST", path, token)
    assert (status, body["error_code"]) == (400, 99999)
    assert order_row(sql, order["id"])["status"] == 0

    status, body = await call(client, "POST", path, token, id=order["id"])
    assert (status, body) == (200, {"msg": "success", "error_code": 0, "request_url": path})
    row = order_row(sql, order["id"])
    assert row["status"] == status_after and row["closed_at"] is not None
    assert stock(sql, product) == 10
    # Only once: the stock comes back once.
    status, body = await call(client, "POST", path, token, id=order["id"])
    assert (status, body) == (409, {"msg": msg, "error_code": code, "request_url": path})
    assert stock(sql, product) == 10


async def test_cancel_and_close_at_once_end_the_order_once(client, sql):
    product = add_product(sql)
    token = await dev_buyer(client, sql)
    order = await commit(client, token, product)
    results = await asyncio.gather(
        call(client, "POST", CANCEL, token, id=order["id"]), call(client, "POST", CLOSE, token, id=order["id"]),
        call(client, "POST", CANCEL, token, id=order["id"]),
    )
    assert sorted(status for status, _ in results) == [200, 409, 409]
    assert order_row(sql, order["id"])["status"] in (5, -1) and stock(sql, product) == 10


async def test_a_paid_order_can_be_neither_cancelled_nor_closed(client, sql):
    product = add_product(sql)
    token = await dev_buyer(client, sql)
    order = await commit(client, token, product)
    sql("UPDATE orders SET status = 1, pay_time = now(), transaction_id = 'T1'")
    assert (await call(client, "POST", CANCEL, token, id=order["id"]))[1]["error_code"] == 60002
    assert (await call(client, "POST", CLOSE, token, id=order["id"]))[1]["error_code"] == 60003
    assert order_row(sql, order["id"])["status"] == 1 and stock(sql, product) == 9


async def test_cancel_right_after_the_prepay_while_wechat_cannot_be_asked_ends_it_here(
    merchant_client, wechat, merchant, sql
):
    product = add_product(sql)
    token = await wx_buyer(merchant_client, wechat, sql)
    order = await order_with_prepay(merchant_client, token, product)
    # orderquery fails: nothing says the order is paid, so the player's cancel is not refused.
    merchant.fail(merchants.QUERY, "SYSTEMERROR")
    status, body = await call(merchant_client, "POST", CANCEL, token, id=order["id"])
    assert (status, body) == (200, {"msg": "success", "error_code": 0, "request_url": CANCEL})
    assert order_row(sql, order["id"])["status"] == 5 and stock(sql, product) == 10
    assert merchant.count(merchants.QUERY) == 1


@pytest.mark.parametrize("path, status_after", [(CANCEL, 5), (CLOSE, -1)])
async def test_ending_an_order_right_after_its_prepay_ends_it_here_at_once(
    merchant_client, wechat, merchant, sql, path, status_after
):
    product = add_product(sql)
    token = await wx_buyer(merchant_client, wechat, sql)
    order = await order_with_prepay(merchant_client, token, product)
    status, body = await call(merchant_client, "POST", path, token, id=order["id"])
    assert (status, body) == (200, {"msg": "success", "error_code": 0, "request_url": path})
    row = order_row(sql, order["id"])
    assert row["status"] == status_after and row["closed_at"] is not None and stock(sql, product) == 10
    # WeChat Pay refuses closeorder this soon (§3.5; our rule for v3 as well): it is asked whether the order
    # is paid instead, and the order stays open there for the order round to close (test_order_tasks).
    assert merchant.count(merchants.CLOSE) == 0 and merchant.count(merchants.QUERY) == 1
    assert row["wechat_closed_at"] is None and merchant.state(order["order_no"]) == "NOTPAY"
    status, body = await call(merchant_client, "POST", PRE_ORDER, token, id=order["id"])
    assert (status, body["error_code"]) == (409, 60005)


async def test_close_once_wechat_allows_it_closes_the_order_there_at_once(merchant_client, wechat, merchant, sql):
    product = add_product(sql)
    token = await wx_buyer(merchant_client, wechat, sql)
    order = await order_with_prepay(merchant_client, token, product)
    minutes_pass(sql, merchant, CLOSE_WAIT_MINUTES, order["id"])
    order_no = order["order_no"]
    status, _ = await call(merchant_client, "POST", CLOSE, token, id=order["id"])
    assert status == 200
    assert merchant.state(order_no) == "CLOSED"
    assert [sent.out_trade_no for sent in merchant.sent(merchants.CLOSE)] == [order_no]
    row = order_row(sql, order["id"])
    assert row["status"] == -1 and row["wechat_closed_at"] is not None and stock(sql, product) == 10


async def test_cancel_without_a_prepay_does_not_call_wechat(merchant_client, wechat, merchant, sql):
    product = add_product(sql)
    token = await wx_buyer(merchant_client, wechat, sql)
    order = await commit(merchant_client, token, product)
    assert (await call(merchant_client, "POST", CANCEL, token, id=order["id"]))[0] == 200
    assert merchant.calls_made() == 0 and order_row(sql, order["id"])["status"] == 5


@pytest.mark.parametrize("mode", ["SYSTEMERROR", merchants.HTTP_500, merchants.BAD_SIGN])
@pytest.mark.parametrize("path, status_after", [(CANCEL, 5), (CLOSE, -1)])
async def test_ending_an_order_wechat_cannot_close_now_ends_it_here(
    merchant_client, wechat, merchant, sql, mode, path, status_after
):
    product = add_product(sql)
    token = await wx_buyer(merchant_client, wechat, sql)
    order = await order_with_prepay(merchant_client, token, product)
    minutes_pass(sql, merchant, CLOSE_WAIT_MINUTES, order["id"])
    merchant.fail(merchants.CLOSE, mode)
    status, body = await call(merchant_client, "POST", path, token, id=order["id"])
    assert (status, body) == (200, {"msg": "success", "error_code": 0, "request_url": path})
    row = order_row(sql, order["id"])
    assert row["status"] == status_after and stock(sql, product) == 10
    # Still open at WeChat Pay: the order round closes it there (test_order_tasks).
    assert row["wechat_closed_at"] is None and merchant.state(order["order_no"]) == "NOTPAY"
    assert merchant.count(merchants.CLOSE) == 1


async def test_cancel_of_an_order_paid_meanwhile_applies_the_payment(merchant_client, wechat, merchant, sql):
    product = add_product(sql)
    token = await wx_buyer(merchant_client, wechat, sql)
    order = await commit(merchant_client, token, product)
    await call(merchant_client, "POST", PRE_ORDER, token, id=order["id"])
    paid = merchant.pay(order["order_no"])  # paid in WeChat; the notification has not come yet
    status, body = await call(merchant_client, "POST", CANCEL, token, id=order["id"])
    msg = "订单不允许取消: 订单已经支付过"
    assert (status, body) == (409, {"msg": msg, "error_code": 60002, "request_url": CANCEL})
    row = order_row(sql, order["id"])
    assert row["status"] == 1 and row["transaction_id"] == paid.transaction_id
    assert len(sql("SELECT id FROM member_extensions")) == 1 and stock(sql, product) == 9


async def test_cancel_of_an_order_wechat_says_is_paid_when_orderquery_fails(merchant_client, wechat, merchant, sql):
    product = add_product(sql)
    token = await wx_buyer(merchant_client, wechat, sql)
    order = await order_with_prepay(merchant_client, token, product)
    minutes_pass(sql, merchant, CLOSE_WAIT_MINUTES, order["id"])
    paid = merchant.pay(order["order_no"])  # paid in WeChat; the notification has not come yet
    merchant.fail(merchants.QUERY, "SYSTEMERROR")
    status, body = await call(merchant_client, "POST", CANCEL, token, id=order["id"])
    # closeorder answered ORDERPAID (v3: ORDER_PAID), which settles it (§3.5) though the payment cannot be
    # applied yet.
    msg = "订单不允许取消: 订单已经支付过"
    assert (status, body) == (409, {"msg": msg, "error_code": 60002, "request_url": CANCEL})
    assert merchant.count(merchants.CLOSE) == 1
    row = order_row(sql, order["id"])
    assert row["status"] == 0 and stock(sql, product) == 9 and sql("SELECT id FROM member_extensions") == []
    # Its notification applies it.
    assert (await merchant.notify(merchant_client, order["order_no"]))[1]
    row = order_row(sql, order["id"])
    assert row["status"] == 1 and row["transaction_id"] == paid.transaction_id
    assert len(sql("SELECT id FROM member_extensions")) == 1 and stock(sql, product) == 9


# -- detail and list ---------------------------------------------------------------------------

async def test_order_detail(client, sql):
    product = add_product(sql)
    token = await dev_buyer(client, sql)
    other = await dev_buyer(client, sql, "other", phone="13900000000")
    order = await commit(client, token, product)
    path = f"/api/v1/order/{order['id']}"
    status, body = await call(client, "GET", path, token)
    assert status == 200
    assert body == {
        "id": order["id"], "order_no": order["order_no"], "count": 1, "price": "199.00", "total_price": "199.00",
        "business_id": product, "name": "建东体育年度会员", "pay_amount": "0.00", "pay_time": "", "pay_way": "",
        "remark": "", "status": 0, "coupon": "", "phone": "13800138000", "discounts": "0.00",
        "create_time": order["create_time"], "snap_items": order_row(sql, order["id"])["snap_items"],
    }
    assert body["snap_items"][0]["valid_time"] == 1
    status, body = await call(client, "GET", path, other)
    assert (status, body) == (403, {"msg": "订单与用户不匹配", "error_code": 10005, "request_url": path})
    missing = f"/api/v1/order/{order['id'] + 1000}"
    status, body = await call(client, "GET", missing, token)
    assert (status, body) == (404, {"msg": "订单不存在", "error_code": 60000, "request_url": missing})
    status, body = await call(client, "GET", "/api/v1/order/99999999999999999999999", token)
    assert (status, body["error_code"]) == (404, 60000)


async def test_orders_by_user_newest_first_and_paged(client, sql):
    product = add_product(sql, amount=100)
    token = await dev_buyer(client, sql)
    other = await dev_buyer(client, sql, "other", phone="13900000000")
    ids = []
    for _ in range(3):
        order = await commit(client, token, product)
        ids.append(order["id"])
        await call(client, "POST", CANCEL, token, id=order["id"])
    ids.append((await commit(client, token, product))["id"])
    await commit(client, other, product)

    status, body = await call(client, "GET", BY_USER, token)
    assert status == 200
    assert (body["total"], body["per_page"], body["current_page"], body["last_page"]) == (4, 30, 1, 1)
    assert [o["id"] for o in body["data"]] == ids[::-1]
    assert [o["status"] for o in body["data"]] == [0, 5, 5, 5]
    assert "snap_items" not in body["data"][0] and body["data"][0]["price"] == "199.00"

    status, body = await call(client, "GET", BY_USER, token, page=2, size=3)
    assert (body["total"], body["last_page"], [o["id"] for o in body["data"]]) == (4, 2, [ids[0]])
    status, body = await call(client, "GET", BY_USER, token, size=0)
    assert (status, body["error_code"], body["request_url"]) == (400, 99999, BY_USER)

    fresh = await dev_buyer(client, sql, "fresh", phone=None)
    status, body = await call(client, "GET", BY_USER, fresh)
    assert body == {"total": 0, "per_page": 30, "current_page": 1, "last_page": 1, "data": []}
