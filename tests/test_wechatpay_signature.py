"""WeChat Pay v2 signing and XML: the reference vectors, and a cross-check against wechatpy."""

import secrets

import pytest
import xmltodict
from wechatpy.pay import WeChatPay as WechatpyPay
from wechatpy.pay.utils import (
    calculate_signature,
    calculate_signature_hmac,
    dict_to_xml,
)

from jiandong.integrations import wechatpay
from jiandong.integrations.wechatpay import XmlError, check_sign, parse_xml, sign, sign_string, to_xml
from jiandong.settings import Settings

OFFICIAL = {"appid": "wxd930ea5d5a258f4f", "mch_id": "10000100", "device_info": "1000", "body": "test",
            "nonce_str": "ibuaiVcKdpRxkhJA"}
OFFICIAL_KEY = "192006250b4c09247ec02edce69f6a2d"
KEY = "0123456789abcdefghijklmnopqrstuv"
UNIFIED = {
    "appid": "wx1234567890abcdef", "body": "SportsClub-Annual Membership", "mch_id": "1900000109",
    "nonce_str": "5K8264ILTKCH16CQ2502SI8ZNMTM67VS", "notify_url": "https://club.example.com/api/pay/wechat/notify",
    "openid": "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o", "out_trade_no": "M20240101123000001", "sign_type": "MD5",
    "spbill_create_ip": "203.0.113.10", "total_fee": "19900", "trade_type": "JSAPI", "attach": "",
}
NOTIFY_XML = (
    "<xml><appid><![CDATA[wx1234567890abcdef]]></appid><bank_type><![CDATA[OTHERS]]></bank_type><cash_fee>19900"
    "</cash_fee><fee_type><![CDATA[CNY]]></fee_type><is_subscribe><![CDATA[Y]]></is_subscribe><mch_id>1900000109"
    "</mch_id><nonce_str><![CDATA[H59j94AwGShe0DAKtUJan76v4tlEVydL]]></nonce_str><openid><![CDATA["
    "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o]]></openid><out_trade_no><![CDATA[M20240101123000001]]></out_trade_no>"
    "<result_code><![CDATA[SUCCESS]]></result_code><return_code><![CDATA[SUCCESS]]></return_code><time_end>"
    "20240101123512</time_end><total_fee>19900</total_fee><trade_type><![CDATA[JSAPI]]></trade_type>"
    "<transaction_id>4200002024010112345678901234</transaction_id><sign><![CDATA[68EAA113DEDF52BD2B36408FA3EBF157]]>"
    "</sign></xml>"
)


def test_official_example():
    assert sign_string(OFFICIAL, OFFICIAL_KEY) == (
        "appid=wxd930ea5d5a258f4f&body=test&device_info=1000&mch_id=10000100&nonce_str=ibuaiVcKdpRxkhJA"
        "&key=192006250b4c09247ec02edce69f6a2d")
    assert sign(OFFICIAL, OFFICIAL_KEY) == "9A0A8659F005D6984697E2CA0A9CF3B7"
    assert sign(OFFICIAL, OFFICIAL_KEY, "HMAC-SHA256") == (
        "6A9AE1657590FD6257D693A078E1C3E4BB6BA4DC30B23E0EE2496E54170DACD6")


def test_own_unifiedorder_vector_and_body():
    assert sign_string(UNIFIED, KEY) == (
        "appid=wx1234567890abcdef&body=SportsClub-Annual Membership&mch_id=1900000109"
        "&nonce_str=5K8264ILTKCH16CQ2502SI8ZNMTM67VS&notify_url=https://club.example.com/api/pay/wechat/notify"
        "&openid=oUpF8uMuAJO_M2pxb1Q9zNjWeS6o&out_trade_no=M20240101123000001&sign_type=MD5"
        "&spbill_create_ip=203.0.113.10&total_fee=19900&trade_type=JSAPI&key=0123456789abcdefghijklmnopqrstuv")
    assert sign(UNIFIED, KEY) == "3C5B7E16E589E4DE5612AAEC7EB04FE6"
    assert sign({**UNIFIED, "sign_type": "HMAC-SHA256"}, KEY, "HMAC-SHA256") == (
        "E7C1DCB76AFCAC2A0653EBEBDFD9F07131381D387F7320BDBC24AC88755B9272")
    fields = {k: v for k, v in UNIFIED.items() if v}
    body = to_xml({**fields, "sign": sign(UNIFIED, KEY)})
    # The reference body is wechatpy's dict_to_xml, one field per line.
    assert body == dict_to_xml(fields, "3C5B7E16E589E4DE5612AAEC7EB04FE6").replace("\n", "")
    assert body.startswith("<xml><appid><![CDATA[wx1234567890abcdef]]></appid>")
    assert "<mch_id>1900000109</mch_id>" in body and "<total_fee>19900</total_fee>" in body
    assert body.endswith("<sign><![CDATA[3C5B7E16E589E4DE5612AAEC7EB04FE6]]></sign></xml>")


def test_chinese_body_hashes_utf8():
    params = {k: v for k, v in UNIFIED.items() if k not in ("sign_type", "attach")}
    params.update(body="体育俱乐部-年度会员", out_trade_no="M20240101123000002", total_fee="1")
    assert sign(params, KEY) == "1F3CC122DB5B12467492F3207090A364"


def test_jsapi_pay_sign_vectors():
    official = {"appId": "wx619a931576afe069", "nonceStr": "RIPb5Upk3ku7knU6",
                "package": "prepay_id=wx2611334392677180ea59742b3744840000", "signType": "MD5",
                "timeStamp": "1774495197"}
    key = "qazwsxedcrfvtgbyhnujmikolp111111"
    assert sign(official, key) == "1F2E9533D7D483FBCDBD0B9BCA76F97D"
    assert sign({**official, "signType": "HMAC-SHA256"}, key, "HMAC-SHA256") == (
        "4A04CF5B979A4920409A9DEF2322C33C96DE8E9A96830E648719C60EF991700E")
    second = {"appId": "wxd678efh567hg6787", "nonceStr": "5K8264ILTKCH16CQ2502SI8ZNMTM67VS",
              "package": "prepay_id=wx2017033010242291fcfe0db70013231072", "signType": "MD5", "timeStamp": "1490840662"}
    assert sign(second, key) == "22D9B4E54AB1950F51E0649E8810ACD6"


def _provider(sign_type="MD5", appid="wx1234567890abcdef"):
    settings = Settings(wechat_appid=appid, wechat_secret="s", wechatpay_mch_id="1900000109",
                        wechatpay_api_key=KEY, pay_sign_type=sign_type)
    return wechatpay.RealWeChatPay(session=None, settings=settings)  # type: ignore[arg-type]


def test_own_jsapi_params_match_the_reference_and_wechatpy():
    prepay = "wx201410272009395522657a690389285100"
    ours = _provider().jsapi_params(prepay, timestamp="1700000000", nonce_str="e61463f8efa94090b1f366cccfbbb444")
    assert ours == {"appId": "wx1234567890abcdef", "timeStamp": "1700000000",
                    "nonceStr": "e61463f8efa94090b1f366cccfbbb444", "signType": "MD5",
                    "package": "prepay_id=wx201410272009395522657a690389285100",
                    "paySign": "1C88D555FAC54E1F6DF23E81F65E1B7C"}
    theirs = WechatpyPay(appid="wx1234567890abcdef", api_key=KEY, mch_id="1900000109").jsapi.get_jsapi_params(
        prepay, timestamp="1700000000", nonce_str="e61463f8efa94090b1f366cccfbbb444")
    assert theirs == ours
    hmac_params = _provider("HMAC-SHA256").jsapi_params(
        prepay, timestamp="1700000000", nonce_str="e61463f8efa94090b1f366cccfbbb444")
    assert hmac_params["signType"] == "HMAC-SHA256"
    assert hmac_params["paySign"] == "C9D9CAD8001C3F37230EAE2963033D43E039465C4012705188963BFFDC9E2338"


def test_notification_vector_verifies_and_tampering_does_not():
    fields = parse_xml(NOTIFY_XML.encode())
    assert fields["total_fee"] == "19900" and fields["transaction_id"] == "4200002024010112345678901234"
    provider = _provider()
    assert provider.verify(fields)
    assert sign(fields, KEY) == "68EAA113DEDF52BD2B36408FA3EBF157"
    assert not provider.verify({**fields, "total_fee": "1"})
    assert not provider.verify({**fields, "sign": "68eaa113dedf52bd2b36408fa3ebf157"})
    assert not provider.verify({k: v for k, v in fields.items() if k != "sign"})
    # A field WeChat adds later is signed too, and so must be verified.
    assert not provider.verify({**fields, "settlement_total_fee": "19900"})
    # wechatpy agrees on the same body.
    parsed = WechatpyPay(appid="wx1234567890abcdef", api_key=KEY, mch_id="1900000109").parse_payment_result(NOTIFY_XML)
    assert parsed["total_fee"] == 19900


def test_hmac_notification_names_its_sign_type():
    fields = {"return_code": "SUCCESS", "appid": "wx1234567890abcdef", "total_fee": "1", "sign_type": "HMAC-SHA256"}
    fields["sign"] = calculate_signature_hmac(fields, KEY)
    assert _provider("MD5").verify(fields)
    without_type = {k: v for k, v in fields.items() if k not in ("sign_type", "sign")}
    without_type["sign"] = calculate_signature_hmac(without_type, KEY)
    assert _provider("HMAC-SHA256").verify(without_type)
    assert not _provider("MD5").verify(without_type)
    assert not check_sign({**fields, "sign_type": "SHA1"}, KEY, "SHA1")


@pytest.mark.parametrize("sign_type", ["MD5", "HMAC-SHA256"])
def test_matches_wechatpy_on_random_params(sign_type):
    reference = calculate_signature if sign_type == "MD5" else calculate_signature_hmac
    for _ in range(50):
        params = {
            secrets.choice(["appid", "body", "mch_id", "attach", "detail", "openid", "zzz", "Body", "a_b"]) + str(i):
                secrets.choice(["", "体育 会员", secrets.token_urlsafe(12), str(secrets.randbelow(10**6)), "a&b=c"])
            for i in range(8)
        }
        key = secrets.token_hex(16)
        assert sign(params, key, sign_type) == reference(params, key)


def test_xml_round_trip_and_wechatpy_reads_ours():
    fields = {"body": "会员 <年卡> & 更多", "total_fee": "19900", "attach": "a]]>b", "out_trade_no": "X1", "empty": "",
              "sign": "ABC"}
    text = to_xml(fields)
    assert text.endswith("<sign><![CDATA[ABC]]></sign></xml>")
    assert parse_xml(text.encode()) == fields
    assert {k: v or "" for k, v in xmltodict.parse(text)["xml"].items()} == fields


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"not xml",
        b"<html><body>502</body></html>",
        b"<xml><a>1</a><a>2</a></xml>",
        b"<xml><a><b>1</b></a></xml>",
        b'<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY e "boom">]><xml><a>&e;</a></xml>',
        b'<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY e SYSTEM "file:///etc/passwd">]><xml><a>&e;</a></xml>',
        (b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;">]>'
         b"<xml><a>&lol2;</a></xml>"),
        b"<xml><a>" + b"x" * (70 * 1024) + b"</a></xml>",
    ],
)
def test_parse_xml_refuses_what_is_not_a_flat_document(body):
    with pytest.raises(XmlError):
        parse_xml(body)


def test_truncate_body_keeps_whole_characters():
    assert wechatpay.truncate_body("会" * 100).encode() == ("会" * 42).encode()
    assert wechatpay.truncate_body("short") == "short"
