"""Order upkeep: unpaid orders time out (closed at WeChat Pay), lost notifications are found by orderquery,
orders ended right after their prepay are closed at WeChat Pay once it allows."""

import asyncio
import logging

import pytest

from jiandong.services import orders
from jiandong.store.kv import rkey
from jiandong.tasks.orders import order_round
from tests.fakes import wechat as fake_wechat
from tests.helpers.api import call
from tests.helpers.merchants import BAD_SIGN, CLOSE, HTTP_500, QUERY
from tests.helpers.orders import (
    CANCEL,
    CLOSE_WAIT_MINUTES,
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
from tests.helpers.waiting import WAIT, until


def outcomes(sql) -> list[tuple[str, str]]:
    return [(r["source"], r["outcome"]) for r in sql("SELECT source, outcome FROM payment_notifications ORDER BY id")]


async def test_background_loop_times_out_and_reconciles(make_client, wechat, merchant, sql, redis_sync, settings):
    configured = {**fake_wechat.settings_for(wechat), **merchant.settings()}
    # The orders are arranged where no round runs (its first is a minute away): a round already under way
    # when the paid one is paid and the clock moves would find that one due but not yet known paid.
    arranging = await make_client(**configured)
    products = [add_product(sql, title=f"业务{i}") for i in range(4)]
    token = await wx_buyer(arranging, wechat, sql)
    paid = await order_with_prepay(arranging, token, products[0])
    expired = await order_with_prepay(arranging, token, products[1])
    expired_without_prepay = await commit(arranging, token, products[2])
    fresh = await order_with_prepay(arranging, token, products[3])
    payment = merchant.pay(paid["order_no"])  # paid, but the notification never arrives
    minutes_pass(sql, merchant, 31, paid["id"], expired["id"], expired_without_prepay["id"])
    client = await make_client(**configured, reconcile_interval=0.05)

    def done() -> bool:
        rows = {r["id"]: r["status"] for r in sql("SELECT id, status FROM orders")}
        return rows[paid["id"]] == 1 and rows[expired["id"]] == 2 and rows[expired_without_prepay["id"]] == 2

    await until(done, "the upkeep loop")
    assert order_row(sql, fresh["id"])["status"] == 0
    # The unpaid order with a prepay is closed at WeChat; the one without was never there.
    assert merchant.state(expired["order_no"]) == "CLOSED"
    assert [sent.out_trade_no for sent in merchant.sent(CLOSE)] == [expired["order_no"]]
    assert [stock(sql, p) for p in products] == [9, 10, 10, 9]
    assert order_row(sql, expired["id"])["closed_at"] is not None
    # The paid one: applied exactly like a notification, from the orderquery answer.
    row = order_row(sql, paid["id"])
    assert row["transaction_id"] == payment.transaction_id and row["pay_amount"] == 19900
    assert sql("SELECT order_id, source, outcome FROM payment_notifications") == [
        {"order_id": paid["id"], "source": "orderquery", "outcome": "paid"}]
    assert len(sql("SELECT id FROM member_extensions")) == 1
    info = (await call(client, "GET", "/api/v1/user/info", token))[1]
    assert info["member_status"] == 1
    # The loop ran under the lease.
    assert redis_sync.get(rkey(settings, "lease", "orders"))


@pytest.fixture
async def app(merchant_client):
    # The merchant_client's loop runs only every 60 s: the tests run rounds themselves.
    return merchant_client.server.app


async def test_a_paid_order_is_found_by_reconciliation(merchant_client, app, wechat, merchant, sql):
    token = await wx_buyer(merchant_client, wechat, sql)
    order = await order_with_prepay(merchant_client, token, add_product(sql))
    unpaid = await order_with_prepay(merchant_client, token, add_product(sql, title="另一个"))
    await order_round(app)
    assert order_row(sql, order["id"])["status"] == 0
    merchant.pay(order["order_no"])
    await order_round(app)
    assert order_row(sql, order["id"])["status"] == 1 and order_row(sql, unpaid["id"])["status"] == 0
    assert len(sql("SELECT id FROM member_extensions")) == 1
    queries = merchant.count(QUERY)
    # A later notification is a duplicate; a later round no longer asks about the paid order.
    assert (await merchant.notify(merchant_client, order["order_no"]))[1]
    await order_round(app)
    assert merchant.count(QUERY) == queries + 1
    assert merchant.sent(QUERY)[-1].out_trade_no == unpaid["order_no"]
    assert len(sql("SELECT id FROM member_extensions")) == 1
    assert outcomes(sql) == [("orderquery", "paid"), ("notify", "duplicate")]


async def test_reconciliation_and_a_notification_at_once_apply_once(merchant_client, app, wechat, merchant, sql):
    token = await wx_buyer(merchant_client, wechat, sql)
    order = await order_with_prepay(merchant_client, token, add_product(sql))
    merchant.pay(order["order_no"])
    results = await asyncio.gather(
        merchant.notify(merchant_client, order["order_no"]), orders.reconcile_order(app, order["order_no"]),
        order_round(app), merchant.notify(merchant_client, order["order_no"]),
    )
    assert results[0][1] and results[3][1]
    assert len(sql("SELECT id FROM member_extensions")) == 1
    assert [r["outcome"] for r in sql("SELECT outcome FROM payment_notifications")].count("paid") == 1


async def test_reconciliation_survives_a_failing_query(merchant_client, app, wechat, merchant, sql):
    token = await wx_buyer(merchant_client, wechat, sql)
    first = await order_with_prepay(merchant_client, token, add_product(sql))
    second = await order_with_prepay(merchant_client, token, add_product(sql, title="另一个"))
    paid = merchant.pay(first["order_no"])
    merchant.pay(second["order_no"])
    merchant.fail(QUERY, HTTP_500)
    await order_round(app)
    assert order_row(sql, first["id"])["status"] == 0 and order_row(sql, second["id"])["status"] == 1
    # A forged "paid" answer (its signature is not WeChat Pay's) is not believed, nor recorded.
    merchant.fail(QUERY, BAD_SIGN)
    await order_round(app)
    assert order_row(sql, first["id"])["status"] == 0 and outcomes(sql) == [("orderquery", "paid")]
    await order_round(app)
    row = order_row(sql, first["id"])
    assert row["status"] == 1 and row["transaction_id"] == paid.transaction_id
    assert outcomes(sql) == [("orderquery", "paid")] * 2


async def test_expiry_waits_for_wechat_to_close(merchant_client, app, wechat, merchant, sql):
    token = await wx_buyer(merchant_client, wechat, sql)
    product = add_product(sql)
    order = await order_with_prepay(merchant_client, token, product)
    minutes_pass(sql, merchant, 29, order["id"])
    await order_round(app)
    assert order_row(sql, order["id"])["status"] == 0 and merchant.count(CLOSE) == 0
    minutes_pass(sql, merchant, 2, order["id"])
    merchant.fail(CLOSE, "SYSTEMERROR")
    await order_round(app)
    # Not closed at WeChat, so not timed out here: it could still be paid.
    assert order_row(sql, order["id"])["status"] == 0 and stock(sql, product) == 9
    await order_round(app)
    assert order_row(sql, order["id"])["status"] == 2 and stock(sql, product) == 10
    assert merchant.state(order["order_no"]) == "CLOSED" and merchant.count(CLOSE) == 2
    # Timed out for good: it can no longer be paid or cancelled.
    status, body = await call(merchant_client, "POST", PRE_ORDER, token, id=order["id"])
    assert (status, body["error_code"]) == (409, 60005)


async def test_expiry_of_an_order_paid_at_the_last_moment(merchant_client, app, wechat, merchant, sql):
    token = await wx_buyer(merchant_client, wechat, sql)
    product = add_product(sql)
    order = await order_with_prepay(merchant_client, token, product)
    # Paid just before its time_expire (v3's fake holds the payer to it), found due a minute later.
    minutes_pass(sql, merchant, 29.5, order["id"])
    merchant.pay(order["order_no"])
    minutes_pass(sql, merchant, 1.5, order["id"])
    # The query in the same round fails, so the expiry meets the paid order first: closeorder says ORDERPAID.
    merchant.fail(QUERY, "SYSTEMERROR")
    await order_round(app)
    row = order_row(sql, order["id"])
    assert row["status"] == 1 and stock(sql, product) == 9
    assert merchant.count(CLOSE) == 1 and len(sql("SELECT id FROM member_extensions")) == 1


async def test_expiry_with_dev_payments(client, sql):
    token = await dev_buyer(client, sql)
    product = add_product(sql)
    order = await order_with_prepay(client, token, product)
    minutes_pass(sql, None, 31, order["id"])
    await order_round(client.server.app)
    assert order_row(sql, order["id"])["status"] == 2 and stock(sql, product) == 10


# -- orders ended before WeChat Pay lets them be closed -----------------------------------------

async def test_an_order_cancelled_right_after_its_prepay_is_closed_at_wechat_by_a_later_round(
    merchant_client, app, wechat, merchant, sql
):
    token = await wx_buyer(merchant_client, wechat, sql)
    product = add_product(sql)
    order = await order_with_prepay(merchant_client, token, product)
    assert (await call(merchant_client, "POST", CANCEL, token, id=order["id"]))[0] == 200
    assert order_row(sql, order["id"])["status"] == 5 and stock(sql, product) == 10
    await order_round(app)
    # Too soon for closeorder (§3.5; our rule for v3 as well): not asked, so not refused.
    assert merchant.count(CLOSE) == 0 and merchant.state(order["order_no"]) == "NOTPAY"
    minutes_pass(sql, merchant, CLOSE_WAIT_MINUTES, order["id"])
    await order_round(app)
    assert merchant.count(CLOSE) == 1 and merchant.state(order["order_no"]) == "CLOSED"
    row = order_row(sql, order["id"])
    assert row["status"] == 5 and row["wechat_closed_at"] is not None and stock(sql, product) == 10
    # Closed for good: later rounds leave it alone.
    await order_round(app)
    assert merchant.count(CLOSE) == 1


@pytest.mark.parametrize("notified", [True, False], ids=["notified", "notification-lost"])
async def test_a_payment_between_the_cancel_and_the_close_at_wechat_is_applied_once(
    merchant_client, app, wechat, merchant, sql, notified
):
    token = await wx_buyer(merchant_client, wechat, sql)
    product = add_product(sql)
    order = await order_with_prepay(merchant_client, token, product)
    order_no = order["order_no"]
    assert (await call(merchant_client, "POST", CANCEL, token, id=order["id"]))[0] == 200
    # The pay sheet was still open: the player pays the cancelled order.
    paid = merchant.pay(order_no)
    if notified:
        for _ in range(2):
            assert (await merchant.notify(merchant_client, order_no))[1]
    minutes_pass(sql, merchant, CLOSE_WAIT_MINUTES, order["id"])
    await order_round(app)
    # A paid order is not closed; one whose notification is lost is found paid by the close (ORDERPAID).
    assert merchant.count(CLOSE) == (0 if notified else 1)
    await order_round(app)
    if not notified:
        assert (await merchant.notify(merchant_client, order_no))[1]
    row = order_row(sql, order["id"])
    assert row["status"] == 1 and row["transaction_id"] == paid.transaction_id
    assert stock(sql, product) == 9 and len(sql("SELECT id FROM member_extensions")) == 1
    paid_by = "notify" if notified else "orderquery"
    assert outcomes(sql) == [(paid_by, "paid: order had status 5"), ("notify", "duplicate")]
    assert (await call(merchant_client, "GET", "/api/v1/user/info", token))[1]["member_status"] == 1


# -- what the round logs -----------------------------------------------------------------------

async def test_no_missing_notification_is_reported_for_one_applied_while_the_query_was_in_flight(
    merchant_client, app, wechat, merchant, sql, caplog
):
    token = await wx_buyer(merchant_client, wechat, sql)
    order = await order_with_prepay(merchant_client, token, add_product(sql))
    merchant.pay(order["order_no"])
    held = merchant.hold(QUERY)
    with caplog.at_level(logging.WARNING, logger="jiandong"):
        upkeep = asyncio.create_task(order_round(app))
        await asyncio.wait_for(held.arrived.wait(), WAIT)
        assert (await merchant.notify(merchant_client, order["order_no"]))[1]
        held.release()
        await asyncio.wait_for(upkeep, WAIT)
    assert outcomes(sql) == [("notify", "paid"), ("orderquery", "duplicate")]
    assert [r.getMessage() for r in caplog.records if "notification is missing" in r.getMessage()] == []
    # One the query itself applies is reported.
    lost = await order_with_prepay(merchant_client, token, add_product(sql, title="另一个"))
    merchant.pay(lost["order_no"])
    with caplog.at_level(logging.WARNING, logger="jiandong"):
        await order_round(app)
    assert [r.getMessage() for r in caplog.records if "notification is missing" in r.getMessage()] == [
        f"order {lost['order_no']} was found paid by reconciliation (its notification is missing)"]
    assert len(sql("SELECT id FROM member_extensions")) == 2


def error_line(merchant, op: str, order_no: str) -> str:
    """The one line a client logs for WeChat Pay's SYSTEMERROR (v3: SYSTEM_ERROR) to `op` for the order."""
    if merchant.version == "v2":
        path = {CLOSE: "/pay/closeorder", QUERY: "/pay/orderquery"}[op]
        return f"WeChat Pay {path} for order {order_no}: err_code SYSTEMERROR (系统错误)"
    path = f"/v3/pay/transactions/out-trade-no/{order_no}" + ("/close" if op == CLOSE else f"?mchid={merchant.mch_id}")
    return f"WeChat Pay v3 {path} for order {order_no}: HTTP 500 SYSTEM_ERROR (系统繁忙，请稍后重试)"


@pytest.mark.parametrize("op", [CLOSE, QUERY])
async def test_a_wechat_error_in_a_round_is_one_log_line(merchant_client, app, wechat, merchant, sql, caplog, op):
    token = await wx_buyer(merchant_client, wechat, sql)
    order = await order_with_prepay(merchant_client, token, add_product(sql))
    minutes_pass(sql, merchant, 31, order["id"])  # the round queries it, then times it out (closeorder)
    merchant.fail(op, "SYSTEMERROR")
    with caplog.at_level(logging.DEBUG, logger="jiandong"):
        await order_round(app)
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert warnings == [error_line(merchant, op, order["order_no"])]
    assert [r for r in caplog.records if r.exc_info] == []
    # Routine: the next round finishes the work.
    await order_round(app)
    assert order_row(sql, order["id"])["status"] == 2
