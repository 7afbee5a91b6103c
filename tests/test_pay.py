"""Endpoints 14 and 15 (pay/pre_order, pay/notify) against the fake WeChat Pay, and dev payments.

The payment tests run against a merchant on API v2 and one on API v3 (the `merchant` fixture,
tests/helpers/merchants.py); those marked "v2 only" test what only v2 has (XML, its signatures, its fake's rules),
each next to its v3 form where v3 has one.
"""

import asyncio
import datetime as dt
import hashlib
import json
import logging
from zoneinfo import ZoneInfo

import psycopg2
import pytest
from wechatpy.pay.utils import calculate_signature, calculate_signature_hmac

from jiandong.integrations.wechat import dev_openid
from jiandong.integrations.wechatpay import PayError
from jiandong.keys import wechatpay_key
from jiandong.lib.cleaning import clean_text
from tests.fakes import wechat as fake_wechat
from tests.fakes import wechatpay as fake_pay
from tests.fakes import wechatpay_v3 as fake_v3
from tests.fakes.wechatpay import UNIFIED_ORDER, to_xml, wx_sign
from tests.helpers import merchants
from tests.helpers.api import call
from tests.helpers.merchants import BAD_SIGN, HTTP_500, PREPAY
from tests.helpers.orders import (
    BY_USER,
    PRE_ORDER,
    add_product,
    commit,
    dev_buyer,
    minutes_pass,
    order_row,
    stock,
    wx_buyer,
)
from tests.helpers.realtime import WAIT

NOTIFY = "/api/v1/pay/notify"
DEV_COMPLETE = "/api/v1/pay/dev/complete"
BEIJING = ZoneInfo("Asia/Shanghai")
JSAPI_KEYS = {"appId", "timeStamp", "timestamp", "nonceStr", "package", "signType", "paySign"}
# The signType of the JSAPI parameters (v2: the merchant's default, MD5).
SIGN_TYPES = {"v2": "MD5", "v3": "RSA"}
# How each version's notifications are posted.
CONTENT_TYPES = {"v2": "text/xml", "v3": "application/json"}


async def start_payment(client, wechat, sql, name: str = "alice", **product: object):
    """A buyer, a product and an order with a prepay id: (token, product id, order, JSAPI params)."""
    product_id = add_product(sql, **product)
    token = await wx_buyer(client, wechat, sql, name)
    order = await commit(client, token, product_id)
    status, params = await call(client, "POST", PRE_ORDER, token, id=order["id"])
    assert status == 200, params
    return token, product_id, order, params


async def v3_merchant_client(make_client, wechat, aiohttp_server, tmp_path):
    """For a v3-only test: a v3 merchant and an app with it."""
    merchant = await merchants.start("v3", aiohttp_server, tmp_path)
    return merchant, await make_client(**fake_wechat.settings_for(wechat), **merchant.settings())


def membership(sql, openid: str = "o-alice"):
    return sql("SELECT member_status, member_expire_time FROM users WHERE openid = %s", openid)[0]


def extensions(sql):
    return sql("SELECT order_id, user_id, valid_from, valid_until, valid_until = valid_from + interval '1 year'"
               " AS one_year FROM member_extensions ORDER BY id")


def notifications(sql):
    return sql("SELECT order_id, out_trade_no, source, outcome FROM payment_notifications ORDER BY id")


async def dropped(client, reason: str) -> float:
    """How many payment notifications were dropped (not kept) for `reason`, by the metrics."""
    metrics = await (await client.get("/metrics")).text()
    line = f'jiandong_notifications_dropped_total{{kind="payment",reason="{reason}"}} '
    found = [row[len(line):] for row in metrics.splitlines() if row.startswith(line)]
    return float(found[0]) if found else 0.0


# -- the whole flow -----------------------------------------------------------------------------

async def test_full_flow_commit_pre_order_notify(merchant_client, wechat, merchant, sql, settings):
    """commit -> pre_order -> notify -> user/info shows the membership -> order/by_user shows it paid."""
    token, product, order, params = await start_payment(merchant_client, wechat, sql)
    order_no = order["order_no"]

    # pre_order: the JSAPI parameters, signed as the version signs them.
    assert set(params) == JSAPI_KEYS
    assert params["appId"] == merchant.appid and params["timestamp"] == params["timeStamp"]
    assert params["signType"] == SIGN_TYPES[merchant.version] and len(params["nonceStr"]) == 32
    assert params["package"] == f"prepay_id={merchant.prepay_id(order_no)}"
    merchant.check_pay_sign(params)
    # What the prepay asked.
    [sent] = merchant.sent(PREPAY)
    row = order_row(sql, order["id"])
    assert sent.openid == "o-alice" and sent.total == 19900
    assert sent.out_trade_no == order_no and sent.description == "建东体育年度会员"
    assert sent.notify_url == "https://club.example.com/api/v1/pay/notify"
    assert merchant.client_ips() == ["127.0.0.1"]
    expires = row["create_time"] + dt.timedelta(minutes=30)
    assert sent.time_expire == expires.replace(microsecond=0)
    assert row["prepay_id"] == merchant.prepay_id(order_no) and row["prepay_expires_at"] > row["create_time"]

    # user/info as the page showed it before paying (and as this process keeps it for a while).
    assert (await call(merchant_client, "GET", "/api/v1/user/info", token))[1]["member_status"] == 0
    # The payer pays; WeChat notifies.
    paid = merchant.pay(order_no)
    assert (await merchant.notify(merchant_client, order_no))[1] is True

    [ext] = extensions(sql)
    assert ext["order_id"] == order["id"] and ext["one_year"]
    user = membership(sql)
    assert user["member_status"] == 1 and user["member_expire_time"] == ext["valid_until"]
    status, info = await call(merchant_client, "GET", "/api/v1/user/info", token)
    assert status == 200 and info["member_status"] == 1 and info["is_member"] == 1
    assert info["member_expire_time"] == ext["valid_until"].astimezone(settings.tz).strftime("%Y-%m-%d %H:%M:%S")

    status, page = await call(merchant_client, "GET", BY_USER, token)
    [listed] = page["data"]
    assert listed["status"] == 1 and listed["pay_amount"] == "199.00" and listed["pay_way"] == "微信支付"
    assert listed["pay_time"] == paid.paid_at.astimezone(settings.tz).strftime("%Y-%m-%d %H:%M:%S")
    row = order_row(sql, order["id"])
    assert row["transaction_id"] == paid.transaction_id and row["pay_time"] == paid.paid_at
    assert notifications(sql) == [{"order_id": order["id"], "out_trade_no": order_no, "source": "notify",
                                   "outcome": "paid"}]
    assert stock(sql, product) == 9
    # A paid order cannot be paid again.
    status, body = await call(merchant_client, "POST", PRE_ORDER, token, id=order["id"])
    assert (status, body) == (409, {"msg": "订单已经支付过", "error_code": 60001, "request_url": PRE_ORDER})


# v2 only: unifiedorder's own fields (trade_type, sign_type, time_start, times as yyyyMMddHHmmss); v3's prepay
# body is checked in test_pay_v3.py.
async def test_unifiedorder_is_asked_in_v2_terms(pay_client, wechat, wxpay, sql):
    _, _, order, params = await start_payment(pay_client, wechat, sql)
    signed = {k: params[k] for k in ("appId", "timeStamp", "nonceStr", "package", "signType")}
    assert params["signType"] == "MD5" and params["paySign"] == calculate_signature(signed, wxpay.key)
    [(_, sent)] = [c for c in wxpay.calls if c[0] == UNIFIED_ORDER]
    row = order_row(sql, order["id"])
    assert sent["trade_type"] == "JSAPI" and sent["openid"] == "o-alice" and sent["total_fee"] == "19900"
    assert sent["out_trade_no"] == order["order_no"] and sent["sign_type"] == "MD5"
    assert sent["spbill_create_ip"] == "127.0.0.1"
    expires = row["create_time"] + dt.timedelta(minutes=30)
    assert sent["time_start"] == row["create_time"].astimezone(BEIJING).strftime("%Y%m%d%H%M%S")
    assert sent["time_expire"] == expires.astimezone(BEIJING).strftime("%Y%m%d%H%M%S")


# v2 only: HMAC-SHA256 is one of v2's signature types (v3 signs with RSA).
async def test_hmac_sha256_end_to_end(make_client, wechat, wxpay, sql):
    client = await make_client(**fake_wechat.settings_for(wechat), **fake_pay.settings_for(wxpay),
                               pay_sign_type="HMAC-SHA256")
    _, _, order, params = await start_payment(client, wechat, sql)
    assert params["signType"] == "HMAC-SHA256"
    signed = {k: params[k] for k in ("appId", "timeStamp", "nonceStr", "package", "signType")}
    assert params["paySign"] == calculate_signature_hmac(signed, wxpay.key)
    assert wxpay.calls[-1][1]["sign_type"] == "HMAC-SHA256"
    wxpay.pay(order["order_no"])
    assert (await wxpay.notify(client, order["order_no"]))[1]["return_code"] == "SUCCESS"
    assert order_row(sql, order["id"])["status"] == 1 and len(extensions(sql)) == 1


# -- notifications ------------------------------------------------------------------------------

async def test_hundred_concurrent_identical_notifications(merchant_client, wechat, merchant, sql):
    _, _, order, _ = await start_payment(merchant_client, wechat, sql)
    merchant.pay(order["order_no"])
    payload = merchant.notification(order["order_no"])
    results = await asyncio.gather(*(merchant.notify(merchant_client, order["order_no"], payload)
                                     for _ in range(100)))
    # Every one answered as taken (merchant.notify checked the answer's form: v2 200 SUCCESS, v3 204).
    assert [taken for _, taken in results] == [True] * 100 and len(set(results)) == 1
    assert order_row(sql, order["id"])["status"] == 1
    [ext] = extensions(sql)
    assert ext["one_year"] and membership(sql)["member_expire_time"] == ext["valid_until"]
    outcomes = [n["outcome"] for n in notifications(sql)]
    assert outcomes.count("paid") == 1 and outcomes.count("duplicate") == 99


async def test_a_later_duplicate_changes_nothing(merchant_client, wechat, merchant, sql):
    _, _, order, _ = await start_payment(merchant_client, wechat, sql)
    merchant.pay(order["order_no"])
    first = await merchant.notify(merchant_client, order["order_no"])
    before = (order_row(sql, order["id"]), membership(sql), extensions(sql))
    # WeChat's retry carries a new nonce and so a new signature: answered as the first was.
    assert await merchant.notify(merchant_client, order["order_no"]) == first and first[1] is True
    assert (order_row(sql, order["id"]), membership(sql), extensions(sql)) == before


async def test_a_retry_is_answered_while_the_order_row_is_locked(merchant_client, wechat, merchant, sql, database_url):
    """Retries of an applied payment are recorded without the row lock: they never queue on one another."""
    _, _, order, _ = await start_payment(merchant_client, wechat, sql)
    merchant.pay(order["order_no"])
    await merchant.notify(merchant_client, order["order_no"])
    holder = psycopg2.connect(database_url)
    try:
        with holder.cursor() as cur:
            # The lock a notification being settled holds.
            cur.execute("SELECT 1 FROM orders WHERE id = %s FOR NO KEY UPDATE", (order["id"],))
        # Without the lock-free path this would wait for the holder, which only lets go below.
        _, taken = await asyncio.wait_for(merchant.notify(merchant_client, order["order_no"]), WAIT)
    finally:
        holder.rollback()
        holder.close()
    assert taken is True
    assert [n["outcome"] for n in notifications(sql)] == ["paid", "duplicate"]
    assert len(extensions(sql)) == 1


async def test_a_retry_that_disagrees_with_the_paid_order_is_not_a_duplicate(merchant_client, wechat, merchant, sql):
    _, _, order, _ = await start_payment(merchant_client, wechat, sql)
    merchant.pay(order["order_no"])
    await merchant.notify(merchant_client, order["order_no"])
    payload = merchant.notification(order["order_no"], total=1)
    assert (await merchant.notify(merchant_client, order["order_no"], payload))[1] is False
    assert [n["outcome"] for n in notifications(sql)] == ["paid", "rejected: total_fee 1 is not the order's 19900"]
    assert len(extensions(sql)) == 1


async def test_a_paid_order_reporting_another_transaction_stays_paid_by_the_first(
    merchant_client, wechat, merchant, sql, caplog
):
    _, _, order, _ = await start_payment(merchant_client, wechat, sql)
    paid = merchant.pay(order["order_no"])
    await merchant.notify(merchant_client, order["order_no"])
    before = (order_row(sql, order["id"]), membership(sql), extensions(sql))
    payload = merchant.notification(order["order_no"], transaction_id="4200000000000000000000000000000001")
    with caplog.at_level(logging.ERROR, logger="jiandong.services.payments"):
        assert (await merchant.notify(merchant_client, order["order_no"], payload))[1] is True
    # Acknowledged (WeChat would retry it for a day), nothing applied again, and told to a human.
    assert (order_row(sql, order["id"]), membership(sql), extensions(sql)) == before
    assert before[0]["transaction_id"] == paid.transaction_id
    assert [n["outcome"] for n in notifications(sql)] == ["paid", "duplicate: another transaction_id"]
    assert [r["transaction_id"] for r in sql("SELECT transaction_id FROM payment_notifications ORDER BY id")] == [
        paid.transaction_id, "4200000000000000000000000000000001"]
    assert f"was paid by transaction {paid.transaction_id} and now reports transaction 42000000" in caplog.text


async def test_a_transaction_that_paid_another_order_pays_no_second_one(merchant_client, wechat, merchant, sql):
    _, _, first, _ = await start_payment(merchant_client, wechat, sql)
    _, second_product, second, _ = await start_payment(merchant_client, wechat, sql, title="另一个")
    paid = merchant.pay(first["order_no"])
    await merchant.notify(merchant_client, first["order_no"])
    # (Paid at WeChat too, so that its notification is one of a success: v3's carries the trade_state.)
    merchant.pay(second["order_no"])
    before = (membership(sql), extensions(sql), stock(sql, second_product))
    # A notification for the second order naming the first one's transaction: one payment, two orders.
    payload = merchant.notification(second["order_no"], transaction_id=paid.transaction_id)
    assert (await merchant.notify(merchant_client, second["order_no"], payload))[1] is False
    row = order_row(sql, second["id"])
    assert (row["status"], row["transaction_id"], row["pay_time"]) == (0, None, None)
    assert (membership(sql), extensions(sql), stock(sql, second_product)) == before
    assert [(n["order_id"], n["outcome"]) for n in notifications(sql)] == [
        (first["id"], "paid"), (second["id"], "rejected: transaction_id belongs to another order")]


@pytest.mark.parametrize(
    "odd, reason",
    [
        ({"without": ("transaction_id",)}, "rejected: no valid transaction_id"),
        ({"transaction_id": "4" * 65}, "rejected: no valid transaction_id"),
        # v2: text that is no whole number of fen; v3: a JSON string, a JSON number that is not an integer.
        ({"total": "19900.00"}, "rejected: no valid total_fee"),
        ({"total": 19900.0}, "rejected: no valid total_fee"),
        # Digits, but not ASCII ones (full-width): int() would take them.
        ({"total": "１９９００"}, "rejected: no valid total_fee"),
    ],
    ids=["no transaction_id", "transaction_id of 65", "total 19900.00", "total 19900.0", "total full-width"],
)
async def test_a_notification_without_a_valid_transaction_or_amount_is_refused(
    merchant_client, wechat, merchant, sql, odd, reason
):
    _, product, order, _ = await start_payment(merchant_client, wechat, sql)
    merchant.pay(order["order_no"])
    payload = merchant.odd_notification(order["order_no"], **odd)
    assert (await merchant.notify(merchant_client, order["order_no"], payload))[1] is False
    _assert_nothing_changed(sql, order, product)
    assert [n["outcome"] for n in notifications(sql)] == [reason]


async def test_a_notification_for_no_order_is_counted_not_kept(merchant_client, wechat, merchant, sql):
    _, product, order, _ = await start_payment(merchant_client, wechat, sql)
    merchant.pay(order["order_no"])
    payload = merchant.notification(order["order_no"], out_trade_no_given="9" * 100, transaction_id="4" * 64)
    assert (await merchant.notify(merchant_client, order["order_no"], payload))[1] is False
    # Anyone may post there: a message about no order of ours is no row, only a count by reason.
    assert notifications(sql) == []
    _assert_nothing_changed(sql, order, product)
    assert await dropped(merchant_client, "unknown_order") == 1


async def test_a_notification_without_a_currency_is_in_yuan_and_a_64_character_transaction_is_taken(
    merchant_client, wechat, merchant, sql
):
    _, _, order, _ = await start_payment(merchant_client, wechat, sql)
    merchant.pay(order["order_no"])
    payload = merchant.odd_notification(order["order_no"], without=("currency",), transaction_id="4" * 64)
    assert (await merchant.notify(merchant_client, order["order_no"], payload))[1] is True
    assert order_row(sql, order["id"])["transaction_id"] == "4" * 64 and len(extensions(sql)) == 1


def _assert_nothing_changed(sql, order, product):
    row = order_row(sql, order["id"])
    assert (row["status"], row["transaction_id"], row["pay_time"], row["pay_amount"]) == (0, None, None, 0)
    assert extensions(sql) == [] and membership(sql) == {"member_status": 0, "member_expire_time": None}
    assert stock(sql, product) == 9


# How a notification is made not to hold. Where the server cannot tell which order it names, it is not kept
# but counted by reason: (None, reason).
TAMPERS = {
    "signed with another key": lambda m, no: m.notification(no, forged=True),
    "another amount": lambda m, no: m.notification(no, total=1),
    "another appid": lambda m, no: m.notification(no, appid="wx0ther0000000000"),
    "another mch_id": lambda m, no: m.notification(no, mch_id="1999999999"),
    "a failed payment": lambda m, no: m.odd_notification(no, failed=True),
    "another order": lambda m, no: m.notification(no, out_trade_no_given="20990101000000FFFFFFFFFFFFFFFF"),
    "another currency": lambda m, no: m.odd_notification(no, currency="USD"),
}


@pytest.mark.parametrize(
    "tamper, outcome",
    [
        # v3 verifies the signature before it decrypts anything: a forgery names no order it could be kept with.
        ("signed with another key", {"v2": "rejected: bad signature", "v3": (None, "signature")}),
        ("another amount", "rejected: total_fee 1 is not the order's 19900"),
        ("another appid", "rejected: appid is not ours"),
        ("another mch_id", "rejected: mch_id is not ours"),
        ("a failed payment", "rejected: result_code is not SUCCESS"),
        ("another order", (None, "unknown_order")),
        ("another currency", "rejected: fee_type is not CNY"),
    ],
    ids=list(TAMPERS),
)
async def test_notifications_failing_verification_are_refused(merchant_client, wechat, merchant, sql, tamper,
                                                              outcome):
    _, product, order, _ = await start_payment(merchant_client, wechat, sql)
    merchant.pay(order["order_no"])
    payload = TAMPERS[tamper](merchant, order["order_no"])
    assert (await merchant.notify(merchant_client, order["order_no"], payload))[1] is False
    _assert_nothing_changed(sql, order, product)
    if isinstance(outcome, dict):
        outcome = outcome[merchant.version]
    if isinstance(outcome, tuple):
        # About no order of ours (or none it could tell): not kept, counted.
        assert notifications(sql) == []
        assert await dropped(merchant_client, outcome[1]) == 1
        return
    assert [n["outcome"] for n in notifications(sql)] == [outcome]
    [recorded] = sql("SELECT outcome, raw, raw_sha256, raw_size, source FROM payment_notifications")
    assert recorded["source"] == "notify"
    # Kept: a prefix, the digest and the size of what was read, never the whole of it (anyone may post there).
    raw = merchant.kept_raw(payload)
    assert recorded["raw"] == clean_text(raw.decode()[:512])
    assert (recorded["raw_sha256"], recorded["raw_size"]) == (hashlib.sha256(raw).hexdigest(), len(raw))


# v2 only: return_code is v2's envelope; v3's form is the event type, next.
async def test_a_notification_with_return_code_fail_is_refused(pay_client, wechat, wxpay, sql):
    _, product, order, _ = await start_payment(pay_client, wechat, sql)
    wxpay.pay(order["order_no"])
    body = wxpay.notification(order["order_no"], return_code="FAIL")
    status, answer = await wxpay.notify(pay_client, order["order_no"], body)
    assert (status, answer) == (200, {"return_code": "FAIL", "return_msg": "return_code is not SUCCESS"})
    _assert_nothing_changed(sql, order, product)
    [recorded] = sql("SELECT outcome, raw, raw_sha256, raw_size, source FROM payment_notifications")
    assert recorded["outcome"] == "rejected: return_code is not SUCCESS" and recorded["source"] == "notify"
    assert recorded["raw"] == clean_text(body.decode()[:512])
    assert (recorded["raw_sha256"], recorded["raw_size"]) == (hashlib.sha256(body).hexdigest(), len(body))


# v3 only: the event type is v3's (its form of v2's return_code, above).
@pytest.mark.parametrize("event_type", ["TRANSACTION.FAIL", "REFUND.SUCCESS"])
async def test_a_v3_notification_of_another_event_is_refused(make_client, wechat, aiohttp_server, tmp_path, sql,
                                                             event_type):
    merchant, client = await v3_merchant_client(make_client, wechat, aiohttp_server, tmp_path)
    _, product, order, _ = await start_payment(client, wechat, sql)
    merchant.pay(order["order_no"])
    payload = merchant.fake.notification(order["order_no"], event_type=event_type)
    assert await merchant.notify(client, order["order_no"], payload) == (400, False)
    _assert_nothing_changed(sql, order, product)
    # Refused before its resource is decrypted: no order to keep it with, counted.
    assert notifications(sql) == [] and await dropped(client, "event_type") == 1


async def test_an_unsigned_or_altered_notification_is_refused(merchant_client, wechat, merchant, sql):
    _, product, order, _ = await start_payment(merchant_client, wechat, sql)
    merchant.pay(order["order_no"])
    for payload in (merchant.altered(order["order_no"]), merchant.unsigned(order["order_no"])):
        assert (await merchant.notify(merchant_client, order["order_no"], payload))[1] is False
    _assert_nothing_changed(sql, order, product)
    if merchant.version == "v2":
        # The XML names the order: kept with it.
        assert [n["outcome"] for n in notifications(sql)] == ["rejected: bad signature"] * 2
    else:
        # Nothing is decrypted before the signature holds: counted, not kept.
        assert notifications(sql) == [] and await dropped(merchant_client, "signature") == 2


# v2 only: XML parsing (v3's malformed bodies are the next test).
@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"{\"return_code\": \"SUCCESS\"}",
        b"<xml><return_code>SUCCESS</return_code><return_code>FAIL</return_code></xml>",
        (b'<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
         b"<xml><return_code>&e;</return_code></xml>"),
        b"<xml>" + b"<a>x</a>" * 7000 + b"</xml>",
        # Control bytes (PostgreSQL refuses a NUL in text): the FAIL reply all the same.
        b"<xml><return_code>SUCCESS</return_code>\x00</xml>",
        b"<xml><return_code>SUCCESS\x00</return_code></xml>",
        b"\x00\x01\x02\xff\xfe",
        b"<xml><return_code><![CDATA[SUCCESS\x00]]></return_code></xml>",
    ],
)
async def test_malformed_notifications_are_refused(pay_client, wechat, wxpay, sql, body):
    _, product, order, _ = await start_payment(pay_client, wechat, sql)
    resp = await pay_client.post(NOTIFY, data=body, headers={"Content-Type": "text/xml"})
    assert resp.status == 200 and resp.content_type == "text/xml"
    answer = fake_pay.parse((await resp.text()).encode())
    assert answer["return_code"] == "FAIL" and answer["return_msg"].startswith("malformed XML")
    _assert_nothing_changed(sql, order, product)
    # It names no order: not kept, counted.
    assert notifications(sql) == []
    metrics = await (await pay_client.get("/metrics")).text()
    assert 'jiandong_notifications_dropped_total{kind="payment",reason="malformed"} 1.0' in metrics


def _sealed(merchant, plaintext: bytes) -> bytes:
    """An envelope of a TRANSACTION.SUCCESS whose resource, sealed with the merchant's APIv3 key, is `plaintext`."""
    key = merchant.fake.api_v3_key
    return json.dumps({"id": "x", "event_type": "TRANSACTION.SUCCESS", "resource_type": "encrypt-resource",
                       "resource": {"algorithm": "AEAD_AES_256_GCM", "original_type": "transaction",
                                    "associated_data": "transaction", "nonce": "0123456789ab",
                                    "ciphertext": fake_v3.aes_gcm_encrypt(key, "0123456789ab", "transaction",
                                                                          plaintext)}}).encode()


# v3 only: JSON envelopes and AES-GCM (v2's malformed XML is the test above). Each body is posted unsigned (refused
# for its signature) and then signed with WeChat's key (refused for what it is).
@pytest.mark.parametrize(
    "body, reason",
    [
        (lambda m: b"", "malformed"),
        (lambda m: b"<xml><return_code>SUCCESS</return_code></xml>", "malformed"),
        (lambda m: b"[]", "malformed"),
        (lambda m: b'{"event_type": "TRANSACTION.SUCCESS", "resource": "x"}', "malformed"),
        (lambda m: b'{"event_type": "TRANSACTION.SUCCESS", "resource": {"algorithm": "AEAD_AES_128_GCM"}}',
         "malformed"),
        (lambda m: b"\x00\x01\x02\xff\xfe", "malformed"),
        (lambda m: b'{"event_type": "TRANSACTION.SUCCESS", "resource": {"algorithm": "AEAD_AES_256_GCM",'
                   b' "nonce": "0123456789ab", "associated_data": "transaction", "ciphertext": "AAAA"}}', "decrypt"),
        (lambda m: _sealed(m, b"[1, 2]"), "malformed"),
        (lambda m: _sealed(m, b"\xff\xfe not JSON"), "malformed"),
    ],
    ids=["empty", "XML", "a list", "resource a string", "another algorithm", "control bytes", "bad ciphertext",
         "resource a list", "resource not JSON"],
)
async def test_malformed_v3_notifications_are_refused(make_client, wechat, aiohttp_server, tmp_path, sql, body,
                                                      reason):
    merchant, client = await v3_merchant_client(make_client, wechat, aiohttp_server, tmp_path)
    _, product, order, _ = await start_payment(client, wechat, sql)
    data = body(merchant)
    fake = merchant.fake
    unsigned = {"Content-Type": "application/json"}
    signed = {**unsigned, **fake.wechatpay_headers(fake.public_key_id, data)}
    for headers in (unsigned, signed):
        resp = await client.post(NOTIFY, data=data, headers=headers)
        assert resp.status == 400 and await resp.json() == {"code": "FAIL", "message": "失败"}
    _assert_nothing_changed(sql, order, product)
    # It names no order: not kept, counted.
    assert notifications(sql) == []
    assert (await dropped(client, "signature"), await dropped(client, reason)) == (1, 1)


# v3 only: v3's form of the NUL rows of the v2 test above (PostgreSQL refuses a NUL in text). XML cannot carry a NUL;
# JSON can ("\u0000"), in a resource WeChat signed and sealed with our key.
@pytest.mark.parametrize("field", ["out_trade_no", "transaction_id"])
async def test_a_v3_notification_with_a_nul_in_its_resource_is_refused(make_client, wechat, aiohttp_server, tmp_path,
                                                                       sql, field):
    merchant, client = await v3_merchant_client(make_client, wechat, aiohttp_server, tmp_path)
    _, product, order, _ = await start_payment(client, wechat, sql)
    paid = merchant.pay(order["order_no"])
    value = {"out_trade_no": order["order_no"], "transaction_id": paid.transaction_id}[field] + "\x00"
    payload = merchant.fake.notification(order["order_no"], **{field: value})
    assert await merchant.notify(client, order["order_no"], payload) == (400, False)
    _assert_nothing_changed(sql, order, product)

async def test_a_notification_over_the_limit_is_refused_before_it_is_read(merchant_client, wechat, merchant, sql):
    _, product, order, _ = await start_payment(merchant_client, wechat, sql)
    resp = await merchant_client.post(NOTIFY, data=b"<xml>" + b" " * (64 * 1024) + b"</xml>",
                                      headers={"Content-Type": CONTENT_TYPES[merchant.version]})
    assert resp.status == 413
    _assert_nothing_changed(sql, order, product)
    assert notifications(sql) == []


async def test_a_payment_for_an_order_ended_meanwhile_is_not_lost(merchant_client, wechat, merchant, sql, caplog):
    _, product, order, _ = await start_payment(merchant_client, wechat, sql)
    merchant.pay(order["order_no"])
    # The order had been timed out here (its stock given back) before the notification came.
    sql("UPDATE orders SET status = 2, closed_at = now() WHERE id = %s", order["id"])
    sql("UPDATE businesses SET amount = amount + 1 WHERE id = %s", product)
    with caplog.at_level(logging.ERROR, logger="jiandong"):
        _, taken = await merchant.notify(merchant_client, order["order_no"])
    assert taken is True
    assert order_row(sql, order["id"])["status"] == 1 and len(extensions(sql)) == 1
    assert stock(sql, product) == 9
    assert notifications(sql)[0]["outcome"] == "paid: order had status 2"
    assert any("PAYMENT FOR AN ENDED ORDER" in r.getMessage() for r in caplog.records)


async def test_renewal_extends_from_the_current_expiry(merchant_client, wechat, merchant, sql):
    await wx_buyer(merchant_client, wechat, sql)
    current = sql("UPDATE users SET member_status = 1, member_expire_time = now() + interval '100 days'"
                  " RETURNING member_expire_time")[0]["member_expire_time"]
    _, _, order, _ = await start_payment(merchant_client, wechat, sql, valid_time=2)
    merchant.pay(order["order_no"])
    assert (await merchant.notify(merchant_client, order["order_no"]))[1] is True
    [ext] = sql("SELECT valid_from, valid_until, valid_until = valid_from + interval '2 years' AS two_years"
                " FROM member_extensions")
    assert ext["valid_from"] == current and ext["two_years"]
    assert membership(sql) == {"member_status": 1, "member_expire_time": ext["valid_until"]}


async def test_an_expired_member_renews_from_now(merchant_client, wechat, merchant, sql):
    await wx_buyer(merchant_client, wechat, sql)
    sql("UPDATE users SET member_status = 1, member_expire_time = now() - interval '30 days'")
    token, _, order, _ = await start_payment(merchant_client, wechat, sql)
    assert (await call(merchant_client, "GET", "/api/v1/user/info", token))[1]["member_status"] == 3
    merchant.pay(order["order_no"])
    assert (await merchant.notify(merchant_client, order["order_no"]))[1] is True
    [ext] = sql("SELECT valid_from > now() - interval '1 hour' AS from_now, valid_until = valid_from +"
                " interval '1 year' AS one_year FROM member_extensions")
    assert ext == {"from_now": True, "one_year": True}
    assert (await call(merchant_client, "GET", "/api/v1/user/info", token))[1]["member_status"] == 1


async def test_two_orders_of_one_user_paid_at_once_add_up(merchant_client, wechat, merchant, sql):
    token = await wx_buyer(merchant_client, wechat, sql)
    first = await commit(merchant_client, token, add_product(sql))
    second = await commit(merchant_client, token, add_product(sql, title="第二份"))
    for order in (first, second):
        assert (await call(merchant_client, "POST", PRE_ORDER, token, id=order["id"]))[0] == 200
        merchant.pay(order["order_no"])
    results = await asyncio.gather(merchant.notify(merchant_client, first["order_no"]),
                                   merchant.notify(merchant_client, second["order_no"]))
    assert [taken for _, taken in results] == [True, True]
    rows = sql("SELECT valid_from, valid_until FROM member_extensions ORDER BY valid_from")
    assert len(rows) == 2 and rows[1]["valid_from"] == rows[0]["valid_until"]
    assert membership(sql)["member_expire_time"] == rows[1]["valid_until"]


# -- pre_order ------------------------------------------------------------------------------------

async def test_pre_order_reuses_a_valid_prepay(merchant_client, wechat, merchant, sql):
    token, _, order, params = await start_payment(merchant_client, wechat, sql)
    again = await call(merchant_client, "POST", PRE_ORDER, token, id=order["id"])
    assert again[0] == 200 and again[1]["package"] == params["package"]
    assert again[1]["nonceStr"] != params["nonceStr"]
    merchant.check_pay_sign(again[1])
    assert merchant.count(PREPAY) == 1
    # Close to its two hours, the prepay id is asked for again (WeChat answers the same one).
    sql("UPDATE orders SET prepay_expires_at = now() + interval '5 minutes'")
    third = await call(merchant_client, "POST", PRE_ORDER, token, id=order["id"])
    assert third[0] == 200 and third[1]["package"] == params["package"] and merchant.count(PREPAY) == 2
    assert order_row(sql, order["id"])["prepay_expires_at"] > order_row(sql, order["id"])["create_time"]


async def test_concurrent_pre_orders_give_one_prepay(merchant_client, wechat, merchant, sql):
    token = await wx_buyer(merchant_client, wechat, sql)
    order = await commit(merchant_client, token, add_product(sql))
    results = await asyncio.gather(*(call(merchant_client, "POST", PRE_ORDER, token, id=order["id"])
                                     for _ in range(5)))
    assert {status for status, _ in results} == {200}
    assert len({body["package"] for _, body in results}) == 1
    assert merchant.prepay_id(order["order_no"]) == order_row(sql, order["id"])["prepay_id"]


@pytest.mark.parametrize(
    "mode, msg",
    [
        # WeChat's own message for the code is passed on: each version words it its own way.
        ("SYSTEMERROR", {"v2": "微信支付下单失败: 系统错误", "v3": "微信支付下单失败: 系统繁忙，请稍后重试"}),
        ({"v2": "NOAUTH", "v3": "NO_AUTH"},
         {"v2": "微信支付下单失败: 商户无此接口权限", "v3": "微信支付下单失败: 商户无权限"}),
        (HTTP_500, "微信支付下单失败: 微信支付服务异常 (HTTP 500)"),
        (BAD_SIGN, "微信支付下单失败: 微信支付应答签名错误"),
    ],
    ids=["SYSTEMERROR", "NOAUTH", "HTTP_500", "BAD_SIGN"],
)
async def test_pre_order_wechat_errors(merchant_client, wechat, merchant, sql, mode, msg):
    token = await wx_buyer(merchant_client, wechat, sql)
    order = await commit(merchant_client, token, add_product(sql))
    if isinstance(mode, dict):
        merchant.fail_as(PREPAY, mode)
    else:
        merchant.fail(PREPAY, mode)
    if isinstance(msg, dict):
        msg = msg[merchant.version]
    status, body = await call(merchant_client, "POST", PRE_ORDER, token, id=order["id"])
    assert (status, body) == (502, {"msg": msg, "error_code": 50000, "request_url": PRE_ORDER})
    assert order_row(sql, order["id"])["prepay_id"] is None
    # The next try goes through.
    assert (await call(merchant_client, "POST", PRE_ORDER, token, id=order["id"]))[0] == 200
    assert merchant.count(PREPAY) == 2


# v2 only: return_code FAIL is v2's envelope (v3 answers an error status with a code, above).
async def test_pre_order_wechat_return_fail(pay_client, wechat, wxpay, sql):
    token = await wx_buyer(pay_client, wechat, sql)
    order = await commit(pay_client, token, add_product(sql))
    wxpay.fail(UNIFIED_ORDER, fake_pay.RETURN_FAIL)
    status, body = await call(pay_client, "POST", PRE_ORDER, token, id=order["id"])
    assert (status, body) == (502, {"msg": "微信支付下单失败: 系统繁忙,请稍后再试", "error_code": 50000,
                                    "request_url": PRE_ORDER})
    assert order_row(sql, order["id"])["prepay_id"] is None
    assert (await call(pay_client, "POST", PRE_ORDER, token, id=order["id"]))[0] == 200


async def test_pre_order_wechat_unreachable(make_client, wechat, merchant, sql):
    client = await make_client(**fake_wechat.settings_for(wechat),
                               **merchant.settings(wechatpay_api_url="http://127.0.0.1:9"))
    token = await wx_buyer(client, wechat, sql)
    order = await commit(client, token, add_product(sql))
    status, body = await call(client, "POST", PRE_ORDER, token, id=order["id"])
    assert (status, body["error_code"], body["msg"]) == (502, 50000, "微信支付下单失败: 无法连接微信支付")
    assert order_row(sql, order["id"])["prepay_id"] is None and merchant.calls_made() == 0


async def test_pre_order_of_an_order_paid_at_wechat_applies_the_payment(merchant_client, wechat, merchant, sql):
    token, _, order, _ = await start_payment(merchant_client, wechat, sql)
    paid = merchant.pay(order["order_no"])
    sql("UPDATE orders SET prepay_expires_at = now()")  # so pre_order asks for a prepay again: paid already
    status, body = await call(merchant_client, "POST", PRE_ORDER, token, id=order["id"])
    assert (status, body["error_code"]) == (409, 60001), body
    row = order_row(sql, order["id"])
    assert (row["status"], row["transaction_id"]) == (1, paid.transaction_id) and len(extensions(sql)) == 1
    assert [(n["source"], n["outcome"]) for n in notifications(sql)] == [("orderquery", "paid")]
    assert (merchant.count(PREPAY), merchant.count(merchants.QUERY)) == (2, 1)


async def test_pre_order_refusals(merchant_client, wechat, merchant, sql):
    product = add_product(sql, amount=100)
    token = await wx_buyer(merchant_client, wechat, sql)
    other = await wx_buyer(merchant_client, wechat, sql, "bob", phone="13900000000")
    order = await commit(merchant_client, token, product)

    def expect(status, code, msg=None):
        async def check(order_id, who=token):
            got_status, body = await call(merchant_client, "POST", PRE_ORDER, who, id=order_id)
            assert (got_status, body["error_code"], body["request_url"]) == (status, code, PRE_ORDER), body
            if msg:
                assert body["msg"] == msg
        return check

    await expect(400, 99999)("")
    await expect(404, 60000, "订单不存在")(order["id"] + 1000)
    await expect(403, 10005, "订单与用户不匹配")(order["id"], other)
    sql("UPDATE users SET member_status = 2 WHERE openid = 'o-alice'")
    await expect(403, 10001)(order["id"])
    sql("UPDATE users SET member_status = 0, is_disabled = true WHERE openid = 'o-alice'")
    await expect(404, 10004)(order["id"])
    sql("UPDATE users SET is_disabled = false WHERE openid = 'o-alice'")
    sql("UPDATE orders SET create_time = now() - interval '31 minutes' WHERE id = %s", order["id"])
    await expect(409, 60005, "订单已超时，请重新下单")(order["id"])
    cancelled = await commit(merchant_client, token, product)
    await call(merchant_client, "POST", "/api/v1/order/cancel", token, id=cancelled["id"])
    await expect(409, 60005, "订单已关闭、取消或超时，不能支付")(cancelled["id"])
    assert merchant.count(PREPAY) == 0


async def test_pre_order_too_close_to_the_time_out_is_refused_before_asking_wechat(
    merchant_client, wechat, merchant, sql
):
    token, _, prepaid, params = await start_payment(merchant_client, wechat, sql)
    late = await commit(merchant_client, token, add_product(sql, title="另一个"))
    # Four minutes before their time-out: WeChat would refuse a time_expire this close (§3.1).
    minutes_pass(sql, merchant, 26, prepaid["id"], late["id"])
    status, body = await call(merchant_client, "POST", PRE_ORDER, token, id=late["id"])
    assert (status, body) == (409, {"msg": "订单即将超时，请重新下单", "error_code": 60005, "request_url": PRE_ORDER})
    assert order_row(sql, late["id"])["prepay_id"] is None and merchant.count(PREPAY) == 1
    # A prepay still valid is handed out again, however late: WeChat is not asked.
    status, again = await call(merchant_client, "POST", PRE_ORDER, token, id=prepaid["id"])
    assert status == 200 and again["package"] == params["package"] and merchant.count(PREPAY) == 1


# v2 only: the v2 fake's rules (time_expire more than 5 minutes ahead, no closeorder within 5 minutes), with the
# v2 client's error codes; v3's form is the next test.
async def test_the_fake_keeps_wechat_pays_five_minute_rules(pay_client, wxpay):
    """What the order tests rely on (§3.1, §3.5), through the app's own WeChat Pay client."""
    pay = pay_client.server.app[wechatpay_key]
    now = dt.datetime.now(BEIJING)
    order = {"out_trade_no": "20260101000000ABCDEF0123456789", "total_fee": 19900, "body": "会员", "openid": "o-a",
             "client_ip": "127.0.0.1", "notify_url": "https://club.example.com/api/v1/pay/notify", "time_start": now}
    with pytest.raises(PayError) as refused:
        await pay.unified_order(**order, time_expire=now + dt.timedelta(minutes=5))
    assert refused.value.code == "INVALID_REQUEST" and order["out_trade_no"] not in wxpay.orders
    await pay.unified_order(**order, time_expire=now + dt.timedelta(minutes=6))
    with pytest.raises(PayError) as too_early:
        await pay.close_order(order["out_trade_no"])
    assert too_early.value.code == "SYSTEMERROR" and wxpay.orders[order["out_trade_no"]].state == "NOTPAY"
    wxpay.advance(5)
    await pay.close_order(order["out_trade_no"])
    assert wxpay.orders[order["out_trade_no"]].state == "CLOSED"


# v3 only: what the v3 fake holds of the same rules, through the app's own v3 client: a time_expire already past is
# refused (the server keeps its own 5-minute lead for both versions), and an order closes at once, again and again.
async def test_the_v3_fake_refuses_a_past_time_expire_and_closes_at_once(make_client, wechat, aiohttp_server,
                                                                        tmp_path):
    merchant, client = await v3_merchant_client(make_client, wechat, aiohttp_server, tmp_path)
    pay = client.server.app[wechatpay_key]
    now = dt.datetime.now(BEIJING)
    order = {"out_trade_no": "20260101000000ABCDEF0123456789", "total_fee": 19900, "body": "会员", "openid": "o-a",
             "client_ip": "127.0.0.1", "notify_url": "https://club.example.com/api/v1/pay/notify", "time_start": now}
    with pytest.raises(PayError) as refused:
        await pay.unified_order(**order, time_expire=now - dt.timedelta(seconds=1))
    assert refused.value.code == "PARAM_ERROR" and order["out_trade_no"] not in merchant.fake.orders
    await pay.unified_order(**order, time_expire=now + dt.timedelta(minutes=6))
    for _ in range(2):
        await pay.close_order(order["out_trade_no"])
        assert merchant.state(order["out_trade_no"]) == "CLOSED"


# -- dev payments ---------------------------------------------------------------------------------

async def test_dev_payment_goes_through_the_notification_path(client, sql, caplog):
    product = add_product(sql)
    token = await dev_buyer(client, sql)
    order = await commit(client, token, product)
    status, body = await call(client, "POST", DEV_COMPLETE, token, id=order["id"])
    assert (status, body["error_code"], body["msg"]) == (409, 60005, "请先调用 pay/pre_order 发起支付")
    with caplog.at_level(logging.WARNING, logger="jiandong"):
        status, params = await call(client, "POST", PRE_ORDER, token, id=order["id"])
    assert status == 200
    assert set(params) == JSAPI_KEYS | {"dev", "dev_complete_url"}
    assert params["dev"] == 1 and params["dev_complete_url"] == DEV_COMPLETE
    assert params["package"].startswith("prepay_id=dev_") and params["timestamp"] == params["timeStamp"]
    assert any("DEV PAYMENT" in r.getMessage() for r in caplog.records)

    other = await dev_buyer(client, sql, "other", phone="13900000000")
    status, body = await call(client, "POST", DEV_COMPLETE, other, id=order["id"])
    assert (status, body["error_code"]) == (403, 10005)
    status, body = await call(client, "POST", DEV_COMPLETE, token, id=order["id"] + 100)
    assert (status, body["error_code"]) == (404, 60000)
    status, body = await call(client, "POST", DEV_COMPLETE, token)
    assert (status, body["error_code"]) == (400, 99999)

    status, body = await call(client, "POST", DEV_COMPLETE, token, id=order["id"])
    assert (status, body) == (200, {"msg": "success", "error_code": 0, "request_url": DEV_COMPLETE})
    row = order_row(sql, order["id"])
    assert row["status"] == 1 and row["pay_way"] == "开发模式支付" and row["transaction_id"].startswith("DEV")
    assert row["pay_amount"] == 19900
    assert notifications(sql) == [{"order_id": order["id"], "out_trade_no": order["order_no"], "source": "dev",
                                   "outcome": "paid"}]
    info = (await call(client, "GET", "/api/v1/user/info", token))[1]
    assert info["member_status"] == 1 and info["member_expire_time"] != ""
    status, body = await call(client, "POST", DEV_COMPLETE, token, id=order["id"])
    assert (status, body["error_code"]) == (409, 60001)
    assert len(extensions(sql)) == 1


async def test_dev_payment_refused_to_disabled_accounts(client, sql):
    token = await dev_buyer(client, sql)
    order = await commit(client, token, add_product(sql))
    await call(client, "POST", PRE_ORDER, token, id=order["id"])
    sql("UPDATE users SET member_status = 2")
    assert (await call(client, "POST", DEV_COMPLETE, token, id=order["id"]))[0] == 403
    sql("UPDATE users SET member_status = 0, is_disabled = true")
    status, body = await call(client, "POST", DEV_COMPLETE, token, id=order["id"])
    assert (status, body["error_code"]) == (404, 10004)
    assert order_row(sql, order["id"])["status"] == 0


async def test_dev_mode_refuses_forged_notifications(client, sql):
    token = await dev_buyer(client, sql)
    order = await commit(client, token, add_product(sql))
    await call(client, "POST", PRE_ORDER, token, id=order["id"])
    fields = {"return_code": "SUCCESS", "result_code": "SUCCESS", "appid": "wxdevpayments", "mch_id": "dev",
              "out_trade_no": order["order_no"], "total_fee": "19900", "transaction_id": "DEVX",
              "openid": dev_openid("buyer"), "nonce_str": "n"}
    fields["sign"] = wx_sign(fields, "guessed-key")
    resp = await client.post(NOTIFY, data=to_xml(fields).encode(), headers={"Content-Type": "text/xml"})
    assert fake_pay.parse(await resp.read()) == {"return_code": "FAIL", "return_msg": "bad signature"}
    assert order_row(sql, order["id"])["status"] == 0


async def test_dev_completion_route_only_without_a_merchant(merchant_client, wechat, merchant, sql):
    token, _, order, params = await start_payment(merchant_client, wechat, sql)
    assert "dev" not in params
    status, body = await call(merchant_client, "POST", DEV_COMPLETE, token, id=order["id"])
    assert (status, body["error_code"]) == (404, 10000)
    assert order_row(sql, order["id"])["status"] == 0


# -- documentation ----------------------------------------------------------------------------

async def test_openapi_documents_the_payment_endpoints(client):
    spec = await (await client.get("/api/v1/openapi.json")).json()
    notify = spec["paths"][NOTIFY]["post"]
    assert notify["security"] == [] and "text/xml" in notify["responses"]["200"]["content"]
    pre_order = spec["paths"][PRE_ORDER]["post"]
    fields = pre_order["responses"]["200"]["content"]["application/json"]["schema"]["properties"]
    assert {"appId", "timeStamp", "timestamp", "nonceStr", "package", "signType", "paySign"} <= set(fields)
    assert set(pre_order["x-error-codes"]) == {10000, 10001, 10003, 10004, 10005, 50000, 60000, 60001, 60005, 99999}
    for path in ("/api/v1/business/joinus", "/api/v1/order/commit", "/api/v1/order/cancel", "/api/v1/order/{id}",
                 "/api/v1/order/close", "/api/v1/order/by_user", DEV_COMPLETE):
        assert path in spec["paths"], path
    html = await (await client.get("/Docs/jiandong.html")).text()
    assert NOTIFY in html and "订单支付" in html and "timeStamp" in html

