"""Orders and their buyers, arranged as the order and payment tests need them."""

from __future__ import annotations

import typing

from jiandong.integrations.wechat import dev_openid
from jiandong.services.orders import CLOSE_WAIT
from tests.fakes.wechatpay import FakeWeChatPay
from tests.helpers.api import call, login

COMMIT = "/api/v1/order/commit"
CANCEL = "/api/v1/order/cancel"
CLOSE = "/api/v1/order/close"
BY_USER = "/api/v1/order/by_user"
PRE_ORDER = "/api/v1/pay/pre_order"
# From a prepay on, this long passes before we may ask WeChat Pay to close the order.
CLOSE_WAIT_MINUTES = CLOSE_WAIT.total_seconds() / 60

MEMBERSHIP = {
    "title": "建东体育年度会员",
    "cost": 29900,
    "price": 19900,
    "content": "<p>全年赛事报名</p>",
    "remark": "支付成功后立即生效",
    "num": "VIP-2026",
    "valid_time": 1,
    "amount": 10,
    "specs": "一年",
    "people": 1,
    "istui": 1,
}


def add_product(sql, **overrides: typing.Any) -> int:
    row = {**MEMBERSHIP, **overrides}
    columns = ", ".join(row)
    marks = ", ".join(["%s"] * len(row))
    return sql(f"INSERT INTO businesses ({columns}) VALUES ({marks}) RETURNING id", *row.values())[0]["id"]


async def dev_buyer(client, sql, code: str = "buyer", phone: str | None = "13800138000") -> str:
    """A dev login; the phone bound directly in the database (binding is tested elsewhere)."""
    token = await login(client, code)
    if phone:
        sql("UPDATE users SET mobile = %s WHERE openid = %s", phone, dev_openid(code))
    return token


async def wx_buyer(client, wechat, sql, name: str = "alice", phone: str | None = "13800138000") -> str:
    """A WeChat login (openid `o-<name>`) with a bound phone."""
    wechat.add_code(f"code-{name}", f"o-{name}", nickname=name)
    token = await login(client, f"code-{name}")
    if phone:
        sql("UPDATE users SET mobile = %s WHERE openid = %s", phone, f"o-{name}")
    return token


async def commit(client, token: str, business_id: int, **extra: typing.Any) -> dict[str, typing.Any]:
    status, body = await call(client, "POST", COMMIT, token, business_id=business_id, **extra)
    assert status == 200, body
    return body


async def order_with_prepay(client, token: str, business_id: int) -> dict[str, typing.Any]:
    """A new order that has a prepay id (pay/pre_order was called for it)."""
    order = await commit(client, token, business_id)
    status, body = await call(client, "POST", PRE_ORDER, token, id=order["id"])
    assert status == 200, body
    return order


def order_row(sql, order_id: int) -> dict[str, typing.Any]:
    return sql("SELECT * FROM orders WHERE id = %s", order_id)[0]


def stock(sql, business_id: int) -> int:
    return sql("SELECT amount FROM businesses WHERE id = %s", business_id)[0]["amount"]


def minutes_pass(sql, wxpay: FakeWeChatPay | None, minutes: float, *order_ids: int) -> None:
    """`minutes` pass for these orders (their times here move back) and at the fake WeChat Pay (its clock
    moves on), so both sides see the orders and their prepays that much older."""
    sql("UPDATE orders SET create_time = create_time - make_interval(secs => %s),"
        " prepaid_at = prepaid_at - make_interval(secs => %s),"
        " prepay_expires_at = prepay_expires_at - make_interval(secs => %s) WHERE id = ANY(%s)",
        minutes * 60, minutes * 60, minutes * 60, list(order_ids))
    if wxpay is not None:
        wxpay.advance(minutes)
