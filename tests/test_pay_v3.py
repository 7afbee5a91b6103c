"""WeChat Pay API v3 end to end against the fake v3 server (tests/fakes/wechatpay_v3.py): what only v3 has —
the RSA paySign the pages get, notifications verified before they are decrypted, the signature probes, the
5-minute window, the switch-over from platform certificates to the public key."""

from __future__ import annotations

import asyncio
import base64
import json

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509 import load_pem_x509_certificate

from jiandong.integrations.wechatpay import PayError
from jiandong.keys import wechatpay_key
from tests.fakes import wechat as fake_wechat
from tests.fakes import wechatpay_v3 as fake_v3
from tests.fakes.wechatpay_v3 import CERTIFICATE, MIXED, PREPAY, PUBLIC_KEY, FakeWeChatPayV3
from tests.helpers.api import call
from tests.helpers.orders import PRE_ORDER, add_product, commit, order_row, wx_buyer

NOTIFY = "/api/v1/pay/notify"
JSAPI_KEYS = {"appId", "timeStamp", "timestamp", "nonceStr", "package", "signType", "paySign"}
FAIL = {"code": "FAIL", "message": "失败"}


async def v3_merchant(aiohttp_server, tmp_path, mode: str = PUBLIC_KEY) -> FakeWeChatPayV3:
    return await fake_v3.serve(aiohttp_server, FakeWeChatPayV3(tmp_path / f"v3-{mode}", mode=mode))


@pytest.fixture
async def v3pay(aiohttp_server, tmp_path):
    return await v3_merchant(aiohttp_server, tmp_path)


@pytest.fixture
async def v3_client(make_client, wechat, v3pay):
    return await make_client(**fake_wechat.settings_for(wechat), **fake_v3.settings_for(v3pay))


async def start_payment(client, wechat, sql, name: str = "alice"):
    product_id = add_product(sql)
    token = await wx_buyer(client, wechat, sql, name)
    order = await commit(client, token, product_id)
    status, params = await call(client, "POST", PRE_ORDER, token, id=order["id"])
    assert status == 200, params
    return token, order, params


def paid_state(sql, order_id: int):
    row = order_row(sql, order_id)
    return row["status"], row["transaction_id"], len(sql("SELECT 1 FROM member_extensions WHERE order_id = %s",
                                                         order_id))


def outcomes(sql, order_id: int) -> list[str]:
    return [r["outcome"] for r in sql("SELECT outcome FROM payment_notifications WHERE order_id = %s ORDER BY id",
                                      order_id)]


async def test_pre_order_gives_chooseWXPay_an_rsa_pay_sign_the_merchant_key_made(v3_client, wechat, v3pay, sql):  # noqa: N802
    _, order, params = await start_payment(v3_client, wechat, sql)
    assert set(params) == JSAPI_KEYS
    assert params["signType"] == "RSA" and params["timestamp"] == params["timeStamp"]
    prepay = v3pay.orders[order["order_no"]]
    assert params["appId"] == v3pay.appid and params["package"] == f"prepay_id={prepay.prepay_id}"
    # Checked with the merchant certificate's public key, as WeChat's client does (§3 "JS side").
    cert = load_pem_x509_certificate(v3pay.merchant_cert_path.read_bytes())
    public_key = cert.public_key()
    assert isinstance(public_key, rsa.RSAPublicKey)
    message = f"{params['appId']}\n{params['timeStamp']}\n{params['nonceStr']}\n{params['package']}\n".encode()
    public_key.verify(base64.b64decode(params["paySign"]), message, padding.PKCS1v15(), hashes.SHA256())
    # What prepay was asked: amounts in fen, the deadline as RFC 3339 in Beijing time, the openid.
    [(_, _, sent)] = [c for c in v3pay.calls if c[1] == PREPAY]
    row = order_row(sql, order["id"])
    assert sent["amount"] == {"total": 19900, "currency": "CNY"} and sent["payer"] == {"openid": "o-alice"}
    assert sent["out_trade_no"] == order["order_no"] and sent["notify_url"] == "https://club.example.com" + NOTIFY
    assert sent["time_expire"].endswith("+08:00") and row["prepay_id"] == prepay.prepay_id


async def test_a_notification_pays_the_order_once_and_is_answered_204(v3_client, wechat, v3pay, sql):
    _, order, _ = await start_payment(v3_client, wechat, sql)
    no = order["order_no"]
    v3pay.pay(no)
    assert await v3pay.notify(v3_client, no) == (204, "")
    status, transaction_id, extensions = paid_state(sql, order["id"])
    assert (status, transaction_id, extensions) == (1, v3pay.orders[no].transaction_id, 1)
    # WeChat sends it again: answered the same, nothing changes.
    assert await v3pay.notify(v3_client, no) == (204, "")
    assert paid_state(sql, order["id"]) == (1, transaction_id, 1)
    assert outcomes(sql, order["id"]) == ["paid", "duplicate"]
    # What is kept is the decrypted transaction.
    [raw] = sql("SELECT raw FROM payment_notifications WHERE outcome = 'paid'")
    assert json.loads(raw["raw"])["transaction_id"] == transaction_id


@pytest.mark.parametrize("forgery", [
    "signature of another key", "a signature probe", "a timestamp 6 minutes old", "another APIv3 key",
    "an unknown serial", "another amount", "another mchid",
])
async def test_a_notification_that_does_not_hold_pays_nothing(v3_client, wechat, v3pay, sql, forgery):
    _, order, _ = await start_payment(v3_client, wechat, sql)
    no = order["order_no"]
    v3pay.pay(no)
    options = {
        "signature of another key": {"signing_key": rsa.generate_private_key(public_exponent=65537, key_size=2048)},
        "a signature probe": {"signature": "WECHATPAY/SIGNTEST/" + "A" * 40},
        "a timestamp 6 minutes old": {"timestamp": v3pay.timestamp() - 360},
        "another APIv3 key": {"api_v3_key": "b" * 32},
        "an unknown serial": {"serial": "PUB_KEY_ID_0119000001000000000000000000"},
        "another amount": {"amount": {"total": 1, "payer_total": 1, "currency": "CNY", "payer_currency": "CNY"}},
        "another mchid": {"mchid": "1900000999"},
    }[forgery]
    status, body = await v3pay.notify(v3_client, no, v3pay.notification(no, **options))
    assert (status, json.loads(body)) == (400, FAIL)
    assert paid_state(sql, order["id"]) == (0, None, 0)


@pytest.mark.parametrize("mode", [CERTIFICATE, MIXED])
async def test_certificates_and_the_switch_over_to_the_public_key(make_client, wechat, aiohttp_server, tmp_path,
                                                                  sql, mode):
    pay = await v3_merchant(aiohttp_server, tmp_path, mode)
    client = await make_client(**fake_wechat.settings_for(wechat), **fake_v3.settings_for(pay))
    _, order, _ = await start_payment(client, wechat, sql)
    no = order["order_no"]
    pay.pay(no)
    serials = [pay.platform_serial] + ([pay.public_key_id] if mode == MIXED else [])
    # During a switch-over WeChat signs some notifications with each key (§5): both are taken.
    for serial in serials:
        assert await pay.notify(client, no, pay.notification(no, serial=serial)) == (204, "")
    assert paid_state(sql, order["id"])[0] == 1
    assert outcomes(sql, order["id"]) == ["paid", "duplicate"][:len(serials)]


async def test_an_answer_comes_only_after_the_commit_and_wechat_sends_again_until_it_does(v3_client, wechat, v3pay,
                                                                                          sql):
    """While the payment cannot be recorded the notification is not answered 204; WeChat's next try (15 s
    later, re-signed) is, and the order is paid once."""
    _, order, _ = await start_payment(v3_client, wechat, sql)
    no = order["order_no"]
    v3pay.pay(no)
    sql("CREATE FUNCTION refuse_extension() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN RAISE EXCEPTION 'member_extensions refused for the test'; END $$")
    sql("CREATE TRIGGER refuse_extension BEFORE INSERT ON member_extensions "
        "FOR EACH ROW EXECUTE FUNCTION refuse_extension()")
    status, _ = await v3pay.notify(v3_client, no)
    assert status == 500 and paid_state(sql, order["id"]) == (0, None, 0)
    sql("DROP TRIGGER refuse_extension ON member_extensions")
    # WeChat's schedule (15 s, 15 s, 30 s, ...): the next try is signed anew at its time.
    statuses = await v3pay.deliver(v3_client, NOTIFY, v3pay.notification(no, timestamp=v3pay.timestamp()))
    assert statuses == [204]
    assert paid_state(sql, order["id"])[0] == 1 and outcomes(sql, order["id"]) == ["paid"]


async def test_a_refused_notification_is_sent_again_and_taken_once_it_holds(v3_client, wechat, v3pay, sql):
    _, order, _ = await start_payment(v3_client, wechat, sql)
    no = order["order_no"]
    v3pay.pay(no)
    # A probe first (refused, 400); WeChat's retry carries a real signature.
    probe = v3pay.notification(no, signature="WECHATPAY/SIGNTEST/" + "B" * 40)
    assert await v3pay.deliver(v3_client, NOTIFY, probe) == [400, 204]
    assert paid_state(sql, order["id"])[0] == 1 and outcomes(sql, order["id"]) == ["paid"]


async def test_a_rotated_platform_certificate_is_downloaded_and_trusted(make_client, wechat, aiohttp_server,
                                                                        tmp_path, sql, caplog):
    """Certificate mode: WeChat Pay starts signing with a new certificate days before the old expires (§5). The
    server downloads the certificates at start-up and on a timer; a notification signed with the new one is
    taken once it was downloaded, and refused before."""
    pay = await v3_merchant(aiohttp_server, tmp_path, CERTIFICATE)
    client = await make_client(**fake_wechat.settings_for(wechat), **fake_v3.settings_for(pay))
    _, order, _ = await start_payment(client, wechat, sql)
    no = order["order_no"]
    pay.pay(no)
    new = pay.rotate_platform_certificate()
    status, _ = await pay.notify(client, no, pay.notification(no, serial=new))
    assert status == 400 and paid_state(sql, order["id"])[0] == 0
    v3 = client.app[wechatpay_key]
    assert await v3.refresh_certificates() == [new]
    assert f"platform certificate(s) {new} downloaded and trusted" in caplog.text
    assert await pay.notify(client, no, pay.notification(no, serial=new)) == (204, "")
    assert paid_state(sql, order["id"])[0] == 1
    # Asked again: nothing new.
    assert await v3.refresh_certificates() == []


async def test_certificates_that_do_not_hold_are_not_trusted(make_client, wechat, aiohttp_server, tmp_path):
    """A download answered with certificates sealed with another APIv3 key, or signed by nobody we know, adds
    nothing (PayError for the latter: the answer is not WeChat Pay's)."""
    pay = await v3_merchant(aiohttp_server, tmp_path, CERTIFICATE)
    client = await make_client(**fake_wechat.settings_for(wechat), **fake_v3.settings_for(pay))
    v3 = client.app[wechatpay_key]
    known = set(v3._verifier.keys)
    pay.rotate_platform_certificate()
    real_key = pay.api_v3_key
    pay.api_v3_key = "c" * 32  # the certificates sealed with a key that is not ours; the answer signed by the new one
    with pytest.raises(PayError):
        await v3.refresh_certificates()
    pay.api_v3_key = real_key
    pay.fail(fake_v3.CERTIFICATES, fake_v3.BAD_SIGN)
    with pytest.raises(PayError):
        await v3.refresh_certificates()
    assert set(v3._verifier.keys) == known


async def test_the_server_downloads_the_certificates_when_it_starts(make_client, wechat, aiohttp_server, tmp_path):
    pay = await v3_merchant(aiohttp_server, tmp_path, CERTIFICATE)
    new = pay.rotate_platform_certificate()
    client = await make_client(**fake_wechat.settings_for(wechat), **fake_v3.settings_for(pay))
    for _ in range(200):
        if new in client.app[wechatpay_key]._verifier.keys:
            break
        await asyncio.sleep(0.05)
    assert new in client.app[wechatpay_key]._verifier.keys and pay.count(fake_v3.CERTIFICATES) == 1


@pytest.mark.parametrize("header", ["Wechatpay-Signature", "Wechatpay-Serial", "Wechatpay-Timestamp"])
async def test_a_signature_header_given_twice_is_refused(v3_client, wechat, v3pay, sql, header):
    """Which of two values would be believed is not for the sender to choose: refused even when the first holds."""
    _, order, _ = await start_payment(v3_client, wechat, sql)
    no = order["order_no"]
    v3pay.pay(no)
    headers, body = v3pay.notification(no)
    twice = [*headers.items(), (header, headers[header])]
    resp = await v3_client.post(NOTIFY, data=body, headers=twice)
    assert (resp.status, await resp.json()) == (400, FAIL)
    assert paid_state(sql, order["id"]) == (0, None, 0)
