"""A fake api.mch.weixin.qq.com (WeChat Pay API v2) following wechat-aliyun.md §3 and, for refunds,
wechatpay-refund.md (§ numbers of refund matters are that document's).

XML in and out. Requests are checked with wechatpy's signer (not the project's code) in the sign
type they name; answers and notifications are signed the same way. It keeps state per
out_trade_no (NOTPAY, SUCCESS, CLOSED), answers unifiedorder / orderquery / closeorder with the
documented error codes, can be told to fail (an err_code, HTTP 500, a bad signature, return_code
FAIL) or to hold a call until released, and can pay an order and post the notification to the
server under test like WeChat does.

Refunds: secapi/pay/refund answers only a caller that showed a client certificate of the test CA
(served over TLS, `serve(..., pki=...)`), refunds an out_refund_no only once (§1.1), refuses a refund
beyond what is left of the payment, and a second refund of one order within a minute (§1.1);
refundquery answers the $n records (§2); `refund_notification` encrypts req_info as §3 says, with its
own AES code (not the project's), for `notify_refund` to post.

Its clock (`now`) is the real one plus an offset tests move forward with `advance`, for the timing
rules it enforces: closeorder only 5 minutes after the order's creation (§3.5), and a time_expire
more than 5 minutes ahead (§3.1).
"""

from __future__ import annotations

import asyncio
import base64
import collections
import dataclasses
import datetime as dt
import hashlib
import secrets
import typing
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import xmltodict
from aiohttp import web
from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from wechatpy.pay.utils import (
    calculate_signature,
    calculate_signature_hmac,
    dict_to_xml,
)

UNIFIED_ORDER = "/pay/unifiedorder"
ORDER_QUERY = "/pay/orderquery"
CLOSE_ORDER = "/pay/closeorder"
REFUND = "/secapi/pay/refund"
REFUND_QUERY = "/pay/refundquery"

# Failure modes besides an err_code such as "SYSTEMERROR" or "ORDERPAID".
HTTP_500 = "http500"
BAD_SIGN = "badsign"
RETURN_FAIL = "return_fail"

ERR_CODE_DES = {
    "SYSTEMERROR": "系统错误",
    "ORDERPAID": "该订单已支付",
    "ORDERCLOSED": "订单已关闭",
    "ORDERNOTEXIST": "此交易订单号不存在",
    "INVALID_REQUEST": "参数错误",
    "OUT_TRADE_NO_USED": "商户订单号重复",
    "NOAUTH": "商户无此接口权限",
    "LACK_PARAMS": "缺少参数",
    "PARAM_ERROR": "参数错误",
    "REFUNDNOTEXIST": "退款订单查询失败",
    "FREQUENCY_LIMITED": "单笔订单请求频率过高,请于1分钟后重试",
    "REFUND_FEE_MISMATCH": "订单金额或退款金额与之前请求不一致",
    "BIZERR_NEED_RETRY": "退款业务流程错误，需要商户触发重试来解决",
    "NOTENOUGH": "基本账户余额不足",
    "TRADE_OVERDUE": "订单已经超过退款期限",
}
# §1.1: at most 50 partial refunds per order; requests for one order at least a minute apart.
MAX_REFUNDS = 50
REFUND_INTERVAL = dt.timedelta(minutes=1)
# The reference gives no err_code for these; our guesses (INFERRED): the catch-all ERROR with a reason (§1.5
# "ERROR: business error; err_code_des gives the reason"), and a return_code FAIL for a missing certificate
# (real WeChat Pay may instead fail the TLS handshake: either way no refund).
OVER_REFUND = ("ERROR", "申请退款金额超过订单可退金额")
TOO_MANY_REFUNDS = ("ERROR", "退款次数超过限制")
NO_CLIENT_CERT = "请求需要双向证书"
UNIFIED_REQUIRED = (
    "appid", "mch_id", "nonce_str", "sign", "body", "out_trade_no", "total_fee", "spbill_create_ip",
    "notify_url", "trade_type",
)
# A re-submitted unifiedorder must carry the same business parameters as the first one.
SAME_PARAMS = ("body", "total_fee", "openid", "notify_url", "trade_type", "time_start", "time_expire")
BEIJING = ZoneInfo("Asia/Shanghai")
# §3.5: closeorder cannot be called right after the order is created; wait at least 5 minutes.
CLOSE_DELAY = dt.timedelta(minutes=5)
# §3.1: time_expire must lie more than 5 minutes ahead (the older doc's wording).
MIN_EXPIRE_AHEAD = dt.timedelta(minutes=5)
# The reference does not say what WeChat answers to either; these are our guesses (INFERRED): the
# documented "retry" code for a close that comes too early, the "bad parameters" code for time_expire.
TOO_EARLY_TO_CLOSE = ("SYSTEMERROR", "订单创建5分钟内不能关单")
TIME_EXPIRE_TOO_SOON = ("INVALID_REQUEST", "time_expire时间过短，刷卡至少1分钟，其他5分钟")


def wx_sign(params: typing.Mapping[str, str], key: str, sign_type: str = "MD5") -> str:
    fields = {k: v for k, v in params.items() if k != "sign"}
    if sign_type == "HMAC-SHA256":
        return calculate_signature_hmac(fields, key)
    return calculate_signature(fields, key)


def to_xml(params: typing.Mapping[str, str]) -> str:
    fields = {k: v for k, v in params.items() if k != "sign"}
    return dict_to_xml(fields, params.get("sign"))


def parse(body: bytes) -> dict[str, str]:
    data = xmltodict.parse(body, disable_entities=True)["xml"]
    return {k: (v or "") for k, v in data.items()}


@dataclasses.dataclass
class PayOrder:
    out_trade_no: str
    params: dict[str, str]
    prepay_id: str
    sign_type: str
    created_at: dt.datetime
    state: str = "NOTPAY"
    transaction_id: str = ""
    time_end: str = ""
    prepays: int = 1


@dataclasses.dataclass
class PayRefund:
    out_refund_no: str
    order: PayOrder
    refund_fee: int
    refund_id: str
    notify_url: str
    created_at: dt.datetime
    status: str = "PROCESSING"
    success_time: str = ""


@dataclasses.dataclass
class Held:
    """A call held by the fake: `arrived` is set once it came in; it is answered after `release()`."""

    arrived: asyncio.Event = dataclasses.field(default_factory=asyncio.Event)
    released: asyncio.Event = dataclasses.field(default_factory=asyncio.Event)
    # Held after the call was carried out, before its answer: WeChat did it, and the answer may be lost.
    after: bool = False

    def release(self) -> None:
        self.released.set()


class FakeWeChatPay:
    def __init__(
        self, appid: str = "wxfake0123456789", mch_id: str = "1900000109", key: str = "0123456789abcdefghijklmnopqrstuv"
    ) -> None:
        self.appid = appid
        self.mch_id = mch_id
        self.key = key
        self.base_url = ""
        self.orders: dict[str, PayOrder] = {}
        self.calls: list[tuple[str, dict[str, str]]] = []
        self.failures: dict[str, collections.deque[str]] = collections.defaultdict(collections.deque)
        self.held: dict[str, Held] = {}
        self.offset = dt.timedelta()
        self.refunds: dict[str, PayRefund] = {}
        # Each refund request that moved money (a new refund accepted): a repeat of one adds nothing here.
        self.refunds_made: list[str] = []

    def now(self) -> dt.datetime:
        """WeChat's clock: the real time plus what tests `advance`d it by."""
        return dt.datetime.now(BEIJING) + self.offset

    def advance(self, minutes: float) -> None:
        """Time passes at WeChat (only there: the database's times are moved by the tests themselves)."""
        self.offset += dt.timedelta(minutes=minutes)

    def hold(self, path: str, *, after: bool = False) -> Held:
        """The next call to `path` waits, once it came in (or with `after`, once it was carried out), until the
        returned `Held` is released."""
        held = self.held[path] = Held(after=after)
        return held

    def fail(self, path: str, mode: str, times: int = 1) -> None:
        """The next `times` calls to `path` fail with `mode` (an err_code, HTTP_500, BAD_SIGN or RETURN_FAIL)."""
        self.failures[path].extend([mode] * times)

    def count(self, path: str) -> int:
        return sum(1 for p, _ in self.calls if p == path)

    def make_app(self) -> web.Application:
        app = web.Application()
        app.router.add_post(UNIFIED_ORDER, self._handle)
        app.router.add_post(ORDER_QUERY, self._handle)
        app.router.add_post(CLOSE_ORDER, self._handle)
        app.router.add_post(REFUND, self._handle)
        app.router.add_post(REFUND_QUERY, self._handle)
        return app

    # -- the API -------------------------------------------------------------------------------

    def _answer(self, sign_type: str, fields: dict[str, str], *, bad_sign: bool = False) -> web.Response:
        body = {"return_code": "SUCCESS", "return_msg": "OK", "appid": self.appid, "mch_id": self.mch_id,
                "nonce_str": secrets.token_hex(16), **fields}
        body["sign"] = wx_sign(body, self.key, sign_type)
        if bad_sign:
            body["sign"] = "0" * len(body["sign"])
        return web.Response(text=to_xml(body), content_type="text/xml")

    def _error(
        self, sign_type: str, err_code: str, err_code_des: str | None = None, *, bad_sign: bool = False
    ) -> web.Response:
        des = err_code_des or ERR_CODE_DES.get(err_code, err_code)
        return self._answer(sign_type, {"result_code": "FAIL", "err_code": err_code, "err_code_des": des},
                            bad_sign=bad_sign)

    @staticmethod
    def _return_fail(message: str) -> web.Response:
        return web.Response(text=to_xml({"return_code": "FAIL", "return_msg": message}), content_type="text/xml")

    async def _handle(self, request: web.Request) -> web.Response:
        if request.path.startswith("/secapi/") and not request.transport.get_extra_info("peercert"):
            # The handshake already refused a certificate of another CA; here: none shown at all.
            return self._return_fail(NO_CLIENT_CERT)
        raw = await request.read()
        if not raw:
            return self._return_fail("POST_DATA_EMPTY")
        try:
            params = parse(raw)
        except (xmltodict.expat.ExpatError, KeyError, TypeError, AttributeError):
            return self._return_fail("XML_FORMAT_ERROR")
        self.calls.append((request.path, params))
        sign_type = params.get("sign_type") or "MD5"
        if sign_type not in ("MD5", "HMAC-SHA256"):
            return self._return_fail("签名类型错误")
        if params.get("sign") != wx_sign(params, self.key, sign_type):
            return self._return_fail("签名错误")
        if params.get("appid") != self.appid or params.get("mch_id") != self.mch_id:
            return self._error(sign_type, "APPID_MCHID_NOT_MATCH")
        held = self.held.pop(request.path, None)
        if held is not None and held.after:
            answer = self._carry_out(request.path, params, sign_type)
            held.arrived.set()
            await held.released.wait()
            return answer
        if held is not None:
            held.arrived.set()
            await held.released.wait()
        queue = self.failures.get(request.path)
        if queue:
            mode = queue.popleft()
            if mode == HTTP_500:
                return web.Response(status=500, text="<html>500 Internal Server Error</html>", content_type="text/html")
            if mode == RETURN_FAIL:
                return self._return_fail("系统繁忙,请稍后再试")
            if mode == BAD_SIGN:
                return self._answer(sign_type, {"result_code": "SUCCESS", "prepay_id": "wx_forged",
                                                "trade_type": "JSAPI", "trade_state": "SUCCESS"}, bad_sign=True)
            return self._error(sign_type, mode)
        return self._carry_out(request.path, params, sign_type)

    def _carry_out(self, path: str, params: dict[str, str], sign_type: str) -> web.Response:
        if path == UNIFIED_ORDER:
            return self._unified_order(params, sign_type)
        if path == ORDER_QUERY:
            return self._order_query(params, sign_type)
        if path == REFUND:
            return self._refund(params, sign_type)
        if path == REFUND_QUERY:
            return self._refund_query(params, sign_type)
        return self._close_order(params, sign_type)

    def _unified_order(self, params: dict[str, str], sign_type: str) -> web.Response:
        missing = [name for name in UNIFIED_REQUIRED if not params.get(name)]
        if params.get("trade_type") == "JSAPI" and not params.get("openid"):
            missing.append("openid")
        if missing or not params["total_fee"].isdigit() or len(params["out_trade_no"]) > 32:
            return self._error(sign_type, "LACK_PARAMS" if missing else "INVALID_REQUEST")
        time_expire = params.get("time_expire")
        if time_expire:
            expires = dt.datetime.strptime(time_expire, "%Y%m%d%H%M%S").replace(tzinfo=BEIJING)
            if expires - self.now() <= MIN_EXPIRE_AHEAD:
                return self._error(sign_type, *TIME_EXPIRE_TOO_SOON)
        existing = self.orders.get(params["out_trade_no"])
        if existing is not None:
            if existing.state == "SUCCESS":
                return self._error(sign_type, "ORDERPAID")
            if existing.state == "CLOSED":
                return self._error(sign_type, "ORDERCLOSED")
            if any(existing.params.get(n) != params.get(n) for n in SAME_PARAMS):
                return self._error(sign_type, "INVALID_REQUEST")
            existing.prepays += 1
            prepay_id = existing.prepay_id
        else:
            prepay_id = "wx" + self.now().strftime("%d%H%M%S") + secrets.token_hex(13)
            self.orders[params["out_trade_no"]] = PayOrder(
                params["out_trade_no"], params, prepay_id, sign_type, created_at=self.now()
            )
        return self._answer(sign_type, {"result_code": "SUCCESS", "trade_type": "JSAPI", "prepay_id": prepay_id})

    def _paid_fields(self, order: PayOrder) -> dict[str, str]:
        return {
            "openid": order.params.get("openid", ""),
            "is_subscribe": "Y",
            "trade_type": "JSAPI",
            "bank_type": "OTHERS",
            "total_fee": order.params["total_fee"],
            "fee_type": "CNY",
            "cash_fee": order.params["total_fee"],
            "transaction_id": order.transaction_id,
            "out_trade_no": order.out_trade_no,
            "time_end": order.time_end,
        }

    def _order_query(self, params: dict[str, str], sign_type: str) -> web.Response:
        order = self.orders.get(params.get("out_trade_no", ""))
        if order is None:
            return self._error(sign_type, "ORDERNOTEXIST")
        fields = {
            "result_code": "SUCCESS",
            "out_trade_no": order.out_trade_no,
            "trade_state": order.state,
            "trade_state_desc": {"SUCCESS": "支付成功", "NOTPAY": "订单未支付", "CLOSED": "订单已关闭"}[order.state],
        }
        if order.state == "SUCCESS":
            fields.update(self._paid_fields(order))
        return self._answer(sign_type, fields)

    def _close_order(self, params: dict[str, str], sign_type: str) -> web.Response:
        order = self.orders.get(params.get("out_trade_no", ""))
        if order is None:
            return self._error(sign_type, "ORDERNOTEXIST")
        # Before anything else: too early, WeChat tells nothing about the order (the stricter guess).
        if self.now() - order.created_at < CLOSE_DELAY:
            return self._error(sign_type, *TOO_EARLY_TO_CLOSE)
        if order.state == "SUCCESS":
            return self._error(sign_type, "ORDERPAID")
        if order.state == "CLOSED":
            return self._error(sign_type, "ORDERCLOSED")
        order.state = "CLOSED"
        return self._answer(sign_type, {"result_code": "SUCCESS"})

    def _refund(self, params: dict[str, str], sign_type: str) -> web.Response:
        fees = (params.get("total_fee", ""), params.get("refund_fee", ""))
        if not params.get("out_refund_no") or not all(f.isdigit() for f in fees) or not (
                params.get("out_trade_no") or params.get("transaction_id")):
            return self._error(sign_type, "PARAM_ERROR")
        total_fee, refund_fee = map(int, fees)
        order = self._find_order(params)
        if order is None or order.state != "SUCCESS":
            return self._error(sign_type, "ORDERNOTEXIST")
        if total_fee != int(order.params["total_fee"]) or refund_fee <= 0:
            return self._error(sign_type, "PARAM_ERROR")
        refund = self.refunds.get(params["out_refund_no"])
        if refund is not None:
            # §1.1: the same out_refund_no refunds once; resent, it answers about that one refund.
            if refund.order is not order or refund.refund_fee != refund_fee:
                return self._error(sign_type, "REFUND_FEE_MISMATCH")
            return self._answer(sign_type, self._refund_fields(refund))
        mine = [r for r in self.refunds.values() if r.order is order]
        if sum(r.refund_fee for r in mine if r.status != "REFUNDCLOSE") + refund_fee > total_fee:
            return self._error(sign_type, *OVER_REFUND)
        if len(mine) >= MAX_REFUNDS:
            return self._error(sign_type, *TOO_MANY_REFUNDS)
        if any(self.now() - r.created_at < REFUND_INTERVAL for r in mine):
            return self._error(sign_type, "FREQUENCY_LIMITED")
        refund_id = "5" + self.now().strftime("%Y%m%d%H%M%S") + secrets.token_hex(7)
        refund = PayRefund(params["out_refund_no"], order, refund_fee, refund_id, params.get("notify_url", ""),
                           created_at=self.now())
        self.refunds[refund.out_refund_no] = refund
        self.refunds_made.append(refund.out_refund_no)
        return self._answer(sign_type, self._refund_fields(refund))

    def _find_order(self, params: dict[str, str]) -> PayOrder | None:
        if params.get("transaction_id"):
            return next((o for o in self.orders.values() if o.transaction_id == params["transaction_id"]), None)
        return self.orders.get(params.get("out_trade_no", ""))

    @staticmethod
    def _refund_fields(refund: PayRefund) -> dict[str, str]:
        total = refund.order.params["total_fee"]
        return {"result_code": "SUCCESS", "transaction_id": refund.order.transaction_id,
                "out_trade_no": refund.order.out_trade_no, "out_refund_no": refund.out_refund_no,
                "refund_id": refund.refund_id, "refund_fee": str(refund.refund_fee), "total_fee": total,
                "cash_fee": total, "cash_refund_fee": str(refund.refund_fee)}

    def _refund_query(self, params: dict[str, str], sign_type: str) -> web.Response:
        # §2: refund_id > out_refund_no > transaction_id > out_trade_no.
        if params.get("refund_id"):
            found = [r for r in self.refunds.values() if r.refund_id == params["refund_id"]]
        elif params.get("out_refund_no"):
            found = [r for r in self.refunds.values() if r.out_refund_no == params["out_refund_no"]]
        else:
            order = self._find_order(params)
            found = [r for r in self.refunds.values() if r.order is order] if order else []
        if not found:
            return self._error(sign_type, "REFUNDNOTEXIST")
        order = found[0].order
        fields = {"result_code": "SUCCESS", "transaction_id": order.transaction_id, "out_trade_no": order.out_trade_no,
                  "total_fee": order.params["total_fee"], "cash_fee": order.params["total_fee"],
                  "refund_count": str(len(found)), "total_refund_count": str(len(found))}
        for n, refund in enumerate(found):
            fields.update({
                f"out_refund_no_{n}": refund.out_refund_no, f"refund_id_{n}": refund.refund_id,
                f"refund_channel_{n}": "ORIGINAL", f"refund_fee_{n}": str(refund.refund_fee),
                f"settlement_refund_fee_{n}": str(refund.refund_fee), f"refund_status_{n}": refund.status,
                f"refund_account_{n}": "REFUND_SOURCE_UNSETTLED_FUNDS", f"refund_recv_accout_{n}": "支付用户零钱",
            })
            if refund.status == "SUCCESS":
                fields[f"refund_success_time_{n}"] = refund.success_time
        return self._answer(sign_type, fields)

    # -- what the payer and WeChat do ----------------------------------------------------------

    def pay(self, out_trade_no: str) -> PayOrder:
        """The payer confirms the payment in WeChat (no notification is sent by this alone)."""
        order = self.orders[out_trade_no]
        assert order.state == "NOTPAY", order.state
        order.state = "SUCCESS"
        order.transaction_id = "4200" + self.now().strftime("%Y%m%d") + secrets.token_hex(8)
        order.time_end = self.now().strftime("%Y%m%d%H%M%S")
        return order

    def notification(self, out_trade_no: str, /, *, key: str | None = None, **overrides: str | None) -> bytes:
        """The signed notification of a paid order (the field set of §3.4); overrides are signed too,
        an override of None leaves the field out."""
        order = self.orders[out_trade_no]
        fields = {
            "appid": self.appid,
            "mch_id": self.mch_id,
            "nonce_str": secrets.token_hex(16),
            "result_code": "SUCCESS",
            "return_code": "SUCCESS",
            **self._paid_fields(order),
            **overrides,
        }
        fields = {k: v for k, v in fields.items() if v is not None}
        if order.sign_type != "MD5":
            fields["sign_type"] = order.sign_type
        fields["sign"] = wx_sign(fields, key or self.key, fields.get("sign_type", "MD5"))
        return to_xml(fields).encode()

    async def notify(
        self, client: typing.Any, out_trade_no: str, body: bytes | None = None
    ) -> tuple[int, dict[str, str]]:
        """POST the notification to the notify_url of the order (on the test server) as WeChat does:
        text/xml, no token. The HTTP status and the parsed XML answer."""
        order = self.orders[out_trade_no]
        path = urlsplit(order.params["notify_url"]).path
        resp = await client.post(
            path, data=body if body is not None else self.notification(out_trade_no),
            headers={"Content-Type": "text/xml", "User-Agent": "Mozilla/4.0"},
        )
        text = await resp.text()
        assert resp.content_type == "text/xml", text
        return resp.status, parse(text.encode())

    def settle_refund(self, out_refund_no: str, status: str = "SUCCESS") -> PayRefund:
        """The refund reaches SUCCESS, REFUNDCLOSE or CHANGE at WeChat (nothing is posted by this alone)."""
        refund = self.refunds[out_refund_no]
        refund.status = status
        if status == "SUCCESS":
            refund.success_time = self.now().strftime("%Y-%m-%d %H:%M:%S")
        return refund

    def refund_inner(self, out_refund_no: str, /, **overrides: str) -> str:
        """The inner XML of a refund notification: `<root>` with the 13 fields of §3, values in CDATA."""
        refund = self.refunds[out_refund_no]
        total = refund.order.params["total_fee"]
        fields = {
            "out_refund_no": refund.out_refund_no, "out_trade_no": refund.order.out_trade_no,
            "refund_account": "REFUND_SOURCE_UNSETTLED_FUNDS", "refund_fee": str(refund.refund_fee),
            "refund_id": refund.refund_id, "refund_recv_accout": "支付用户零钱", "refund_request_source": "API",
            "refund_status": refund.status, "settlement_refund_fee": str(refund.refund_fee),
            "settlement_total_fee": total, "success_time": refund.success_time, "total_fee": total,
            "transaction_id": refund.order.transaction_id, **overrides,
        }
        return "<root>" + "".join(f"<{k}><![CDATA[{v}]]></{k}>" for k, v in fields.items()) + "</root>"

    def refund_notification(self, out_refund_no: str, /, *, key: str | None = None, req_info: str | None = None,
                            **overrides: str) -> bytes:
        """The outer XML WeChat posts (§3: no sign), req_info = base64(AES-256-ECB(md5hex(key), PKCS#7 16))."""
        if req_info is None:
            req_info = encrypt_req_info(self.refund_inner(out_refund_no, **overrides), key or self.key)
        fields = {"return_code": "SUCCESS", "appid": self.appid, "mch_id": self.mch_id,
                  "nonce_str": secrets.token_hex(8), "req_info": req_info}
        return dict_to_xml(fields, None).encode()

    async def notify_refund(self, client: typing.Any, out_refund_no: str, body: bytes | None = None
                            ) -> tuple[int, dict[str, str]]:
        """POST the refund notification to the refund's notify_url path on the test server."""
        refund = self.refunds[out_refund_no]
        resp = await client.post(urlsplit(refund.notify_url).path,
                                 data=body if body is not None else self.refund_notification(out_refund_no),
                                 headers={"Content-Type": "text/xml", "User-Agent": "Mozilla/4.0"})
        text = await resp.text()
        assert resp.content_type == "text/xml", text
        return resp.status, parse(text.encode())


def encrypt_req_info(inner: str, api_key: str) -> str:
    """§3 in reverse, as WeChat Pay does it: AES-256-ECB under the 32 ASCII hex characters of md5(api_key),
    PKCS#7 over 16-byte blocks (not wechatpy's encryptor, which pads to 32, §4.4)."""
    key = hashlib.md5(api_key.encode()).hexdigest().encode()
    padder = padding.PKCS7(128).padder()
    data = padder.update(inner.encode()) + padder.finalize()
    encryptor = Cipher(algorithms.AES(key), modes.ECB()).encryptor()
    return base64.b64encode(encryptor.update(data) + encryptor.finalize()).decode()


async def serve(aiohttp_server: typing.Any, fake: FakeWeChatPay, pki: typing.Any = None) -> FakeWeChatPay:
    """Start the fake on 127.0.0.1 and set its `base_url` (for the `wechatpay_api_url` setting); with a test
    `pki` (fakes/pki.py) over TLS, where secapi calls need the merchant's client certificate."""
    server = await aiohttp_server(fake.make_app(), ssl=pki.server_context() if pki is not None else None)
    fake.base_url = str(server.make_url("")).rstrip("/")
    return fake


def settings_with_certificate(fake: FakeWeChatPay, pki: typing.Any, **overrides: typing.Any) -> dict[str, typing.Any]:
    """Settings of an app that pays and refunds through the fake served with `pki`."""
    return settings_for(fake, wechatpay_ca_file=str(pki.ca), wechatpay_cert_path=str(pki.client_cert),
                        wechatpay_key_path=str(pki.client_key), **overrides)


def settings_for(fake: FakeWeChatPay, **overrides: typing.Any) -> dict[str, typing.Any]:
    """Settings of an app that pays through the fake (the notify URL's path is the real endpoint)."""
    return {
        "wechatpay_mch_id": fake.mch_id,
        "wechatpay_api_key": fake.key,
        "wechatpay_api_url": fake.base_url,
        "wechatpay_notify_url": "https://club.example.com/api/v1/pay/notify",
        **overrides,
    }
