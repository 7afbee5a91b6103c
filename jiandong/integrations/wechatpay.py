"""WeChat Pay API v2: signatures, XML, unifiedorder / orderquery / closeorder, refund (mutual TLS) / refundquery,
JSAPI parameters; a dev stand-in."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import logging
import secrets
import ssl
import time
import typing
import xml.etree.ElementTree as ET
from zoneinfo import ZoneInfo

import aiohttp
import defusedxml
import defusedxml.ElementTree

from ..settings import Settings
from .wechatpay_refund import decrypt_req_info

logger = logging.getLogger(__name__)

MD5, HMAC_SHA256 = "MD5", "HMAC-SHA256"
SUCCESS, FAIL = "SUCCESS", "FAIL"
# WeChat Pay states its times (time_start, time_expire, time_end) in Beijing time, whatever the club's zone.
WECHAT_TZ = ZoneInfo("Asia/Shanghai")
WECHAT_TIME = "%Y%m%d%H%M%S"
# Far above any real answer or notification (a few hundred bytes); bounds what one request makes us parse.
MAX_XML_SIZE = 64 * 1024
# WeChat limits `body` to 127 (UTF-8) bytes.
MAX_BODY_BYTES = 127
# closeorder cannot be called right after the order is created at WeChat: wait at least 5 minutes (§3.5).
CLOSE_ORDER_DELAY = dt.timedelta(minutes=5)
# unifiedorder's time_expire must lie more than 5 minutes ahead (§3.1, older doc; newer pages differ, unverified).
MIN_TIME_EXPIRE_AHEAD = dt.timedelta(minutes=5)

UNIFIED_ORDER_PATH = "/pay/unifiedorder"
ORDER_QUERY_PATH = "/pay/orderquery"
CLOSE_ORDER_PATH = "/pay/closeorder"
# Refunds (wechatpay-refund.md §1, §2): the refund needs the merchant's API client certificate, the query does not.
REFUND_PATH = "/secapi/pay/refund"
REFUND_QUERY_PATH = "/pay/refundquery"
# refund_desc is String(80) (§1.3); counted in characters here, our own reading of "String(80)".
MAX_REFUND_DESC = 80


class XmlError(ValueError):
    """The body is not a flat WeChat Pay `<xml>` document (or uses DTDs / entities)."""


class PayError(Exception):
    """WeChat Pay refused a call or could not be reached; `code` is its err_code (or FAIL / UNAVAILABLE)."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(f"{code}: {reason}")
        self.code = code
        self.reason = reason


# -- signatures ---------------------------------------------------------------------------------

def sign_string(params: typing.Mapping[str, typing.Any], key: str) -> str:
    """`stringSignTemp`: non-empty fields but `sign`, by name, raw values, then `&key=`."""
    pairs = [f"{name}={params[name]}" for name in sorted(params) if name != "sign" and str(params[name]) != ""]
    pairs.append(f"key={key}")
    return "&".join(pairs)


def sign(params: typing.Mapping[str, typing.Any], key: str, sign_type: str = MD5) -> str:
    """The v2 signature (upper-case hex) of `params` with the merchant API key."""
    data = sign_string(params, key).encode()
    if sign_type == MD5:
        return hashlib.md5(data).hexdigest().upper()
    if sign_type == HMAC_SHA256:
        return hmac.new(key.encode(), data, hashlib.sha256).hexdigest().upper()
    raise ValueError(f"unknown sign type {sign_type!r}")


def check_sign(params: typing.Mapping[str, str], key: str, sign_type: str = MD5) -> bool:
    """Whether `params["sign"]` is the signature of all the other fields (constant-time compare)."""
    given = params.get("sign", "")
    if not given:
        return False
    try:
        expected = sign(params, key, sign_type)
    except ValueError:
        return False
    return hmac.compare_digest(given.encode(), expected.encode())


# -- XML ----------------------------------------------------------------------------------------

def _cdata(value: str) -> str:
    # "]]>" cannot appear inside one CDATA section: split it across two.
    return "<![CDATA[" + value.replace("]]>", "]]]]><![CDATA[>") + "]]>"


def to_xml(params: typing.Mapping[str, typing.Any]) -> str:
    """`<xml>` with the fields by name, digit-only values bare, others in CDATA, `sign` last (as wechatpy)."""
    parts = ["<xml>"]
    for name in sorted(params, key=lambda n: (n == "sign", n)):
        value = str(params[name])
        parts.append(f"<{name}>{value if value.isdigit() and value.isascii() else _cdata(value)}</{name}>")
    parts.append("</xml>")
    return "".join(parts)


def parse_xml(body: bytes | str) -> dict[str, str]:
    """The fields of a flat `<xml>` document. No DTD, no entities; a field given twice is refused."""
    if len(body) > MAX_XML_SIZE:
        raise XmlError("document too large")
    try:
        root = defusedxml.ElementTree.fromstring(body, forbid_dtd=True)
    except (ET.ParseError, defusedxml.DefusedXmlException, ValueError) as exc:
        raise XmlError(type(exc).__name__) from None
    if root.tag != "xml":
        raise XmlError(f"root element is <{root.tag}>, not <xml>")
    fields: dict[str, str] = {}
    for child in root:
        if not isinstance(child.tag, str):
            continue
        if child.tag in fields:
            # Two values for one name would let the signed value and the used value differ.
            raise XmlError(f"field {child.tag} given twice")
        if len(child):
            raise XmlError(f"field {child.tag} is not flat")
        fields[child.tag] = (child.text or "").strip()
    return fields


def xml_reply(ok: bool, message: str = "OK") -> str:
    """The answer to a notification: SUCCESS stops WeChat's retries, FAIL asks for them."""
    return to_xml({"return_code": SUCCESS if ok else FAIL, "return_msg": message if not ok else "OK"})


# -- times --------------------------------------------------------------------------------------

def wechat_time(value: dt.datetime) -> str:
    return value.astimezone(WECHAT_TZ).strftime(WECHAT_TIME)


def parse_wechat_time(value: str) -> dt.datetime | None:
    try:
        return dt.datetime.strptime(value, WECHAT_TIME).replace(tzinfo=WECHAT_TZ)
    except (TypeError, ValueError):
        return None


def nonce() -> str:
    return secrets.token_hex(16)


def truncate_body(text: str) -> str:
    """`text` cut to WeChat's 127 UTF-8 bytes without splitting a character."""
    data = text.encode()[:MAX_BODY_BYTES]
    return data.decode("utf-8", "ignore")


# -- the providers ------------------------------------------------------------------------------

class WeChatPay(typing.Protocol):
    appid: str
    mch_id: str
    sign_type: str
    dev: bool

    def verify(self, fields: typing.Mapping[str, str]) -> bool:
        """Whether a notification's signature is ours."""

    def decrypt_refund(self, req_info: str) -> dict[str, str]:
        """The fields of a refund notification's `req_info`; ReqInfoError when it is not ours."""

    def jsapi_params(self, prepay_id: str) -> dict[str, str]:
        """The signed parameters of `wx.chooseWXPay` / `getBrandWCPayRequest`."""

    async def unified_order(
        self,
        *,
        out_trade_no: str,
        total_fee: int,
        body: str,
        openid: str,
        client_ip: str,
        notify_url: str,
        time_start: dt.datetime,
        time_expire: dt.datetime,
    ) -> str:
        """A prepay id for the order; PayError when WeChat refuses or cannot be reached."""

    async def order_query(self, out_trade_no: str) -> tuple[dict[str, str], str]:
        """The order's fields at WeChat (`trade_state` ...) and the raw answer; PayError on failure."""

    async def close_order(self, out_trade_no: str) -> None:
        """Close the order at WeChat so it can no longer be paid; PayError (e.g. ORDERPAID) on failure."""

    async def refund(
        self, *, out_trade_no: str, out_refund_no: str, total_fee: int, refund_fee: int, refund_desc: str,
        notify_url: str,
    ) -> dict[str, str]:
        """Ask for a refund (§1): the answer's fields (`refund_id` ...) when WeChat *accepted* it (the outcome
        comes later); PayError with WeChat's err_code (§1.5) or UNAVAILABLE (the outcome is then unknown:
        send it again with the same out_refund_no, which refunds only once, §1.1)."""

    async def refund_query(self, out_refund_no: str) -> dict[str, str]:
        """refundquery by out_refund_no (§2): the answer's fields (records `refund_status_0` ...); PayError."""


class _Signer:
    appid: str
    mch_id: str
    sign_type: str
    _key: str

    def verify(self, fields: typing.Mapping[str, str]) -> bool:
        # A notification may name its sign type; without one it is signed like our requests.
        sign_type = fields.get("sign_type") or self.sign_type
        return check_sign(fields, self._key, sign_type)

    def decrypt_refund(self, req_info: str) -> dict[str, str]:
        """A refund notification's `req_info` decrypted with our API key (wechatpay_refund.py); ReqInfoError."""
        return decrypt_req_info(req_info, self._key)

    def jsapi_params(
        self, prepay_id: str, *, timestamp: str | None = None, nonce_str: str | None = None
    ) -> dict[str, str]:
        params = {
            "appId": self.appid,
            "timeStamp": timestamp or str(int(time.time())),
            "nonceStr": nonce_str or nonce(),
            "package": f"prepay_id={prepay_id}",
            "signType": self.sign_type,
        }
        # Signed under the key name timeStamp even for the JS-SDK, which reads `timestamp`.
        params["paySign"] = sign(params, self._key, self.sign_type)
        return params


class RealWeChatPay(_Signer):
    """The merchant API over the shared client session; every answer's signature is checked."""

    dev = False

    def __init__(self, session: aiohttp.ClientSession, settings: Settings) -> None:
        self.appid = settings.wechat_appid
        self.mch_id = settings.wechatpay_mch_id
        self.sign_type = settings.pay_sign_type
        self._key = settings.wechatpay_api_key
        self._base = settings.wechatpay_api_url.rstrip("/")
        self._session = session
        # True: aiohttp's default verification; a context of our own when another CA bundle is configured.
        self._server_ssl: ssl.SSLContext | bool = server_context(settings) or True
        self._client_ssl = client_context(settings)

    async def _call(
        self, path: str, params: dict[str, str], *, tls: ssl.SSLContext | bool | None = None
    ) -> tuple[dict[str, str], str]:
        """POST a signed request; the business fields of a SUCCESS/SUCCESS answer, else PayError.

        Every failure is logged here, once, as one line with the order number (no traceback: they are
        WeChat's routine answers and outages, not our bugs); callers do not log it again.
        """
        order = params.get("out_refund_no") or params.get("out_trade_no", "?")
        request = {**params, "appid": self.appid, "mch_id": self.mch_id, "nonce_str": nonce(),
                   "sign_type": self.sign_type}
        request["sign"] = sign(request, self._key, self.sign_type)
        try:
            async with self._session.post(
                self._base + path, data=to_xml(request).encode(), headers={"Content-Type": "text/xml; charset=utf-8"},
                ssl=self._server_ssl if tls is None else tls,
            ) as resp:
                status = resp.status
                body = await resp.read()
        except TimeoutError:
            logger.warning("WeChat Pay %s for order %s timed out", path, order)
            raise PayError("UNAVAILABLE", "微信支付响应超时") from None
        except aiohttp.ClientError as exc:
            logger.warning("WeChat Pay %s for order %s unreachable: %s", path, order, type(exc).__name__)
            raise PayError("UNAVAILABLE", "无法连接微信支付") from None
        if status != 200:
            logger.warning("WeChat Pay %s for order %s answered HTTP %s", path, order, status)
            raise PayError("UNAVAILABLE", f"微信支付服务异常 (HTTP {status})")
        try:
            fields = parse_xml(body)
        except XmlError as exc:
            logger.warning("WeChat Pay %s for order %s answered a body that is not its XML: %s", path, order, exc)
            raise PayError("UNAVAILABLE", "微信支付返回了无法识别的数据") from None
        if fields.get("return_code") != SUCCESS:
            message = fields.get("return_msg") or "通信失败"
            logger.warning("WeChat Pay %s for order %s: return_code %s (%s)", path, order,
                           fields.get("return_code"), message)
            raise PayError(FAIL, message)
        if not check_sign(fields, self._key, self.sign_type):
            logger.error("WeChat Pay %s for order %s answered with a wrong signature; the answer is ignored",
                         path, order)
            raise PayError("SIGNERROR", "微信支付应答签名错误")
        if fields.get("appid") != self.appid or fields.get("mch_id") != self.mch_id:
            logger.error("WeChat Pay %s for order %s answered for another appid or mch_id", path, order)
            raise PayError("UNAVAILABLE", "微信支付应答的商户不符")
        if fields.get("result_code") != SUCCESS:
            code = fields.get("err_code") or FAIL
            reason = fields.get("err_code_des") or code
            logger.warning("WeChat Pay %s for order %s: err_code %s (%s)", path, order, code, reason)
            raise PayError(code, reason)
        return fields, body.decode("utf-8", "replace")

    async def unified_order(
        self,
        *,
        out_trade_no: str,
        total_fee: int,
        body: str,
        openid: str,
        client_ip: str,
        notify_url: str,
        time_start: dt.datetime,
        time_expire: dt.datetime,
    ) -> str:
        fields, _ = await self._call(UNIFIED_ORDER_PATH, {
            "body": truncate_body(body),
            "out_trade_no": out_trade_no,
            "total_fee": str(total_fee),
            "spbill_create_ip": client_ip,
            "notify_url": notify_url,
            "trade_type": "JSAPI",
            "openid": openid,
            "time_start": wechat_time(time_start),
            "time_expire": wechat_time(time_expire),
        })
        prepay_id = fields.get("prepay_id", "")
        if not prepay_id:
            raise PayError("UNAVAILABLE", "微信支付未返回 prepay_id")
        return prepay_id

    async def order_query(self, out_trade_no: str) -> tuple[dict[str, str], str]:
        return await self._call(ORDER_QUERY_PATH, {"out_trade_no": out_trade_no})

    async def close_order(self, out_trade_no: str) -> None:
        await self._call(CLOSE_ORDER_PATH, {"out_trade_no": out_trade_no})

    async def refund(
        self, *, out_trade_no: str, out_refund_no: str, total_fee: int, refund_fee: int, refund_desc: str,
        notify_url: str,
    ) -> dict[str, str]:
        if self._client_ssl is None:
            logger.error("refund %s: no merchant API certificate configured (wechatpay_cert_path)", out_refund_no)
            raise PayError("NO_CERTIFICATE", "未配置商户 API 证书，不能退款")
        fields, _ = await self._call(REFUND_PATH, {
            "out_trade_no": out_trade_no,
            "out_refund_no": out_refund_no,
            "total_fee": str(total_fee),
            "refund_fee": str(refund_fee),
            "refund_fee_type": "CNY",
            "refund_desc": refund_desc[:MAX_REFUND_DESC],
            "notify_url": notify_url,
        }, tls=self._client_ssl)
        return fields

    async def refund_query(self, out_refund_no: str) -> dict[str, str]:
        fields, _ = await self._call(REFUND_QUERY_PATH, {"out_refund_no": out_refund_no})
        return fields


def server_context(settings: Settings) -> ssl.SSLContext | None:
    """A context trusting `wechatpay_ca_file` (e.g. a company proxy's CA); None: the system's CAs."""
    if not settings.wechatpay_ca_file:
        return None
    return ssl.create_default_context(cafile=settings.wechatpay_ca_file)


def client_context(settings: Settings) -> ssl.SSLContext | None:
    """The mutual-TLS context of secapi calls: the merchant's API certificate and key (PEM, as exported from
    apiclient_cert.p12, wechatpay-refund.md §1.2); None when none is configured. Raises OSError / ssl.SSLError
    at start-up when the files cannot be read or do not match."""
    if not settings.wechatpay_cert_path:
        return None
    context = server_context(settings) or ssl.create_default_context()
    context.load_cert_chain(certfile=settings.wechatpay_cert_path, keyfile=settings.wechatpay_key_path)
    return context


DEV_MCH_ID = "dev"
DEV_APPID = "wxdevpayments"
DEV_TRADE_TYPE = "DEV"


class DevWeChatPay(_Signer):
    """Development payments: prepay ids made up locally, paid through the dev completion endpoint.

    Its notifications are signed with a key made per process, so nothing from outside can
    pass for one; WeChat is never called.
    """

    dev = True

    def __init__(self, settings: Settings) -> None:
        self.appid = settings.wechat_appid or DEV_APPID
        self.mch_id = DEV_MCH_ID
        self.sign_type = settings.pay_sign_type
        self._key = secrets.token_hex(16)

    async def unified_order(self, *, out_trade_no: str, total_fee: int, **_: typing.Any) -> str:
        logger.warning("DEV PAYMENT: made up prepay id for order %s (%d fen); no money moves", out_trade_no, total_fee)
        return f"dev_{secrets.token_hex(14)}"

    async def order_query(self, out_trade_no: str) -> tuple[dict[str, str], str]:
        # Dev payments are completed by the dev endpoint, never found by querying.
        fields = {"return_code": SUCCESS, "result_code": SUCCESS, "trade_state": "NOTPAY",
                  "out_trade_no": out_trade_no, "appid": self.appid, "mch_id": self.mch_id}
        return fields, to_xml(fields)

    async def close_order(self, out_trade_no: str) -> None:
        return None

    async def refund(self, *, out_refund_no: str, refund_fee: int, **_: typing.Any) -> dict[str, str]:
        logger.warning("DEV PAYMENT: refund %s of %d fen completed without money", out_refund_no, refund_fee)
        return {"refund_id": f"DEV{secrets.token_hex(8).upper()}", "out_refund_no": out_refund_no,
                "refund_fee": str(refund_fee)}

    async def refund_query(self, out_refund_no: str) -> dict[str, str]:
        # Dev refunds are complete when made (services/refunds.py); nothing is ever left to ask about.
        return {"refund_count": "1", "out_refund_no_0": out_refund_no, "refund_status_0": SUCCESS}

    def notification(self, *, out_trade_no: str, total_fee: int, openid: str) -> bytes:
        """A signed notification of a successful dev payment, shaped like WeChat's (§3.4)."""
        now = dt.datetime.now(WECHAT_TZ)
        fields = {
            "appid": self.appid,
            "mch_id": self.mch_id,
            "nonce_str": nonce(),
            "result_code": SUCCESS,
            "return_code": SUCCESS,
            "openid": openid,
            "is_subscribe": "N",
            "trade_type": DEV_TRADE_TYPE,
            "bank_type": "DEV",
            "total_fee": str(total_fee),
            "cash_fee": str(total_fee),
            "fee_type": "CNY",
            "transaction_id": f"DEV{now.strftime(WECHAT_TIME)}{secrets.token_hex(7).upper()}",
            "out_trade_no": out_trade_no,
            "time_end": now.strftime(WECHAT_TIME),
        }
        if self.sign_type != MD5:
            fields["sign_type"] = self.sign_type
        fields["sign"] = sign(fields, self._key, self.sign_type)
        return to_xml(fields).encode()
