"""WeChat Pay API v3's cryptography against the reference's test vectors (wechatpay-v3.md §7, V1–V8), each
named, with the cases they refuse."""

from __future__ import annotations

import json

import pytest
from cryptography import x509

from jiandong.integrations import wechatpay_v3_crypto as v3
from tests.helpers.wechatpay_v3 import vector


def v2_headers() -> dict[str, str]:
    return dict(line.split(": ", 1) for line in vector("v2_headers.txt").splitlines() if line)


# -- signing -------------------------------------------------------------------------------------------

def test_v1_a_signature_of_source():
    key = v3.load_private_key(vector("v1_key.pem").encode())
    assert v3.sign(key, "source") == vector("v1_signature.txt")


def test_v6_the_pages_pay_sign_and_not_the_app_one():
    key = v3.load_private_key(vector("v6_key.pem").encode())
    pay_sign = v3.pay_sign(key, "wx2421b1c4370ec43b", "1554208460", "593BEC0C930BF1AFEB40B4A08C8FB242",
                           "wx201410272009395522657a690389285100")
    assert pay_sign == vector("v6_pay_sign.txt")
    # The APP variant signs the bare prepay id: a different value, which the pages must never get.
    app = v3.sign(key, v3.lines("wx2421b1c4370ec43b", "1554208460", "593BEC0C930BF1AFEB40B4A08C8FB242",
                                "wx201410272009395522657a690389285100"))
    assert app == vector("v6_app_sign.txt") != pay_sign


def test_v6_a_request_signature_in_its_authorization_header():
    key = v3.load_private_key(vector("v6_key.pem").encode())
    body = vector("v6_request_body.json").encode()
    header = v3.authorization("1900007291", "SERIAL", key, "POST", "/v3/pay/transactions/jsapi", body,
                              timestamp=1554208460, nonce="593BEC0C930BF1AFEB40B4A08C8FB242")
    assert header == ('WECHATPAY2-SHA256-RSA2048 mchid="1900007291",nonce_str="593BEC0C930BF1AFEB40B4A08C8FB242",'
                      'timestamp="1554208460",serial_no="SERIAL",'
                      f'signature="{vector("v6_request_signature.txt")}"')


def test_v7_the_signed_message_ends_every_line_the_empty_body_included():
    assert v3.lines("GET", "/v3/certificates", "1624523846", "A1B2C3D4E5F6G7", "") == \
        "GET\n/v3/certificates\n1624523846\nA1B2C3D4E5F6G7\n\n"
    assert v3.lines("POST", "/v3/certificates", "1624523846", "A1B2C3D4E5F6G7", "Hello World!\n") == \
        "POST\n/v3/certificates\n1624523846\nA1B2C3D4E5F6G7\nHello World!\n\n"


def test_a_request_nonce_is_32_upper_case_hex_digits_and_new_each_time():
    nonces = {v3.new_nonce() for _ in range(100)}
    assert len(nonces) == 100 and all(len(n) == 32 and n == n.upper() and int(n, 16) >= 0 for n in nonces)


# -- verifying -----------------------------------------------------------------------------------------

def test_v6_an_answer_verified_with_the_wechat_pay_public_key():
    key = v3.load_public_key(vector("v6_public_key.pem").encode())
    body = b'{"code_url":"weixin://wxpay/bizpayurl?pr=JyC91EIz1"}'
    signature = vector("v6_response_signature.txt")
    v3.verify_signature(key, "1722850421", "d824f2e086d3c1df967785d13fcd22ef", body, signature)
    with pytest.raises(v3.SignatureRefused, match="does not match"):
        v3.verify_signature(key, "1722850421", "d824f2e086d3c1df967785d13fcd22ef", body + b" ", signature)


def test_v2_a_notification_verified_by_its_certificate_then_decrypted():
    pem = vector("v2_certificate.pem").encode()
    assert v3.certificate_serial(pem) == "D7CE59D1F522D701"
    verifier = v3.Verifier({"D7CE59D1F522D701": v3.load_public_key(pem)})
    body = vector("v2_body.json").encode()
    verifier.verify(v2_headers(), body, now=1624523846)
    resource = json.loads(body)["resource"]
    plain = v3.decrypt(b"testMchAPIv3Key0", resource["nonce"], resource["associated_data"], resource["ciphertext"])
    assert plain.decode() == vector("v2_plaintext.json")


@pytest.mark.parametrize(("change", "says"), [
    (lambda h, b: ({**h, "Wechatpay-Serial": "PUB_KEY_ID_OTHER"}, b), "no key of ours"),
    (lambda h, b: ({**h, "Wechatpay-Signature-Type": "WECHATPAY2-SM2-WITH-SM3"}, b), "signature type"),
    (lambda h, b: ({**h, "Wechatpay-Signature": "WECHATPAY/SIGNTEST/" + h["Wechatpay-Signature"]}, b), "probe"),
    (lambda h, b: ({**h, "Wechatpay-Timestamp": ""}, b), "no timestamp"),
    (lambda h, b: ({**h, "Wechatpay-Nonce": "EcZ9Cmy4Xyx1i6RlJQzLcCyEqDa26NBZ"}, b), "does not match"),
    (lambda h, b: (h, b.replace(b"PAYSCORE", b"TRANSACTION")), "does not match"),
    (lambda h, b: ({**h, "Wechatpay-Signature": "not base64!"}, b), "not Base64"),
    (lambda h, b: ({k: v for k, v in h.items() if k != "Wechatpay-Signature"}, b), "does not match"),
], ids=["unknown serial", "other type", "signtest probe", "no timestamp",
        "nonce changed", "body changed", "not base64", "no signature"])
def test_v2_a_notification_changed_in_one_way_is_refused(change, says):
    pem = vector("v2_certificate.pem").encode()
    verifier = v3.Verifier({"D7CE59D1F522D701": v3.load_public_key(pem)})
    headers, body = change(v2_headers(), vector("v2_body.json").encode())
    with pytest.raises(v3.SignatureRefused, match=says):
        verifier.verify(headers, body, now=1624523846)


@pytest.mark.parametrize("seconds", [300, -300])
def test_v2_a_notification_is_believed_within_five_minutes_of_its_timestamp_only(seconds):
    pem = vector("v2_certificate.pem").encode()
    verifier = v3.Verifier({"D7CE59D1F522D701": v3.load_public_key(pem)})
    body = vector("v2_body.json").encode()
    verifier.verify(v2_headers(), body, now=1624523846 + seconds)
    with pytest.raises(v3.SignatureRefused, match="s from now"):
        verifier.verify(v2_headers(), body, now=1624523846 + seconds + (1 if seconds > 0 else -1))


def test_an_absent_signature_type_is_rsa():
    pem = vector("v2_certificate.pem").encode()
    headers = {k: v for k, v in v2_headers().items() if k != "Wechatpay-Signature-Type"}
    v3.Verifier({"D7CE59D1F522D701": v3.load_public_key(pem)}).verify(headers, vector("v2_body.json").encode(),
                                                                       now=1624523846)


def test_v8_a_payment_notification_in_public_key_mode():
    public = v3.load_private_key(vector("v6_key.pem").encode()).public_key()
    key_id = "PUB_KEY_ID_0000000000000000000000000000000000"
    # During a switch-over a certificate serial and the public key id are both known: each finds its key.
    verifier = v3.Verifier({"D7CE59D1F522D701": v3.load_public_key(vector("v2_certificate.pem").encode()),
                            key_id: public})
    headers = {"Wechatpay-Timestamp": "1735704006", "Wechatpay-Nonce": "593BEC0C930BF1AFEB40B4A08C8FB242",
               "Wechatpay-Serial": key_id, "Wechatpay-Signature-Type": "WECHATPAY2-SHA256-RSA2048",
               "Wechatpay-Signature": vector("v8_signature.txt")}
    body = vector("v8_body.json").encode()
    verifier.verify(headers, body, now=1735704006 + 299)
    resource = json.loads(body)["resource"]
    plain = v3.decrypt(b"0123456789abcdef0123456789abcdef", resource["nonce"], resource["associated_data"],
                       resource["ciphertext"])
    assert plain.decode() == vector("v8_plaintext.json")
    assert json.loads(plain)["amount"]["total"] == 19900
    # The same notification said to be signed by the certificate's key is refused.
    with pytest.raises(v3.SignatureRefused, match="does not match"):
        verifier.verify({**headers, "Wechatpay-Serial": "D7CE59D1F522D701"}, body, now=1735704006)


# -- decrypting ----------------------------------------------------------------------------------------

def test_v3_decrypt_and_what_it_refuses():
    aad, nonce = "Dl56FrqWQJF1t9LtC3vEUsniZKvbqdR8", "wCq51qZv4Yfg"
    assert v3.decrypt(b"testAPIv3Key0000", nonce, aad, "FsdXzxryWfKwvLJKf8LG/ToRPTRh8RN9wROC") == b"Hello World"
    for key, ciphertext, says in ((b"testAPIv3Key0000", "invalid cipher", "not Base64"),
                                  (b"testAPIv3Key0000", "SGVsbG8gV29ybGQK", "does not decrypt"),
                                  (b"not a aes key", "FsdXzxryWfKwvLJKf8LG/ToRPTRh8RN9wROC", "no AES key"),
                                  (b"testAPIv3Key1111", "FsdXzxryWfKwvLJKf8LG/ToRPTRh8RN9wROC", "does not decrypt")):
        with pytest.raises(v3.DecryptFailed, match=says):
            v3.decrypt(key, nonce, aad, ciphertext)


def test_v4_encrypt_is_decrypts_inverse():
    key = b"a7cde1ZJB1kG2e7VfTs3jQzaWizur8Gb"
    assert v3.encrypt(key, "uluk4a9R25RW", "associatedData", b"message") == "ulwSiIajGClcvcOYvOQ7+l+0PAbzzwI="
    assert v3.decrypt(key, "uluk4a9R25RW", "associatedData", "ulwSiIajGClcvcOYvOQ7+l+0PAbzzwI=") == b"message"


def test_v5_a_platform_certificate_download_decrypts_to_its_serial():
    (entry,) = json.loads(vector("v5_certificates.json"))["data"]
    sealed = entry["encrypt_certificate"]
    pem = v3.decrypt(b"a7cde1ZJB1kG2e7VfTs3jQzaWizur8Gb", sealed["nonce"], sealed["associated_data"],
                     sealed["ciphertext"])
    certificate = x509.load_pem_x509_certificate(pem)
    assert v3.certificate_serial(pem) == entry["serial_no"] == "5DEA10EF55877E3CF6C33255C2E7DEFFF7E427EC"
    assert certificate.not_valid_before_utc.isoformat() == "2023-09-19T15:15:58+00:00"
    assert v3.load_public_key(pem).key_size == 2048
