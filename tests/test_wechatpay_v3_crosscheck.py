"""Our WeChat Pay API v3 signatures and notifications against an independent implementation, wechatpayv3
2.0.4 (PyPI): what one signs the other verifies, what one seals the other opens."""

from __future__ import annotations

import json
import time

from cryptography.hazmat.primitives import serialization
from wechatpayv3 import WeChatPay, WeChatPayType
from wechatpayv3.utils import rsa_sign, rsa_verify

from jiandong.integrations import wechatpay_v3_crypto as v3
from tests.helpers.wechatpay_v3 import vector

MCHID, SERIAL, APPID = "1900007291", "5DEA10EF55877E3CF6C33255C2E7DEFFF7E427EC", "wx2421b1c4370ec43b"
API_V3_KEY = "0123456789abcdef0123456789abcdef"
KEY_ID = "PUB_KEY_ID_0000000000000000000000000000000000"


def their_client() -> WeChatPay:
    """wechatpayv3 in public-key mode (no network at its start): V6's key as the merchant's and WeChat's."""
    private = vector("v6_key.pem")
    public = v3.load_private_key(private.encode()).public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    return WeChatPay(wechatpay_type=WeChatPayType.JSAPI, mchid=MCHID, private_key=private, cert_serial_no=SERIAL,
                     appid=APPID, apiv3_key=API_V3_KEY, notify_url="https://club.example.com/api/v1/pay/notify",
                     public_key=public, public_key_id=KEY_ID)


def test_our_request_signature_is_theirs_for_the_same_message():
    key = v3.load_private_key(vector("v6_key.pem").encode())
    body = json.dumps({"mchid": MCHID, "out_trade_no": "JD1", "amount": {"total": 19900}}).encode()
    header = v3.authorization(MCHID, SERIAL, key, "POST", "/v3/pay/transactions/jsapi", body, 1735704000, "N0NCE")
    ours = header.rsplit('signature="', 1)[1].rstrip('"')
    theirs = rsa_sign(key, "POST\n/v3/pay/transactions/jsapi\n1735704000\nN0NCE\n%s\n" % body.decode())
    assert ours == theirs


def test_our_pay_sign_is_theirs():
    key = v3.load_private_key(vector("v6_key.pem").encode())
    ours = v3.pay_sign(key, APPID, "1735704000", "593BEC0C930BF1AFEB40B4A08C8FB242", "wx2025")
    assert ours == their_client().sign([APPID, "1735704000", "593BEC0C930BF1AFEB40B4A08C8FB242", "prepay_id=wx2025"])


def sealed_notification(signer, timestamp: int) -> tuple[dict[str, str], bytes, dict]:
    """A TRANSACTION.SUCCESS notification in public-key mode, its signature made by `signer(message)`."""
    paid = {"mchid": MCHID, "appid": APPID, "out_trade_no": "JD20261206000001", "transaction_id": "4200000001",
            "trade_state": "SUCCESS", "amount": {"total": 19900, "payer_total": 19900, "currency": "CNY"}}
    resource = {"original_type": "transaction", "algorithm": "AEAD_AES_256_GCM", "associated_data": "transaction",
                "nonce": "fdasflkja484",
                "ciphertext": v3.encrypt(API_V3_KEY.encode(), "fdasflkja484", "transaction", json.dumps(paid).encode())}
    body = json.dumps({"id": "EV-1", "create_time": "2026-12-06T12:00:06+08:00", "resource_type": "encrypt-resource",
                       "event_type": "TRANSACTION.SUCCESS", "summary": "支付成功", "resource": resource},
                      ensure_ascii=False).encode()
    nonce = "593BEC0C930BF1AFEB40B4A08C8FB242"
    headers = {"Wechatpay-Timestamp": str(timestamp), "Wechatpay-Nonce": nonce, "Wechatpay-Serial": KEY_ID,
               "Wechatpay-Signature-Type": "WECHATPAY2-SHA256-RSA2048",
               "Wechatpay-Signature": signer(f"{timestamp}\n{nonce}\n{body.decode()}\n")}
    return headers, body, paid


def test_a_notification_signed_by_their_code_is_accepted_by_ours():
    key = v3.load_private_key(vector("v6_key.pem").encode())
    now = int(time.time())
    headers, body, paid = sealed_notification(lambda message: rsa_sign(key, message), now)
    v3.Verifier({KEY_ID: key.public_key()}).verify(headers, body, now=now)
    resource = json.loads(body)["resource"]
    assert json.loads(v3.decrypt(API_V3_KEY.encode(), resource["nonce"], resource["associated_data"],
                                 resource["ciphertext"])) == paid


def test_a_notification_signed_by_ours_is_accepted_by_theirs():
    key = v3.load_private_key(vector("v6_key.pem").encode())
    headers, body, paid = sealed_notification(lambda message: v3.sign(key, message), int(time.time()))
    assert their_client().callback(headers, body)["resource"] == paid
    assert rsa_verify(headers["Wechatpay-Timestamp"], headers["Wechatpay-Nonce"], body.decode(),
                      headers["Wechatpay-Signature"], key.public_key())
    # And both refuse the same tampering.
    tampered = body.replace(b"TRANSACTION.SUCCESS", b"TRANSACTION.FAILED")
    assert their_client().callback(headers, tampered) is None
