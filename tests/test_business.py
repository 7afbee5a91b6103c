"""Endpoint 8 (business/joinus): the membership product on sale."""

import datetime as dt

from tests.helpers.api import call
from tests.helpers.orders import add_product

JOINUS = "/api/v1/business/joinus"


async def test_joinus_shows_the_product_on_sale(client, token, sql):
    category = sql("INSERT INTO business_categories (name) VALUES ('会员服务') RETURNING id")[0]["id"]
    audit = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.timezone(dt.timedelta(hours=8)))
    product = add_product(sql, s_id=category, audit_time=audit)
    status, body = await call(client, "GET", JOINUS, token)
    assert status == 200
    assert body == {
        "id": product, "s_id": category, "title": "建东体育年度会员", "cost": "299.00", "price": "199.00",
        "content": "<p>全年赛事报名</p>", "remark": "支付成功后立即生效", "num": "VIP-2026", "valid_time": 1,
        "amount": 10, "specs": "一年", "people": 1, "audit_time": "2026-01-02 03:04:05", "istui": 1,
    }


async def test_joinus_takes_the_first_by_sort_and_skips_disabled(client, token, sql):
    add_product(sql, title="下架的", status=0, sort=-5)
    add_product(sql, title="第二", sort=2)
    first = add_product(sql, title="第一", sort=1, price=1, cost=0)
    status, body = await call(client, "GET", JOINUS, token)
    assert status == 200 and body["id"] == first and body["title"] == "第一"
    assert body["price"] == "0.01" and body["cost"] == "0.00" and body["s_id"] == 0 and body["audit_time"] == ""


async def test_joinus_shows_a_sold_out_product(client, token, sql):
    add_product(sql, amount=0)
    status, body = await call(client, "GET", JOINUS, token)
    assert status == 200 and body["amount"] == 0


async def test_joinus_without_a_product_on_sale(client, token, sql):
    expected = (404, {"msg": "当前没有在售的会员业务", "error_code": 20000, "request_url": JOINUS})
    assert await call(client, "GET", JOINUS, token) == expected
    add_product(sql, status=0)
    assert await call(client, "GET", JOINUS, token) == expected


async def test_joinus_needs_a_token(client, sql):
    add_product(sql)
    status, body = await call(client, "GET", JOINUS)
    assert (status, body["error_code"]) == (401, 10003)
