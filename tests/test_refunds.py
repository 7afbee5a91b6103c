"""Refunds: asked for in the console, sent to the fake WeChat Pay (v2: over mutual TLS with a test CA made
here; v3: signed with the merchant key), completed by the refund notification (v2: req_info decrypted; v3:
signed by WeChat, then decrypted) or refundquery in the order round; idempotent by out_refund_no, never beyond
the payment, dev refunds at once. The flows run against both API versions (the `merchant` fixture,
tests/helpers/merchants.py); what only one version has is marked so. v2's decryption checked against the
reference's vectors and wechatpy."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import hashlib
import logging
import re
import ssl
import time

import aiohttp
import psycopg2
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from prometheus_client.parser import text_string_to_metric_families
from wechatpy.crypto import RefundCrypto
from wechatpy.exceptions import WeChatPayException
from wechatpy.pay import WeChatPay

from jiandong.integrations import wechatpay, wechatpay_provider, wechatpay_v3
from jiandong.integrations.wechatpay_refund import CHANGE as CHANGE_V2
from jiandong.integrations.wechatpay_refund import CLOSED as REFUNDCLOSE
from jiandong.integrations.wechatpay_refund import ReqInfoError, decrypt_req_info, query_records
from jiandong.settings import SettingsError
from jiandong.tasks.orders import order_round
from jiandong.web.public_urls import refund_notify_url as notify_url
from tests.fakes import wechat as fake_wechat
from tests.fakes import wechatpay as fake_pay
from tests.fakes import wechatpay_v3 as fake_v3
from tests.fakes.pki import make_pki
from tests.fakes.wechatpay import FakeWeChatPay, encrypt_req_info
from tests.helpers.admin import add_admin, post_form, sign_in
from tests.helpers.api import call
from tests.helpers.merchants import CHANGE, CLOSED, REFUND, SUCCESS, V2Merchant
from tests.helpers.orders import PRE_ORDER, add_product, commit, dev_buyer, wx_buyer

log = logging.getLogger(__name__)

REFUND_NOTIFY = "/api/v1/pay/refund_notify"
PRICE = 19900

# The reference's vectors (wechatpay-refund.md §4).
VECTOR_KEY = "192006250b4c09247ec02edce69f6a2d"
SHORT_INNER = ("<root><out_refund_no><![CDATA[R1]]></out_refund_no><refund_status><![CDATA[SUCCESS]]>"
               "</refund_status></root>")
SHORT_REQ_INFO = ("WBzGpzQuNpcFxIlFjUUD9BZv+lpBMzd2SHiKCkwfALWid5G8ZvfOussfMIHLbKJmcnxPKdb1ZJEqTAp8ysQv+xa1fj+Eorgndx3"
                  "fNxf3KAYa3LPgsjvZgxaeYyrhV05Kbjkj6ywg27cEyTTaPZFYNg==")
FULL_INNER = (
    "<root><out_refund_no><![CDATA[R20240601000001]]></out_refund_no><out_trade_no><![CDATA[T20240601000001]]>"
    "</out_trade_no><refund_account><![CDATA[REFUND_SOURCE_UNSETTLED_FUNDS]]></refund_account><refund_fee>"
    "<![CDATA[50]]></refund_fee><refund_id><![CDATA[50000408942024060107145868882]]></refund_id><refund_recv_accout>"
    "<![CDATA[支付用户零钱]]></refund_recv_accout><refund_request_source><![CDATA[API]]></refund_request_source>"
    "<refund_status><![CDATA[SUCCESS]]></refund_status><settlement_refund_fee><![CDATA[50]]></settlement_refund_fee>"
    "<settlement_total_fee><![CDATA[100]]></settlement_total_fee><success_time><![CDATA[2024-06-01 12:00:05]]>"
    "</success_time><total_fee><![CDATA[100]]></total_fee><transaction_id><![CDATA[4200000215202406010261405420]]>"
    "</transaction_id></root>")
FULL_SHA256 = "0993aba8318582f74e71cfa3e109f2c55cd9e52e8322b529beaa62fb891e5ff8"


# -- fixtures -----------------------------------------------------------------------------------------

@pytest.fixture
def merchant_app(make_client, wechat, merchant):
    """`await merchant_app(**overrides)`: an app paying and refunding through the `merchant` (v2, then v3)."""
    async def make(**overrides):
        return await make_client(**fake_wechat.settings_for(wechat), **merchant.settings(**overrides))
    return make


# The v2-only tests' merchant: the v2 fake over TLS with a test CA, where secapi needs the client certificate.
@pytest.fixture
def pki(tmp_path):
    return make_pki(tmp_path / "pki", FakeWeChatPay().mch_id)


@pytest.fixture
async def tls_pay(aiohttp_server, pki):
    """The fake WeChat Pay over TLS with the test CA: secapi needs the merchant's client certificate."""
    return await fake_pay.serve(aiohttp_server, FakeWeChatPay(), pki)


@pytest.fixture
def tls_merchant(tls_pay, pki):
    """`tls_pay` seen through the adapter (for the helpers below that take a merchant)."""
    return V2Merchant(tls_pay, pki)


@pytest.fixture
def refund_app(make_client, wechat, tls_pay, pki):
    async def make(**overrides):
        client = await make_client(**fake_wechat.settings_for(wechat),
                                   **fake_pay.settings_with_certificate(tls_pay, pki), **overrides)
        return client
    return make


@pytest.fixture
async def refund_client(refund_app):
    return await refund_app()


# The v3-only tests: the `merchant` fixture on API v3 alone (ids end in [v3]).
V3_ONLY = pytest.mark.parametrize("merchant", ["v3"], indirect=True)


async def paid_order(client, wechat, merchant, sql, name: str = "alice", price: int = PRICE,
                     phone: str = "13800138000") -> dict:
    """A buyer's order paid at the merchant's fake and notified: the membership runs."""
    product = add_product(sql, price=price)
    token = await wx_buyer(client, wechat, sql, name, phone)
    order = await commit(client, token, product)
    status, body = await call(client, "POST", PRE_ORDER, token, id=order["id"])
    assert status == 200, body
    merchant.pay(order["order_no"])
    assert (await merchant.notify(client, order["order_no"]))[1]
    return {**order, "token": token}


async def console(client, sql, role: str = "owner", name: str = "boss") -> None:
    add_admin(sql, name, role)
    assert (await sign_in(client, name)).status == 302


async def refund(client, order_id: int, amount: str, reason: str = "赛事取消", number: str | None = None):
    """Post the order page's refund form (with the out_refund_no the page made, unless given)."""
    page = await (await client.get(f"/admin/orders/{order_id}")).text()
    if number is None:
        number = page.split('name="out_refund_no" value="', 1)[1].split('"', 1)[0]
    resp = await post_form(client, f"/admin/orders/{order_id}/refund",
                           {"amount": amount, "reason": reason, "out_refund_no": number},
                           token_from=f"/admin/orders/{order_id}")
    assert resp.status == 302, await resp.text()
    return number


async def flashed(client, order_id: int) -> str:
    return await (await client.get(f"/admin/orders/{order_id}")).text()


def refunds(sql, order_id: int | None = None):
    return sql("SELECT out_refund_no, amount, status, refund_id, last_error, attempts FROM refunds"
               + (" WHERE order_id = %s" if order_id else "") + " ORDER BY id", *([order_id] if order_id else []))


def order_state(sql, order_id: int):
    return sql("SELECT status, pay_amount, refund_reserved FROM orders WHERE id = %s", order_id)[0]


def member(sql, name: str = "alice"):
    return sql("SELECT member_status, member_expire_time, member_expire_time > now() AS running"
               " FROM users WHERE openid = %s", f"o-{name}")[0]


def messages(sql):
    return [(r["source"], r["outcome"]) for r in sql("SELECT source, outcome FROM refund_notifications ORDER BY id")]


def age_refunds(sql, merchant, minutes: float = 2) -> None:
    """Time passes: here the refunds' last tries move back, at the merchant's fake its clock moves on."""
    sql("UPDATE refunds SET sent_at = sent_at - make_interval(mins => %s),"
        " created_at = created_at - make_interval(mins => %s)", minutes, minutes)
    merchant.advance(minutes)


async def dropped(client, reason: str) -> float:
    """jiandong_notifications_dropped_total of refund notifications for `reason` (0 when never counted)."""
    families = {f.name: f for f in text_string_to_metric_families(await (await client.get("/metrics")).text())}
    family = families.get("jiandong_notifications_dropped")
    return sum(s.value for s in family.samples if s.name.endswith("_total")
               and s.labels == {"kind": "refund", "reason": reason}) if family else 0.0


# What a forged refund notification is refused for, by version (the metric's reason): v2's req_info does not
# decrypt with our key; v3's signature is not WeChat's.
FORGED_REASON = {"v2": "req_info", "v3": "signature"}


def with_field(merchant, number: str, name: str, value: str | None):
    """A genuine refund notification (v2: encrypted with our key; v3: signed by WeChat, sealed with our APIv3
    key) with one field changed, or left out with None. Names are v2's (refund_fee is v3's amount.refund)."""
    fake = merchant.fake
    if merchant.version == "v2":
        inner = re.sub(rf"<{name}><!\[CDATA\[[^]]*\]\]></{name}>",
                       "" if value is None else f"<{name}><![CDATA[{value}]]></{name}>", fake.refund_inner(number))
        return fake.refund_notification(number, req_info=encrypt_req_info(inner, fake.key))
    overrides: dict[str, object] = {name: value}
    if name == "refund_fee":
        made = fake.refunds[number]
        amount = {"total": made.order.total, "payer_total": made.order.total, "payer_refund": made.refund}
        overrides = {"amount": amount if value is None else {**amount, "refund": int(value)}}
    return fake.refund_notification(number, timestamp=int(time.time()), **overrides)


# -- the flows ----------------------------------------------------------------------------------------

async def test_full_refund_then_notification(merchant_client, wechat, merchant, sql):
    order = await paid_order(merchant_client, wechat, merchant, sql)
    assert member(sql)["running"]
    await console(merchant_client, sql)
    number = await refund(merchant_client, order["id"], "199.00", "赛事取消，全额退款")
    page = await flashed(merchant_client, order["id"])
    assert f"退款 {number}（199.00 元）：退款中" in page
    # What WeChat Pay was asked (v2: over TLS with the merchant certificate, the fake refuses it otherwise;
    # v3: signed with the merchant key, the fake refuses it otherwise).
    [sent] = merchant.sent(REFUND)
    assert sent.out_trade_no == order["order_no"] and sent.out_refund_no == number
    assert (sent.total, sent.refund) == (19900, 19900)
    assert sent.reason == "赛事取消，全额退款"
    # Beside the payment notify URL of the settings (https://club.example.com/api/v1/pay/notify).
    assert sent.notify_url == "https://club.example.com" + REFUND_NOTIFY
    assert [r["status"] for r in refunds(sql)] == ["processing"]
    assert refunds(sql)[0]["refund_id"] == merchant.refund_id(number)
    assert order_state(sql, order["id"]) == {"status": 3, "pay_amount": PRICE, "refund_reserved": PRICE}
    # WeChat completes it and notifies: taken (v2: 200 SUCCESS; v3: 204).
    merchant.settle_refund(number)
    status, taken = await merchant.notify_refund(merchant_client, number)
    assert taken and status == {"v2": 200, "v3": 204}[merchant.version]
    assert [r["status"] for r in refunds(sql)] == ["success"]
    assert order_state(sql, order["id"])["status"] == 4
    # A full refund ends the membership it paid for (the default rule).
    assert not member(sql)["running"]
    status, info = await call(merchant_client, "GET", "/api/v1/user/info", order["token"])
    assert status == 200 and info["member_status"] == 3 and info["is_member"] == 0
    assert messages(sql) == [("notify", "success")]
    cut = sql("SELECT cut > interval '364 days' AS whole FROM member_extensions")[0]
    assert cut["whole"]
    page = await flashed(merchant_client, order["id"])
    assert "已退款" in page and "微信支付通知" in page and "赛事取消，全额退款" in page
    assert sql("SELECT action, target FROM audit_log") == [
        {"action": "refund.create", "target": f"order:{order['id']}"}]


async def test_replayed_notification_changes_nothing(merchant_client, wechat, merchant, sql):
    order = await paid_order(merchant_client, wechat, merchant, sql)
    await console(merchant_client, sql)
    number = await refund(merchant_client, order["id"], "199.00")
    merchant.settle_refund(number)
    body = merchant.refund_notification(number)
    assert (await merchant.notify_refund(merchant_client, number, body))[1]
    before = sql("SELECT member_expire_time FROM users WHERE openid = 'o-alice'")[0]
    cut = sql("SELECT cut FROM member_extensions")[0]
    for _ in range(2):
        assert (await merchant.notify_refund(merchant_client, number, body))[1]
    assert messages(sql) == [("notify", "success"), ("notify", "duplicate"), ("notify", "duplicate")]
    assert sql("SELECT member_expire_time FROM users WHERE openid = 'o-alice'")[0] == before
    assert sql("SELECT cut FROM member_extensions")[0] == cut
    assert order_state(sql, order["id"])["status"] == 4 and [r["status"] for r in refunds(sql)] == ["success"]


async def test_a_forged_or_lying_refund_notification_completes_nothing(merchant_client, wechat, merchant, sql):
    """Forged (v2: req_info encrypted with another key; v3: signed by another key): refused, names no refund we
    can believe, so counted, not kept. Genuine but about another amount: refused, kept with the refund."""
    order = await paid_order(merchant_client, wechat, merchant, sql)
    await console(merchant_client, sql)
    number = await refund(merchant_client, order["id"], "199.00")
    merchant.settle_refund(number)
    forged = merchant.refund_notification(number, forged=True)
    assert not (await merchant.notify_refund(merchant_client, number, forged))[1]
    assert messages(sql) == []
    assert await dropped(merchant_client, FORGED_REASON[merchant.version]) == 1.0
    lying = merchant.refund_notification(number, refund=1)
    assert not (await merchant.notify_refund(merchant_client, number, lying))[1]
    assert [o for _, o in messages(sql)] == ["rejected: refund_fee 1 is not 19900"]
    assert [r["status"] for r in refunds(sql)] == ["processing"] and order_state(sql, order["id"])["status"] == 3
    assert member(sql)["running"]
    # The genuine one still goes through.
    assert (await merchant.notify_refund(merchant_client, number))[1]
    assert [r["status"] for r in refunds(sql)] == ["success"]


# v2 only: req_info's AES-256-ECB (changed blocks, padding, base64); the v3 form is the test after it.
async def test_tampered_req_info_is_refused(refund_client, wechat, tls_pay, tls_merchant, sql):
    order = await paid_order(refund_client, wechat, tls_merchant, sql)
    await console(refund_client, sql)
    number = await refund(refund_client, order["id"], "199.00")
    tls_pay.settle_refund(number)
    genuine = encrypt_req_info(tls_pay.refund_inner(number), tls_pay.key)
    raw = bytearray(base64.b64decode(genuine))
    middle, last = bytearray(raw), bytearray(raw)
    middle[40] ^= 0x01
    last[-1] ^= 0x01
    forged = {
        "a changed middle block": base64.b64encode(middle).decode(),
        "a changed last block": base64.b64encode(last).decode(),
        "another key": encrypt_req_info(tls_pay.refund_inner(number), "another merchant's api key 123456"),
        "not base64": "%%%not-base64%%%",
        "cut short": base64.b64encode(raw[:-5]).decode(),
    }
    for what, req_info in forged.items():
        status, answer = await tls_pay.notify_refund(refund_client, number,
                                                     tls_pay.refund_notification(number, req_info=req_info))
        assert (status, answer["return_code"]) == (200, "FAIL"), what
    # Encrypted with our key but about another amount: refused as well (ECB has no MAC, §3).
    lying = tls_pay.refund_notification(number, refund_fee="1")
    assert (await tls_pay.notify_refund(refund_client, number, lying))[1]["return_code"] == "FAIL"
    # What does not decrypt names no refund: counted, not kept; the lying one names this refund: kept.
    assert [o for _, o in messages(sql)] == ["rejected: refund_fee 1 is not 19900"]
    metrics = await (await refund_client.get("/metrics")).text()
    assert 'jiandong_notifications_dropped_total{kind="refund",reason="req_info"} 5.0' in metrics
    assert [r["status"] for r in refunds(sql)] == ["processing"] and order_state(sql, order["id"])["status"] == 3
    assert member(sql)["running"]
    # The genuine one still goes through.
    assert (await tls_pay.notify_refund(refund_client, number))[1]["return_code"] == "SUCCESS"
    assert [r["status"] for r in refunds(sql)] == ["success"]


@V3_ONLY
async def test_a_v3_refund_notification_that_does_not_hold_is_refused(merchant_client, wechat, merchant, sql):
    """v3's form of the test above: the signature is checked before anything is decrypted (§4), then the
    envelope, the APIv3 key's seal and the mchid. None of these names a refund we can believe: counted, not kept."""
    fake = merchant.fake
    order = await paid_order(merchant_client, wechat, merchant, sql)
    await console(merchant_client, sql)
    number = await refund(merchant_client, order["id"], "199.00")
    merchant.settle_refund(number)
    now = int(time.time())
    headers, body = fake.refund_notification(number, timestamp=now)
    changed = body.replace(b'"ciphertext":"', b'"ciphertext":"A', 1)
    forged = {
        "signed by another key": ("signature", fake.refund_notification(
            number, timestamp=now, signing_key=rsa.generate_private_key(public_exponent=65537, key_size=2048))),
        "a signature probe": ("signature", fake.refund_notification(
            number, timestamp=now, signature="WECHATPAY/SIGNTEST/" + "A" * 40)),
        "a timestamp 6 minutes old": ("signature", fake.refund_notification(number, timestamp=now - 360)),
        "an unknown serial": ("signature", fake.refund_notification(
            number, timestamp=now, serial="PUB_KEY_ID_0119000001000000000000000000")),
        "a body changed after signing": ("signature", (headers, changed)),
        "sealed with another APIv3 key": ("decrypt", fake.refund_notification(
            number, timestamp=now, api_v3_key="b" * 32)),
        "another mchid": ("mch_id", fake.refund_notification(number, timestamp=now, mchid="1900000999")),
        "a payment event": ("event_type", fake.refund_notification(
            number, timestamp=now, event_type="TRANSACTION.SUCCESS")),
        "a signature header given twice": ("malformed", (
            [*headers.items(), ("Wechatpay-Signature", headers["Wechatpay-Signature"])], body)),
    }
    for what, (_, payload) in forged.items():
        status, taken = await merchant.notify_refund(merchant_client, number, payload)
        assert (status, taken) == (400, False), what
    assert messages(sql) == []
    for reason in set(r for r, _ in forged.values()):
        assert await dropped(merchant_client, reason) == sum(1 for r, _ in forged.values() if r == reason), reason
    assert [r["status"] for r in refunds(sql)] == ["processing"] and order_state(sql, order["id"])["status"] == 3
    assert member(sql)["running"]
    # The genuine one (the very headers and body the changed one came from) still goes through.
    assert await merchant.notify_refund(merchant_client, number, (headers, body)) == (204, True)
    assert [r["status"] for r in refunds(sql)] == ["success"]


# Each field of a refund notification the server relies on, changed alone (or left out): the notification is
# refused, the refund stays as it was, and the genuine notification still completes it. (v2's names; in v3
# refund_fee is amount.refund.)
RELIED_ON = {
    "out_trade_no of another order": ("out_trade_no", "209912310000000001"),
    "no out_trade_no": ("out_trade_no", None),
    "another refund_fee": ("refund_fee", "1"),
    "no refund_fee": ("refund_fee", None),
    "an unknown refund_status": ("refund_status", "MAYBE"),
    "no refund_status": ("refund_status", None),
    "another out_refund_no": ("out_refund_no", "R209912310000000001"),
    "no out_refund_no": ("out_refund_no", None),
}


@pytest.mark.parametrize("change", list(RELIED_ON))
async def test_a_notification_with_one_field_changed_completes_nothing(merchant_client, wechat, merchant, sql,
                                                                       change):
    order = await paid_order(merchant_client, wechat, merchant, sql)
    await console(merchant_client, sql)
    number = await refund(merchant_client, order["id"], "199.00")
    merchant.settle_refund(number)
    body = with_field(merchant, number, *RELIED_ON[change])
    assert not (await merchant.notify_refund(merchant_client, number, body))[1]
    assert [r["status"] for r in refunds(sql)] == ["processing"] and order_state(sql, order["id"])["status"] == 3
    assert member(sql)["running"]
    assert (await merchant.notify_refund(merchant_client, number))[1]
    assert [r["status"] for r in refunds(sql)] == ["success"]


async def test_partial_refund_keeps_the_membership_and_refundquery_settles_it(merchant_client, wechat, merchant,
                                                                               sql):
    order = await paid_order(merchant_client, wechat, merchant, sql)
    await console(merchant_client, sql)
    expiry = member(sql)["member_expire_time"]
    number = await refund(merchant_client, order["id"], "50", "部分退款")
    assert order_state(sql, order["id"]) == {"status": 3, "pay_amount": PRICE, "refund_reserved": 5000}
    merchant.settle_refund(number)
    # No notification comes: the order round asks refundquery.
    await order_round(merchant_client.app)
    assert [r["status"] for r in refunds(sql)] == ["success"]
    assert messages(sql) == [("refundquery", "success")]
    assert order_state(sql, order["id"])["status"] == 1
    assert member(sql)["member_expire_time"] == expiry
    # What is left: 149.00; more is refused and nothing is recorded.
    merchant.advance(2)
    await refund(merchant_client, order["id"], "149.01", "场地取消")
    page = await flashed(merchant_client, order["id"])
    assert "退款金额超过可退金额（还可退 149.00 元）" in page
    # The refused form comes back as typed, to correct; once: the next view starts empty again.
    assert 'value="149.01"' in page and 'value="场地取消"' in page
    page = await flashed(merchant_client, order["id"])
    assert 'value="149.01"' not in page and 'value="场地取消"' not in page
    assert len(refunds(sql)) == 1
    # The rest makes it a full refund: refunded, and the membership ends.
    rest = await refund(merchant_client, order["id"], "149.00")
    merchant.settle_refund(rest)
    assert (await merchant.notify_refund(merchant_client, rest))[1]
    assert order_state(sql, order["id"]) == {"status": 4, "pay_amount": PRICE, "refund_reserved": PRICE}
    assert not member(sql)["running"]


async def test_an_abnormal_refund_waits_as_change_until_settled(merchant_client, wechat, merchant, sql):
    """v2's CHANGE, v3's REFUND.ABNORMAL: the refund is stuck at WeChat (handled in the merchant platform); it
    stays in flight, the amount reserved, the membership running, until WeChat settles it."""
    order = await paid_order(merchant_client, wechat, merchant, sql)
    await console(merchant_client, sql)
    number = await refund(merchant_client, order["id"], "199.00")
    merchant.settle_refund(number, CHANGE)
    assert (await merchant.notify_refund(merchant_client, number))[1]
    assert [r["status"] for r in refunds(sql)] == ["change"]
    assert order_state(sql, order["id"]) == {"status": 3, "pay_amount": PRICE, "refund_reserved": PRICE}
    assert member(sql)["running"] and messages(sql) == [("notify", "change")]
    assert "退款异常（需到商户平台处理）" in await flashed(merchant_client, order["id"])
    # Told again: a duplicate, nothing changes.
    assert (await merchant.notify_refund(merchant_client, number))[1]
    assert messages(sql) == [("notify", "change"), ("notify", "duplicate")]
    # Settled in the end.
    merchant.settle_refund(number, SUCCESS)
    assert (await merchant.notify_refund(merchant_client, number))[1]
    assert [r["status"] for r in refunds(sql)] == ["success"] and order_state(sql, order["id"])["status"] == 4
    assert not member(sql)["running"]


async def test_prorated_rule_shortens_by_the_refunded_share(merchant_app, wechat, merchant, sql):
    client = await merchant_app(refund_membership_rule="prorated")
    order = await paid_order(client, wechat, merchant, sql)
    await console(client, sql)
    number = await refund(client, order["id"], "99.50")
    merchant.settle_refund(number)
    assert (await merchant.notify_refund(client, number))[1]
    [ext] = sql("SELECT valid_until - valid_from AS term, cut FROM member_extensions")
    assert abs(ext["cut"] - ext["term"] / 2) < dt.timedelta(seconds=1)
    assert member(sql)["running"] and order_state(sql, order["id"])["status"] == 1


async def test_a_retry_after_a_timeout_is_the_same_refund(merchant_app, wechat, merchant, sql):
    client = await merchant_app(http_timeout=0.5)
    order = await paid_order(client, wechat, merchant, sql)
    await console(client, sql)
    # WeChat carries the refund out but its answer never arrives in time.
    held = merchant.hold(REFUND, after=True)
    number = await refund(client, order["id"], "199.00")
    assert held.arrived.is_set()
    [row] = refunds(sql)
    assert row["status"] == "pending" and "UNAVAILABLE" in row["last_error"] and row["attempts"] == 1
    assert "将自动重试" in await flashed(client, order["id"])
    held.release()
    assert merchant.refunds_made == [number]
    # The same form posted again is the same refund: nothing new here, nothing sent too early.
    await refund(client, order["id"], "199.00", number=number)
    assert len(refunds(sql)) == 1 and order_state(sql, order["id"])["refund_reserved"] == PRICE
    # The round sends it again, with the same number: WeChat answers about the one refund it made.
    age_refunds(sql, merchant)
    await order_round(client.app)
    [row] = refunds(sql)
    assert row["status"] == "processing" and row["attempts"] == 2
    assert row["refund_id"] == merchant.refund_id(number)
    assert [s.out_refund_no for s in merchant.sent(REFUND)] == [number, number]
    assert merchant.refunds_made == [number]


async def test_a_second_refund_within_a_minute_waits_for_the_round(merchant_client, wechat, merchant, sql):
    """WeChat takes refunds of one order at least a minute apart (§1.1; v3 §3): the second one, refused with
    FREQUENCY_LIMITED, stays pending (its amount reserved) and the round sends it again after a minute, not
    before."""
    order = await paid_order(merchant_client, wechat, merchant, sql)
    await console(merchant_client, sql)
    first = await refund(merchant_client, order["id"], "10.00")
    second = await refund(merchant_client, order["id"], "20.00")
    rows = refunds(sql)
    assert [r["status"] for r in rows] == ["processing", "pending"]
    assert "FREQUENCY_LIMITED" in rows[1]["last_error"] and rows[1]["attempts"] == 1
    assert order_state(sql, order["id"]) == {"status": 3, "pay_amount": PRICE, "refund_reserved": 3000}
    assert merchant.refunds_made == [first] and merchant.count(REFUND) == 2
    # A round within the minute leaves it alone.
    await order_round(merchant_client.app)
    assert merchant.count(REFUND) == 2 and refunds(sql)[1]["status"] == "pending"
    # A minute later (here and at WeChat) the round sends it, with its own number.
    age_refunds(sql, merchant)
    await order_round(merchant_client.app)
    row = refunds(sql)[1]
    assert (row["status"], row["attempts"], row["last_error"]) == ("processing", 2, "")
    assert [s.out_refund_no for s in merchant.sent(REFUND)] == [first, second, second]
    assert merchant.refunds_made == [first, second]


async def test_a_51st_refund_of_an_order_is_not_made(merchant_client, wechat, merchant, sql):
    """WeChat makes at most 50 refunds of one order (§1.1; v3 §3). v3 refuses the 51st with RULE_LIMIT, final:
    the refund fails and its amount is released. v2 says a generic ERROR, no code the server knows as final:
    the refund stays pending, its amount reserved and the reason shown. No money moves either way."""
    order = await paid_order(merchant_client, wechat, merchant, sql)
    await console(merchant_client, sql)
    for _ in range(50):
        merchant.advance(1.5)
        await refund(merchant_client, order["id"], "1.00")
    assert len(merchant.refunds_made) == 50
    assert {r["status"] for r in refunds(sql)} == {"processing"}
    merchant.advance(1.5)
    last = await refund(merchant_client, order["id"], "1.00")
    row = refunds(sql)[-1]
    final = merchant.version == "v3"
    assert row["out_refund_no"] == last and row["status"] == ("failed" if final else "pending")
    assert ("RULE_LIMIT" if final else "退款次数超过限制") in row["last_error"]
    assert len(merchant.refunds_made) == 50 and last not in merchant.refunds_made
    assert order_state(sql, order["id"]) == {"status": 3, "pay_amount": PRICE,
                                             "refund_reserved": 5000 if final else 5100}
    assert member(sql)["running"]


async def test_two_concurrent_refunds_together_beyond_the_payment(merchant_client, wechat, merchant, sql):
    order = await paid_order(merchant_client, wechat, merchant, sql)
    await console(merchant_client, sql)
    numbers = [f"RTEST{i}0000000000" for i in range(2)]
    await asyncio.gather(*(refund(merchant_client, order["id"], "150.00", number=n) for n in numbers))
    [row] = refunds(sql)
    assert row["amount"] == 15000 and row["out_refund_no"] in numbers
    assert order_state(sql, order["id"])["refund_reserved"] == 15000
    assert len(merchant.refunds_made) == 1


async def test_n_concurrent_clicks(merchant_client, wechat, merchant, sql):
    """N clicks at once on one order: as many distinct refunds as fit, and the same form N times is one."""
    n = 12
    order = await paid_order(merchant_client, wechat, merchant, sql)
    await console(merchant_client, sql)
    # N forms of 50.00 each (distinct numbers) against a payment of 199.00 ...
    await asyncio.gather(*(refund(merchant_client, order["id"], "50.00", number=f"RCLICK{i:02d}000000000")
                           for i in range(n)))
    # ... and one form clicked N times.
    other = await paid_order(merchant_client, wechat, merchant, sql, "bob", phone="13800138001")
    await asyncio.gather(*(refund(merchant_client, other["id"], "199.00", number="RSAMEFORM0000000000")
                           for _ in range(n)))
    # WeChat takes one new refund of an order a minute (§1.1): the rest waits for the rounds.
    for _ in range(4):
        age_refunds(sql, merchant)
        await order_round(merchant_client.app)
    for number in merchant.refunds_made:
        merchant.settle_refund(number)
    await order_round(merchant_client.app)
    mine = refunds(sql, order["id"])
    total = sum(r["amount"] for r in mine if r["status"] == "success")
    state = order_state(sql, order["id"])
    # The outcome goes to the log (shown with -o log_cli=true), not into the run's progress dots.
    log.info("%s: %d concurrent clicks of 50.00 on an order paid 199.00: %d refunds recorded, %.2f refunded, "
             "order status %s, membership running: %s", merchant.version, n, len(mine), total / 100,
             state["status"], member(sql)["running"])
    log.info("%s: %d clicks of one 199.00 form: %d refund recorded, order status %s, membership running: %s; "
             "refunds made at WeChat Pay: %d", merchant.version, n, len(refunds(sql, other["id"])),
             order_state(sql, other["id"])["status"], member(sql, "bob")["running"], len(merchant.refunds_made))
    assert len(mine) == 3 and total == 15000 and state == {"status": 1, "pay_amount": PRICE,
                                                              "refund_reserved": 15000}
    assert member(sql)["running"]
    assert len(refunds(sql, other["id"])) == 1 and order_state(sql, other["id"])["status"] == 4
    assert not member(sql, "bob")["running"]
    assert sorted(merchant.refunds_made) == sorted(r["out_refund_no"] for r in refunds(sql))


# SIGNERROR: WeChat refused our request's signature (v3 identifies the merchant by it): as it is, it can never
# pass (a key that is not the certificate's is refused at start-up, test_v3_key_files_stop_the_start_up).
@pytest.mark.parametrize("code", ["USER_ACCOUNT_ABNORMAL", "SIGNERROR"])
async def test_refused_for_good_releases_the_amount(merchant_client, wechat, merchant, sql, code):
    order = await paid_order(merchant_client, wechat, merchant, sql)
    await console(merchant_client, sql)
    merchant.fail(REFUND, code)
    await refund(merchant_client, order["id"], "199.00")
    [row] = refunds(sql)
    assert row["status"] == "failed" and code in row["last_error"]
    assert merchant.count(REFUND) == 1
    assert order_state(sql, order["id"]) == {"status": 1, "pay_amount": PRICE, "refund_reserved": 0}
    assert member(sql)["running"] and merchant.refunds_made == []
    # A retryable answer leaves it pending for the round.
    merchant.fail(REFUND, "SYSTEMERROR")
    await refund(merchant_client, order["id"], "10.00")
    assert refunds(sql)[-1]["status"] == "pending" and "SYSTEMERROR" in refunds(sql)[-1]["last_error"]
    assert order_state(sql, order["id"]) == {"status": 3, "pay_amount": PRICE, "refund_reserved": 1000}


# v2 only: TRADE_OVERDUE (past the refund period) is a v2 err_code; the v3 form is the test above.
async def test_refused_as_overdue_releases_the_amount(refund_client, wechat, tls_pay, tls_merchant, sql):
    order = await paid_order(refund_client, wechat, tls_merchant, sql)
    await console(refund_client, sql)
    tls_pay.fail(fake_pay.REFUND, "TRADE_OVERDUE")
    await refund(refund_client, order["id"], "199.00")
    [row] = refunds(sql)
    assert row["status"] == "failed" and "TRADE_OVERDUE" in row["last_error"]
    assert order_state(sql, order["id"]) == {"status": 1, "pay_amount": PRICE, "refund_reserved": 0}
    assert member(sql)["running"]
    # A retryable answer leaves it pending for the round.
    tls_pay.fail(fake_pay.REFUND, "SYSTEMERROR")
    await refund(refund_client, order["id"], "10.00")
    assert refunds(sql)[-1]["status"] == "pending" and order_state(sql, order["id"])["status"] == 3


async def test_refundquery_closed_releases_the_amount(merchant_client, wechat, merchant, sql):
    order = await paid_order(merchant_client, wechat, merchant, sql)
    await console(merchant_client, sql)
    number = await refund(merchant_client, order["id"], "20.00")
    merchant.settle_refund(number, CLOSED)
    await post_form(merchant_client, f"/admin/orders/{order['id']}/refunds/1/check",
                    token_from=f"/admin/orders/{order['id']}")
    assert [r["status"] for r in refunds(sql)] == ["closed"]
    assert order_state(sql, order["id"]) == {"status": 1, "pay_amount": PRICE, "refund_reserved": 0}


# v2 only: secapi's client certificate (v3 has no mutual TLS; its form is test_v3_key_files_stop_the_start_up).
async def test_secapi_needs_our_client_certificate(make_client, wechat, tls_pay, tls_merchant, pki, sql):
    # No certificate configured: refused here before anything is sent; the amount is released.
    client = await make_client(**fake_wechat.settings_for(wechat), **fake_pay.settings_for(
        tls_pay, wechatpay_ca_file=str(pki.ca)))
    order = await paid_order(client, wechat, tls_merchant, sql)
    await console(client, sql)
    await refund(client, order["id"], "199.00")
    assert refunds(sql)[0]["status"] == "failed" and "NO_CERTIFICATE" in refunds(sql)[0]["last_error"]
    assert tls_pay.count(fake_pay.REFUND) == 0 and order_state(sql, order["id"])["refund_reserved"] == 0


# v2 only: the mutual-TLS handshake; the v3 form (requests signed with another key) is the test after it.
async def test_a_certificate_of_another_ca_fails_the_handshake(make_client, wechat, tls_pay, tls_merchant, pki, sql):
    client = await make_client(**fake_wechat.settings_for(wechat), **fake_pay.settings_for(
        tls_pay, wechatpay_ca_file=str(pki.ca), wechatpay_cert_path=str(pki.stranger_cert),
        wechatpay_key_path=str(pki.stranger_key)))
    order = await paid_order(client, wechat, tls_merchant, sql)
    await console(client, sql)
    await refund(client, order["id"], "199.00")
    [row] = refunds(sql)
    assert row["status"] == "pending" and "UNAVAILABLE" in row["last_error"]
    assert tls_pay.count(fake_pay.REFUND) == 0 and tls_pay.refunds_made == []


# v2 only: the v2 fake's own rule about secapi.
async def test_the_fake_refuses_secapi_without_a_certificate(tls_pay, pki):
    """The fake follows the reference: no certificate shown, no refund (our own client always shows one)."""
    context = aiohttp.TCPConnector(ssl=ssl.create_default_context(cafile=str(pki.ca)))
    async with aiohttp.ClientSession(connector=context) as session:
        async with session.post(tls_pay.base_url + fake_pay.REFUND, data=b"<xml></xml>") as resp:
            answer = fake_pay.parse(await resp.read())
    assert answer == {"return_code": "FAIL", "return_msg": "请求需要双向证书"}


# Neither version: dev payments (no merchant configured).
async def test_dev_payment_refunds_complete_at_once(client, sql):
    product = add_product(sql)
    token = await dev_buyer(client, sql)
    order = await commit(client, token, product)
    assert (await call(client, "POST", PRE_ORDER, token, id=order["id"]))[0] == 200
    assert (await call(client, "POST", "/api/v1/pay/dev/complete", token, id=order["id"]))[0] == 200
    await console(client, sql)
    await refund(client, order["id"], "199.00")
    [row] = refunds(sql)
    assert row["status"] == "success" and row["refund_id"].startswith("DEV")
    assert order_state(sql, order["id"])["status"] == 4 and messages(sql) == [("dev", "success")]
    status, info = await call(client, "GET", "/api/v1/user/info", token)
    assert info["member_status"] == 3
    resp = await client.get("/metrics")
    families = {f.name: f for f in text_string_to_metric_families(await resp.text())}
    assert [(s.labels, s.value) for s in families["jiandong_refunds"].samples if s.name.endswith("_total")] == [
        ({"outcome": "success"}, 1.0)]
    assert [s.value for s in families["jiandong_refunded_fen"].samples if s.name.endswith("_total")] == [19900.0]


async def test_refunds_are_for_owners_only(merchant_client, wechat, merchant, sql):
    order = await paid_order(merchant_client, wechat, merchant, sql)
    # Not even an owner without the form's CSRF token.
    await console(merchant_client, sql)
    resp = await merchant_client.post(f"/admin/orders/{order['id']}/refund", allow_redirects=False,
                                      data={"amount": "1", "reason": "x", "out_refund_no": "RNOCSRF00000"})
    assert resp.status == 403 and "CSRF" in await resp.text() and refunds(sql) == []
    add_admin(sql, "writer", "editor")
    assert (await sign_in(merchant_client, "writer")).status == 302
    page = await flashed(merchant_client, order["id"])
    assert "out_refund_no" not in page
    resp = await post_form(merchant_client, f"/admin/orders/{order['id']}/refund",
                           {"amount": "1", "reason": "x", "out_refund_no": "RNOTALLOWED000"},
                           token_from=f"/admin/orders/{order['id']}")
    assert resp.status == 403 and refunds(sql) == [] and merchant.count(REFUND) == 0


async def test_the_database_holds_the_sum_and_the_log(merchant_client, wechat, merchant, sql):
    order = await paid_order(merchant_client, wechat, merchant, sql)
    with pytest.raises(psycopg2.errors.CheckViolation):
        sql("UPDATE orders SET refund_reserved = pay_amount + 1 WHERE id = %s", order["id"])
    await console(merchant_client, sql)
    await refund(merchant_client, order["id"], "1.00")
    for statement in ("UPDATE audit_log SET summary = 'x'", "DELETE FROM audit_log"):
        with pytest.raises(psycopg2.errors.InsufficientPrivilege):
            sql(statement)
    assert len(sql("SELECT id FROM audit_log")) == 1


async def test_a_refund_notification_of_an_unknown_refund(merchant_client, wechat, merchant, sql):
    """Genuine (decrypts; v3: signed by WeChat too) but about no refund of ours: refused, so WeChat keeps
    telling; counted, not kept."""
    order = await paid_order(merchant_client, wechat, merchant, sql)
    await console(merchant_client, sql)
    number = await refund(merchant_client, order["id"], "1.00")
    merchant.settle_refund(number)
    body = merchant.refund_notification(number, out_refund_no_given="RUNKNOWN000000")
    assert not (await merchant.notify_refund(merchant_client, number, body))[1]
    assert messages(sql) == []
    metrics = await (await merchant_client.get("/metrics")).text()
    assert 'jiandong_notifications_dropped_total{kind="refund",reason="unknown_refund"} 1.0' in metrics


# -- the protocol: vectors and wechatpy ----------------------------------------------------------------

# v2 only: req_info's AES-256-ECB against the reference's vectors (v3's AES-256-GCM: test_fake_wechatpay_v3.py).
def test_decryption_matches_the_reference_vectors_and_wechatpy():
    short = decrypt_req_info(SHORT_REQ_INFO, VECTOR_KEY)
    assert short == {"out_refund_no": "R1", "refund_status": "SUCCESS"}
    # The fake's encryptor (its own code) gives the reference's bytes: ECB and PKCS#7 over 16 bytes.
    assert encrypt_req_info(SHORT_INNER, VECTOR_KEY) == SHORT_REQ_INFO
    assert hashlib.sha256(FULL_INNER.encode()).hexdigest() == FULL_SHA256
    full_req_info = encrypt_req_info(FULL_INNER, VECTOR_KEY)
    assert full_req_info.startswith("WBzGpzQuNpcFxIlFjUUD9BfnwwNUlVAs7bwvgHME4") and len(base64.b64decode(
        full_req_info)) == 784
    ours = decrypt_req_info(full_req_info, VECTOR_KEY)
    assert ours["refund_recv_accout"] == "支付用户零钱" and len(ours) == 13
    outer = (f"<xml><return_code>SUCCESS</return_code><appid><![CDATA[wx2421b1c4370ec43b]]></appid><mch_id>"
             f"<![CDATA[10000100]]></mch_id><nonce_str><![CDATA[TeqClE3i0mvn3DrK]]></nonce_str><req_info>"
             f"<![CDATA[{full_req_info}]]></req_info></xml>")
    theirs = WeChatPay("wx2421b1c4370ec43b", VECTOR_KEY, "10000100").parse_refund_notify_result(outer)
    assert {k: str(v) for k, v in theirs.items()} == ours
    # wechatpy's encryptor pads to 32 bytes (§4.4): a strict 16-byte unpadder refuses it.
    padded_32 = RefundCrypto(hashlib.md5(VECTOR_KEY.encode()).hexdigest().encode()).encrypt(FULL_INNER).decode()
    assert len(base64.b64decode(padded_32)) == 800
    with pytest.raises(ReqInfoError):
        decrypt_req_info(padded_32, VECTOR_KEY)


# v2 only: MD5 and HMAC-SHA256 request signatures (v3 signs with RSA: test_fake_wechatpay_v3.py).
def test_refund_request_signatures_match_the_reference():
    params = {"appid": "wx2421b1c4370ec43b", "mch_id": "10000100", "nonce_str": "6cefdb308e1e2e8aabd48cf79e546a02",
              "out_trade_no": "T20240601000001", "out_refund_no": "R20240601000001", "total_fee": "100",
              "refund_fee": "50", "refund_desc": "商品已售完", "notify_url": "https://example.com/wxpay/refund-notify"}
    assert wechatpay.sign(params, VECTOR_KEY) == "74036B2BE7A08EEE7BF14067368C0732"
    assert wechatpay.sign({**params, "sign_type": "HMAC-SHA256"}, VECTOR_KEY, wechatpay.HMAC_SHA256) == (
        "0344DA7B94011B7BC6C5FDF09283EA28AC716535A178945AFC7111AF7B457FEA")


# v2 only: refundquery's numbered `$n` records; v3's Refund JSON is read into one such record (the test after).
def test_refundquery_records_are_read_by_number():
    fields = {"refund_count": "2", "out_refund_no_0": "RA", "refund_status_0": "SUCCESS", "refund_fee_0": "5",
              "refund_success_time_0": "2024-06-01 12:00:05", "out_refund_no_1": "RB", "refund_status_1": "PROCESSING",
              "refund_recv_accout_1": "支付用户零钱"}
    records = query_records(fields)
    assert [(r.out_refund_no, r.refund_status) for r in records] == [("RA", "SUCCESS"), ("RB", "PROCESSING")]
    assert records[1].recv_account == "支付用户零钱" and query_records({"refund_count": "x"}) == []


def test_v3_refunds_are_read_in_v2s_names():
    """A v3 Refund (answer, query) is one refundquery record; a refund notification's resource is req_info's
    fields; ABNORMAL is v2's CHANGE (the "change" status), CLOSED v2's REFUNDCLOSE; an amount that is not a
    whole number of fen is left out (so the services refuse it as missing)."""
    answer = {"refund_id": "50300001", "out_refund_no": "RA", "transaction_id": "4200001", "out_trade_no": "T1",
              "user_received_account": "支付用户零钱", "status": "ABNORMAL",
              "success_time": "2024-06-01T12:00:05+08:00", "amount": {"total": 100, "refund": 50}}
    [record] = query_records(wechatpay_v3.refund_query_fields(answer))
    assert record == ("RA", "50300001", "50", CHANGE_V2, "2024-06-01 12:00:05", "支付用户零钱")
    assert query_records(wechatpay_v3.refund_query_fields({**answer, "status": "CLOSED"}))[0].refund_status == (
        REFUNDCLOSE)
    resource = {**answer, "refund_status": "ABNORMAL", "mchid": "1900000109"}
    del resource["status"]
    assert wechatpay_v3.refund_notification_fields(resource) == {
        "out_refund_no": "RA", "out_trade_no": "T1", "transaction_id": "4200001", "refund_id": "50300001",
        "refund_status": CHANGE_V2, "refund_fee": "50", "total_fee": "100", "success_time": "2024-06-01 12:00:05",
        "refund_recv_accout": "支付用户零钱"}
    for amount in ({"total": 100, "refund": "50"}, {"total": 100, "refund": 50.0}, {"total": 100, "refund": -1},
                   {"total": 100}):
        assert "refund_fee" not in wechatpay_v3.refund_notification_fields({**resource, "amount": amount})


# v2 only: the client certificate of secapi's mutual TLS; the v3 form is the test after it.
def test_an_unreadable_or_mismatched_certificate_is_refused(settings, pki, tmp_path):
    """What wechatpay_ctx builds at start-up: a missing file or a key of another certificate stops it."""
    with pytest.raises(FileNotFoundError):
        wechatpay.client_context(settings.replace(wechatpay_cert_path=str(tmp_path / "missing.pem"),
                                                  wechatpay_key_path=str(pki.client_key)))
    with pytest.raises(ssl.SSLError):
        wechatpay.client_context(settings.replace(wechatpay_cert_path=str(pki.client_cert),
                                                  wechatpay_key_path=str(pki.stranger_key)))
    assert wechatpay.client_context(settings) is None
    assert isinstance(wechatpay.client_context(settings.replace(
        wechatpay_cert_path=str(pki.client_cert), wechatpay_key_path=str(pki.client_key))), ssl.SSLContext)


def test_v3_key_files_stop_the_start_up(settings, pki, tmp_path):
    """What wechatpay_ctx loads at start-up for v3 (Keys.load): no merchant key is refused with the settings
    already; a missing file, a key v3 cannot sign with or a file that is no key stops it, naming the setting."""
    fake = fake_v3.FakeWeChatPayV3(tmp_path / "v3")
    good = settings.replace(wechat_appid=fake.appid, wechat_secret="secret", **fake_v3.settings_for(fake))
    assert wechatpay_provider.api_version(good) == "v3"
    keys = wechatpay_v3.Keys.load(good)
    assert keys.merchant_serial == fake.merchant_serial and set(keys.wechat_keys) == {fake.public_key_id}
    with pytest.raises(SettingsError, match="wechatpay_key_path"):
        good.replace(wechatpay_key_path="")
    missing = str(tmp_path / "missing.pem")
    for setting, path, refusal in (
        ("wechatpay_key_path", missing, "cannot be read"),
        ("wechatpay_cert_path", missing, "cannot be read"),
        ("wechatpay_public_key_path", missing, "cannot be read"),
        ("wechatpay_key_path", str(pki.client_key), "is not an RSA private key"),  # EC: v3 signs with RSA
        ("wechatpay_key_path", str(fake.merchant_cert_path), "is not an RSA private key"),
        ("wechatpay_cert_path", str(fake.merchant_key_path), "is not a certificate"),
    ):
        with pytest.raises(ValueError, match=f"JIANDONG_{setting.upper()}: {re.escape(path)} {refusal}"):
            wechatpay_v3.Keys.load(good.replace(**{setting: path}))
    # WeChat Pay's public key must be a bare public key, and not the merchant's own (a certificate there is a
    # platform certificate or the merchant's: with it, no signature of WeChat Pay's would ever hold).
    with pytest.raises(ValueError, match="JIANDONG_WECHATPAY_PUBLIC_KEY_PATH: .* is not a public key"):
        wechatpay_v3.Keys.load(good.replace(wechatpay_public_key_path=str(fake.merchant_cert_path)))
    own = tmp_path / "own_public_key.pem"
    own.write_bytes(fake.merchant_key.public_key().public_bytes(serialization.Encoding.PEM,
                                                                serialization.PublicFormat.SubjectPublicKeyInfo))
    with pytest.raises(ValueError, match="is the merchant's own key"):
        wechatpay_v3.Keys.load(good.replace(wechatpay_public_key_path=str(own)))
    with pytest.raises(ValueError, match="is the merchant's own key"):
        wechatpay_v3.Keys.load(good.replace(wechatpay_platform_cert_paths=(str(fake.merchant_cert_path),)))
    # An RSA key of another certificate would sign every request wrongly (SIGN_ERROR each time): refused.
    other = fake_v3.FakeWeChatPayV3(tmp_path / "other")
    with pytest.raises(ValueError, match=f"JIANDONG_WECHATPAY_KEY_PATH: {re.escape(str(other.merchant_key_path))} "
                                         "is not the key of the certificate"):
        wechatpay_v3.Keys.load(good.replace(wechatpay_key_path=str(other.merchant_key_path)))


# v2 only: wechatpy is a v2 client, and the v2 fake's own rules (test_fake_wechatpay_v3.py holds the v3 fake's).
async def test_the_fake_serves_wechatpy_over_mutual_tls(refund_client, wechat, tls_pay, tls_merchant, sql, pki):
    """An independent client (wechatpy, requests with the certificate) refunds and queries at the fake as the
    reference says: one refund per out_refund_no, a changed amount refused, no more than the payment."""
    order = await paid_order(refund_client, wechat, tls_merchant, sql)
    client = WeChatPay(tls_pay.appid, tls_pay.key, tls_pay.mch_id, mch_cert=str(pki.client_cert),
                       mch_key=str(pki.client_key))
    client.API_BASE_URL = tls_pay.base_url + "/"
    client._http.verify = str(pki.ca)
    client._http.trust_env = False  # REQUESTS_CA_BUNDLE, where set, would win over `verify`
    # One connection per call, closed by the server once answered: none is left open when the fake stops.
    client._http.headers["Connection"] = "close"

    def apply(number: str, fee: int) -> dict:
        return client.refund.apply(total_fee=PRICE, refund_fee=fee, out_refund_no=number,
                                   out_trade_no=order["order_no"])

    async def refused(call, *args, **kwargs) -> str:
        with pytest.raises(WeChatPayException) as info:
            await asyncio.to_thread(call, *args, **kwargs)
        return info.value.errcode

    try:
        first = await asyncio.to_thread(apply, "RWECHATPY0001", 100)
        again = await asyncio.to_thread(apply, "RWECHATPY0001", 100)
        assert first["refund_id"] == again["refund_id"] and tls_pay.refunds_made == ["RWECHATPY0001"]
        assert await refused(apply, "RWECHATPY0001", 200) == "REFUND_FEE_MISMATCH"
        assert await refused(apply, "RWECHATPY0002", 100) == "FREQUENCY_LIMITED"
        tls_pay.advance(2)
        assert await refused(apply, "RWECHATPY0003", PRICE) == "ERROR"
        answer = await asyncio.to_thread(client.refund.query, out_refund_no="RWECHATPY0001")
        assert answer["refund_status_0"] == "PROCESSING" and answer["refund_fee_0"] == "100"
        assert await refused(client.refund.query, out_refund_no="RNOSUCHREFUND") == "REFUNDNOTEXIST"
    finally:
        client._http.close()


def test_the_refund_notify_url(settings):
    assert notify_url(settings) == "http://localhost:8080" + REFUND_NOTIFY
    assert notify_url(settings.replace(public_url="https://club.example.com")) == (
        "https://club.example.com" + REFUND_NOTIFY)
    pay_notify = settings.replace(wechatpay_notify_url="https://pay.example.com/api/v1/pay/notify")
    assert notify_url(pay_notify) == "https://pay.example.com" + REFUND_NOTIFY
    assert notify_url(pay_notify.replace(wechatpay_refund_notify_url="https://x.example.com/r")) == (
        "https://x.example.com/r")
