"""WeChat Pay API v3 behind the payment interface the services use (wechatpay.WeChatPay), for a merchant set up
for v3: JSON over HTTPS, every request RSA-signed with the merchant API key, every answer and notification
checked with WeChat Pay's public key or platform certificates, notifications decrypted with the APIv3 key.

§ numbers are those of the v3 reference (wechatpay-v3.md). The services speak v2's field names (they were
written for v2 and v2 merchants remain): what v3 answers is mapped to them here, in one place, so that
orders, settlement, reconciliation and refunds stay as they are:

    Transaction (§3 query, TRANSACTION.SUCCESS)   → trade_state, result_code, total_fee, fee_type, time_end ...
    Refund (§3 refund / refund query)             → refund_id, refund_fee; refundquery's `$n` records
    refund notification resource (§4)             → req_info's fields (refund_status, refund_fee, success_time ...)
    error codes (§6)                              → v2's err_codes where the services act on one (ORDERPAID ...)
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import secrets
import ssl
import time
import typing
from pathlib import Path
from urllib.parse import quote

import aiohttp
import orjson
from cryptography import x509

from ..settings import Settings
from . import wechatpay_v3_crypto as crypto
from .wechatpay import WECHAT_TIME, WECHAT_TZ, PayError, server_context, truncate_body
from .wechatpay_refund import CHANGE, CLOSED, ReqInfoError

logger = logging.getLogger(__name__)

PREPAY_PATH = "/v3/pay/transactions/jsapi"
QUERY_PATH = "/v3/pay/transactions/out-trade-no/{}"
CLOSE_PATH = "/v3/pay/transactions/out-trade-no/{}/close"
REFUNDS_PATH = "/v3/refund/domestic/refunds"
REFUND_QUERY_PATH = "/v3/refund/domestic/refunds/{}"
CERTIFICATES_PATH = "/v3/certificates"
# WeChat answers 400 INVALID_REQUEST to a request without one (§2).
USER_AGENT = "jiandong (WeChat Pay API v3)"
# Far above any answer or notification of these endpoints (a few KB); bounds what one call makes us parse.
MAX_BODY = 64 * 1024
SIGN_TYPE = "RSA"
# v3's error codes (§6) under the v2 err_code the services act on (orders.close, refunds.REFUSED_FOR_GOOD);
# any other code is passed on as it is.
V2_CODES = {
    "ORDER_PAID": "ORDERPAID",  # close of a paid order (§3 close: "skills say ORDER_PAID")
    "ORDER_CLOSED": "ORDERCLOSED",
    "ORDER_NOT_EXIST": "ORDERNOTEXIST",
    "RESOURCE_NOT_EXISTS": "ORDERNOTEXIST",  # a refund of an order WeChat does not know
    "SIGN_ERROR": "SIGNERROR",
    "SYSTEM_ERROR": "SYSTEMERROR",
    "NOT_ENOUGH": "NOTENOUGH",
    "MCH_NOT_EXISTS": "MCHID_NOT_EXIST",
}
# A refund's `status` (answers) and `refund_status` (notifications) under v2's refund_status (§3, §4).
REFUND_STATUS = {"SUCCESS": "SUCCESS", "CLOSED": CLOSED, "PROCESSING": "PROCESSING", "ABNORMAL": CHANGE}
# The headers WeChat Pay signs an answer or a notification with (§2): each given once.
SIGNATURE_HEADERS = ("Wechatpay-Serial", "Wechatpay-Signature", "Wechatpay-Timestamp", "Wechatpay-Nonce",
                     "Wechatpay-Signature-Type")
# The notifications a v3 merchant receives (§4) and what each resource is.
PAYMENT_EVENTS = ("TRANSACTION.SUCCESS",)
REFUND_EVENTS = ("REFUND.SUCCESS", "REFUND.ABNORMAL", "REFUND.CLOSED")


class Answer(typing.NamedTuple):
    """A 2xx answer of WeChat Pay: its status, JSON object ({} for 204), exact bytes and headers."""

    status: int
    data: dict[str, typing.Any]
    raw: bytes
    headers: typing.Mapping[str, str]


async def _read_bounded(stream: aiohttp.StreamReader, limit: int) -> bytes:
    """The body, or its first `limit` bytes when it is longer (`read(n)` alone may stop at a chunk's end)."""
    data = bytearray()
    while len(data) < limit and (chunk := await stream.read(limit - len(data))):
        data += chunk
    return bytes(data)


class NotificationRefused(Exception):
    """A notification that is not to be believed or not understood; `why` is the reason's kind (a metric label)."""

    def __init__(self, why: str, reason: str) -> None:
        super().__init__(reason)
        self.why = why
        self.reason = reason


@dataclasses.dataclass(frozen=True)
class Notification:
    """A verified, decrypted notification: its event type, the resource's plaintext and its fields."""

    event_type: str
    plaintext: str
    resource: dict[str, typing.Any]


@dataclasses.dataclass(frozen=True)
class Keys:
    """What v3 needs from files, loaded once at start-up (OSError / ValueError when one cannot be read)."""

    merchant_key: typing.Any  # rsa.RSAPrivateKey
    merchant_serial: str
    # WeChat Pay's keys by the name Wechatpay-Serial gives them: the public key's id, platform cert serials.
    wechat_keys: dict[str, typing.Any]
    public_key_id: str

    @classmethod
    def load(cls, settings: Settings) -> Keys:
        """The keys the settings name; ValueError naming the setting whose file does not load."""
        wechat: dict[str, typing.Any] = {}
        for path in settings.wechatpay_platform_cert_paths:
            pem = _read("wechatpay_platform_cert_paths", path)
            wechat[_load("wechatpay_platform_cert_paths", path, "a certificate", crypto.certificate_serial, pem)] = (
                _load("wechatpay_platform_cert_paths", path, "a certificate", crypto.load_public_key, pem))
        if settings.wechatpay_public_key_path:
            path = settings.wechatpay_public_key_path
            pem = _read("wechatpay_public_key_path", path)
            if b"-----BEGIN PUBLIC KEY-----" not in pem:
                # pub_key.pem is a bare key: a certificate here is a platform certificate or the merchant's own.
                raise ValueError(f"JIANDONG_WECHATPAY_PUBLIC_KEY_PATH: {path} is not a public key (PEM \"PUBLIC KEY\"; "
                                 "a platform certificate goes in JIANDONG_WECHATPAY_PLATFORM_CERT_PATHS)")
            wechat[settings.wechatpay_public_key_id] = _load(
                "wechatpay_public_key_path", path, "an RSA public key", crypto.load_public_key, pem)
        key_path, cert_path = settings.wechatpay_key_path, settings.wechatpay_cert_path
        merchant_key = _load("wechatpay_key_path", key_path, "an RSA private key", crypto.load_private_key,
                             _read("wechatpay_key_path", key_path))
        cert = _read("wechatpay_cert_path", cert_path)
        # A key of another certificate would sign every request with a serial WeChat checks it against: each
        # call would fail (SIGN_ERROR). Refused here, at start-up, instead.
        if _load("wechatpay_cert_path", cert_path, "a certificate", crypto.load_public_key, cert).public_numbers() \
                != merchant_key.public_key().public_numbers():
            raise ValueError(f"JIANDONG_WECHATPAY_KEY_PATH: {key_path} is not the key of the certificate {cert_path}")
        ours = merchant_key.public_key().public_numbers()
        for name, key in wechat.items():
            if key.public_numbers() == ours:
                # WeChat Pay's signatures would be checked with our own key: none of theirs would ever hold.
                raise ValueError(f"WeChat Pay's key {name} is the merchant's own key (apiclient), not WeChat Pay's: "
                                 "check JIANDONG_WECHATPAY_PUBLIC_KEY_PATH / JIANDONG_WECHATPAY_PLATFORM_CERT_PATHS")
        return cls(
            merchant_key=merchant_key,
            merchant_serial=_load("wechatpay_cert_path", cert_path, "a certificate", crypto.certificate_serial, cert),
            wechat_keys=wechat,
            public_key_id=settings.wechatpay_public_key_id,
        )


T = typing.TypeVar("T")


def _read(setting: str, path: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise ValueError(f"JIANDONG_{setting.upper()}: {path} cannot be read ({exc.strerror})") from None


def _load(setting: str, path: str, what: str, load: typing.Callable[[bytes], T], pem: bytes) -> T:
    try:
        return load(pem)
    except (ValueError, TypeError):
        raise ValueError(f"JIANDONG_{setting.upper()}: {path} is not {what} (PEM)") from None


def rfc3339(value: dt.datetime) -> str:
    """A time as v3 writes it, in Beijing time to the second: 2018-06-08T10:34:56+08:00 (§3 prepay)."""
    return value.astimezone(WECHAT_TZ).isoformat(timespec="seconds")


def _parse_time(value: typing.Any) -> dt.datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


def _text(data: typing.Mapping[str, typing.Any], name: str) -> str:
    value = data.get(name)
    return value if isinstance(value, str) else ""


def _fen(data: typing.Any, name: str) -> str:
    """An amount in fen as v2 writes it (digits), or "" when it is not a whole number (which the services refuse)."""
    value = data.get(name) if isinstance(data, dict) else None
    return str(value) if type(value) is int and value >= 0 else ""


def transaction_fields(tx: typing.Mapping[str, typing.Any]) -> dict[str, str]:
    """A Transaction (§3 query, the TRANSACTION.SUCCESS resource) in v2's field names."""
    amount = tx.get("amount")
    payer = tx.get("payer")
    paid_at = _parse_time(tx.get("success_time"))
    state = _text(tx, "trade_state")
    fields = {
        "appid": _text(tx, "appid"),
        "mch_id": _text(tx, "mchid"),
        "out_trade_no": _text(tx, "out_trade_no"),
        "transaction_id": _text(tx, "transaction_id"),
        "trade_type": _text(tx, "trade_type"),
        "trade_state": state,
        # v3 has no result_code: the payment's outcome is its trade_state (§3 query).
        "result_code": "SUCCESS" if state == "SUCCESS" else state or "FAIL",
        "bank_type": _text(tx, "bank_type"),
        "total_fee": _fen(amount, "total"),
        "fee_type": _text(amount, "currency") if isinstance(amount, dict) else "",
        "openid": _text(payer, "openid") if isinstance(payer, dict) else "",
        "time_end": paid_at.astimezone(WECHAT_TZ).strftime(WECHAT_TIME) if paid_at else "",
    }
    return {name: value for name, value in fields.items() if value}


def _refund_time(value: typing.Any) -> str:
    """success_time as v2's refund notification writes it: "2017-12-15 09:46:01" in Beijing time."""
    at = _parse_time(value)
    return at.astimezone(WECHAT_TZ).strftime("%Y-%m-%d %H:%M:%S") if at else ""


def refund_notification_fields(resource: typing.Mapping[str, typing.Any]) -> dict[str, str]:
    """A refund notification's resource (§4: note `refund_status`) in the field names of v2's req_info."""
    amount = resource.get("amount")
    fields = {
        "out_refund_no": _text(resource, "out_refund_no"),
        "out_trade_no": _text(resource, "out_trade_no"),
        "transaction_id": _text(resource, "transaction_id"),
        "refund_id": _text(resource, "refund_id"),
        "refund_status": REFUND_STATUS.get(_text(resource, "refund_status"), _text(resource, "refund_status")),
        "refund_fee": _fen(amount, "refund"),
        "total_fee": _fen(amount, "total"),
        "success_time": _refund_time(resource.get("success_time")),
        "refund_recv_accout": _text(resource, "user_received_account"),  # sic, v2's spelling
    }
    return {name: value for name, value in fields.items() if value}


def refund_query_fields(refund: typing.Mapping[str, typing.Any]) -> dict[str, str]:
    """A Refund (§3: note `status`) as v2's refundquery answer with one `$n` record."""
    return {
        "out_trade_no": _text(refund, "out_trade_no"),
        "transaction_id": _text(refund, "transaction_id"),
        "refund_count": "1",
        "out_refund_no_0": _text(refund, "out_refund_no"),
        "refund_id_0": _text(refund, "refund_id"),
        "refund_fee_0": _fen(refund.get("amount"), "refund"),
        "refund_status_0": REFUND_STATUS.get(_text(refund, "status"), _text(refund, "status")),
        "refund_success_time_0": _refund_time(refund.get("success_time")),
        "refund_recv_accout_0": _text(refund, "user_received_account"),
    }


def _json(body: bytes) -> typing.Any:
    """What WeChat Pay sent, parsed; None when it is no JSON or carries a NUL (`\\u0000`: a JSON string can, a
    PostgreSQL text cannot — refused here, for every answer and notification, rather than by the database)."""
    if b"\\u0000" in body:
        return None
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return None


class RealWeChatPayV3:
    """The merchant API v3 over the shared client session. Every request is signed; every answer's signature
    is checked before a byte of it is believed."""

    dev = False
    sign_type = SIGN_TYPE

    def __init__(self, session: aiohttp.ClientSession, settings: Settings, keys: Keys) -> None:
        self.appid = settings.wechat_appid
        self.mch_id = settings.wechatpay_mch_id
        self._api_v3_key = settings.wechatpay_apiv3_key.encode()
        self._keys = keys
        self._verifier = crypto.Verifier(keys.wechat_keys)
        self._base = settings.wechatpay_api_url.rstrip("/")
        self._session = session
        self._server_ssl: ssl.SSLContext | bool = server_context(settings) or True

    # -- what the v2-shaped interface asks of a notification: v3 notifications come another way ------------

    def verify(self, fields: typing.Mapping[str, str]) -> bool:
        """A v2 notification (XML, signed with a v2 key) is none of a v3 merchant's."""
        return False

    def decrypt_refund(self, req_info: str) -> dict[str, str]:
        raise ReqInfoError("a v2 refund notification, but this merchant uses API v3")

    def jsapi_params(
        self, prepay_id: str, *, timestamp: str | None = None, nonce_str: str | None = None
    ) -> dict[str, str]:
        """chooseWXPay's parameters with v3's paySign: RSA over appId, timeStamp, nonceStr, package (§3 JS side)."""
        params = {
            "appId": self.appid,
            "timeStamp": timestamp or str(int(time.time())),
            "nonceStr": nonce_str or secrets.token_hex(16),
            "package": f"prepay_id={prepay_id}",
            "signType": SIGN_TYPE,
        }
        params["paySign"] = crypto.pay_sign(self._keys.merchant_key, params["appId"], params["timeStamp"],
                                            params["nonceStr"], prepay_id)
        return params

    def notification(self, headers: typing.Mapping[str, str], body: bytes, events: tuple[str, ...]) -> Notification:
        """A notification as WeChat posts it (§4): its signature checked first (the key named by
        Wechatpay-Serial, the 5-minute window, probes refused), then the envelope read and the resource
        decrypted with the APIv3 key. NotificationRefused, with the first reason, otherwise."""
        if len(body) > MAX_BODY:
            raise NotificationRefused("malformed", "too large")
        getall = getattr(headers, "getall", None)
        for name in SIGNATURE_HEADERS:
            if getall is not None and len(getall(name, ())) > 1:
                # Which one would be believed is not for the sender to choose.
                raise NotificationRefused("malformed", f"{name} given more than once")
        try:
            self._verifier.verify(headers, body)
        except crypto.SignatureRefused as refused:
            raise NotificationRefused("signature", f"signature refused: {refused}") from None
        envelope = _json(body)
        resource = envelope.get("resource") if isinstance(envelope, dict) else None
        if not isinstance(resource, dict):
            raise NotificationRefused("malformed", "no resource")
        event_type = _text(envelope, "event_type")
        if event_type not in events:
            raise NotificationRefused("event_type", f"event_type {event_type[:64]!r} is not one of {events}")
        if _text(resource, "algorithm") != "AEAD_AES_256_GCM":
            raise NotificationRefused("malformed", "resource algorithm is not AEAD_AES_256_GCM")
        try:
            plain = crypto.decrypt(self._api_v3_key, _text(resource, "nonce"), _text(resource, "associated_data"),
                                   _text(resource, "ciphertext"))
        except crypto.DecryptFailed as failed:
            raise NotificationRefused("decrypt", str(failed)) from None
        fields = _json(plain)
        if not isinstance(fields, dict):
            raise NotificationRefused("malformed", "the resource is not a JSON object (or carries a NUL)")
        # Whose it is (mchid, appid) is checked by the caller, like a v2 notification's fields: it was signed
        # by WeChat Pay for us, and a refusal of it is kept with the order or refund it names.
        return Notification(event_type, plain.decode("utf-8", "replace"), fields)

    # -- calls -----------------------------------------------------------------------------------------

    async def _call(self, method: str, path: str, body: dict[str, typing.Any] | None, order: str,
                    *, verify: bool = True) -> Answer:
        """A signed request; its answer once the answer's signature holds (`verify=False`: the caller checks it).
        PayError otherwise: UNAVAILABLE when the outcome is unknown (no answer, an answer not signed by
        WeChat Pay), else WeChat's code (mapped to v2's, V2_CODES) and message.

        Every failure is logged here, once, with the order number (no traceback: they are WeChat's routine
        answers and outages, not our bugs); callers do not log it again.
        """
        # Compact and not ASCII-escaped; signed as the exact bytes sent (§2).
        data = b"" if body is None else orjson.dumps(body)
        headers = {
            "Authorization": crypto.authorization(self.mch_id, self._keys.merchant_serial, self._keys.merchant_key,
                                                  method, path, data),
            "Accept": "application/json",
            "User-Agent": USER_AGENT,
        }
        if body is not None:
            headers["Content-Type"] = "application/json"
        if self._keys.public_key_id:
            # During a switch-over this decides which key WeChat signs its answer with (§2, §5).
            headers["Wechatpay-Serial"] = self._keys.public_key_id
        try:
            async with self._session.request(method, self._base + path, data=data or None, headers=headers,
                                             ssl=self._server_ssl) as resp:
                status = resp.status
                answer = await _read_bounded(resp.content, MAX_BODY + 1)
                answer_headers = resp.headers
        except TimeoutError:
            logger.warning("WeChat Pay v3 %s %s for order %s timed out", method, path, order)
            raise PayError("UNAVAILABLE", "微信支付响应超时") from None
        except aiohttp.ClientError as exc:
            logger.warning("WeChat Pay v3 %s %s for order %s unreachable: %s", method, path, order, type(exc).__name__)
            raise PayError("UNAVAILABLE", "无法连接微信支付") from None
        if len(answer) > MAX_BODY:
            logger.warning("WeChat Pay v3 %s for order %s answered more than %d bytes", path, order, MAX_BODY)
            raise PayError("UNAVAILABLE", "微信支付返回了无法识别的数据")
        if not 200 <= status < 300:
            error = _json(answer)
            code = _text(error, "code") if isinstance(error, dict) else ""
            message = _text(error, "message") if isinstance(error, dict) else ""
            logger.warning("WeChat Pay v3 %s for order %s: HTTP %s %s (%s)", path, order, status, code or "-",
                           message[:200] or "-")
            if not code:
                raise PayError("UNAVAILABLE", f"微信支付服务异常 (HTTP {status})")
            raise PayError(V2_CODES.get(code, code), message or code)
        if verify:
            self._check_answer(self._verifier, answer_headers, answer, path, order)
        if status == 204:
            return Answer(status, {}, answer, answer_headers)
        parsed = _json(answer)
        if not isinstance(parsed, dict):
            logger.warning("WeChat Pay v3 %s for order %s answered a body that is not a JSON object", path, order)
            raise PayError("UNAVAILABLE", "微信支付返回了无法识别的数据")
        return Answer(status, parsed, answer, answer_headers)

    @staticmethod
    def _check_answer(verifier: crypto.Verifier, headers: typing.Mapping[str, str], body: bytes, path: str,
                      order: str) -> None:
        try:
            verifier.verify(headers, body)
        except crypto.SignatureRefused as refused:
            # The outcome is unknown (whoever answered, it was not WeChat Pay): safe to ask again.
            logger.error("WeChat Pay v3 %s for order %s: the answer's signature is refused (%s); it is ignored",
                         path, order, refused)
            raise PayError("UNAVAILABLE", "微信支付应答签名错误") from None

    async def refresh_certificates(self) -> list[str]:
        """Download WeChat Pay's platform certificates (§5; certificate mode): the ones new to us join the keys
        answers and notifications are checked with, as WeChat Pay starts signing with a new certificate days
        before the old one expires. A certificate is believed when it decrypts with our APIv3 key (which only
        WeChat Pay and we hold; AES-GCM fails on anything else) and the answer's signature holds with a
        certificate we knew or one of these. The serials added; PayError when WeChat Pay cannot be asked or
        the answer does not hold."""
        answer = await self._call("GET", CERTIFICATES_PATH, None, "-", verify=False)
        found: dict[str, typing.Any] = {}
        items = answer.data.get("data")
        for item in items if isinstance(items, list) else []:
            sealed = item.get("encrypt_certificate") if isinstance(item, dict) else None
            if not isinstance(sealed, dict):
                continue
            try:
                pem = crypto.decrypt(self._api_v3_key, _text(sealed, "nonce"), _text(sealed, "associated_data"),
                                     _text(sealed, "ciphertext"))
                cert = x509.load_pem_x509_certificate(pem)
            except (crypto.DecryptFailed, ValueError):
                logger.error("WeChat Pay v3 certificates: one does not decrypt with our APIv3 key; it is ignored")
                continue
            serial = format(cert.serial_number, "X")
            if serial != _text(item, "serial_no") or cert.not_valid_after_utc <= dt.datetime.now(dt.UTC):
                continue
            found[serial] = crypto.load_public_key(pem)
        self._check_answer(crypto.Verifier({**self._verifier.keys, **found}), answer.headers, answer.raw,
                           CERTIFICATES_PATH, "-")
        added = [serial for serial in found if serial not in self._verifier.keys]
        self._verifier.keys.update(found)
        if added:
            logger.warning("WeChat Pay v3: platform certificate(s) %s downloaded and trusted from now on; add them "
                           "to JIANDONG_WECHATPAY_PLATFORM_CERT_PATHS (or move to the public key)", ", ".join(added))
        return added

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
        """JSAPI prepay (§3): the prepay_id. `time_expire` is the last moment the payer can pay; a repeat
        with the same parameters is re-entrant and answers the same prepay_id. (`time_start` has no v3 field.)"""
        answer = (await self._call("POST", PREPAY_PATH, {
            "appid": self.appid,
            "mchid": self.mch_id,
            "description": truncate_body(body),
            "out_trade_no": out_trade_no,
            "time_expire": rfc3339(time_expire),
            "notify_url": notify_url,
            "amount": {"total": total_fee, "currency": "CNY"},
            "payer": {"openid": openid},
            "scene_info": {"payer_client_ip": client_ip},
        }, out_trade_no)).data
        prepay_id = _text(answer, "prepay_id")
        if not prepay_id:
            raise PayError("UNAVAILABLE", "微信支付未返回 prepay_id")
        return prepay_id

    async def order_query(self, out_trade_no: str) -> tuple[dict[str, str], str]:
        """The order at WeChat (§3 query) in v2's names, and the answer as received."""
        path = QUERY_PATH.format(quote(out_trade_no, safe="")) + f"?mchid={quote(self.mch_id, safe='')}"
        answer = await self._call("GET", path, None, out_trade_no)
        return transaction_fields(answer.data), answer.raw.decode("utf-8", "replace")

    async def close_order(self, out_trade_no: str) -> None:
        """Close (§3): 204, re-entrant; PayError ORDERPAID for a paid order."""
        await self._call("POST", CLOSE_PATH.format(quote(out_trade_no, safe="")), {"mchid": self.mch_id},
                         out_trade_no)

    async def refund(
        self, *, out_trade_no: str, out_refund_no: str, total_fee: int, refund_fee: int, refund_desc: str,
        notify_url: str,
    ) -> dict[str, str]:
        """A refund (§3): accepted when this returns (the outcome comes by notification or query). Sent again
        with the same out_refund_no after an unknown outcome, it refunds only once."""
        answer = (await self._call("POST", REFUNDS_PATH, {
            "out_trade_no": out_trade_no,
            "out_refund_no": out_refund_no,
            "reason": refund_desc[:80],
            "notify_url": notify_url,
            "amount": {"refund": refund_fee, "total": total_fee, "currency": "CNY"},
        }, out_refund_no)).data
        return {"refund_id": _text(answer, "refund_id"), "out_refund_no": _text(answer, "out_refund_no"),
                "refund_fee": _fen(answer.get("amount"), "refund"),
                "refund_status": REFUND_STATUS.get(_text(answer, "status"), _text(answer, "status"))}

    async def refund_query(self, out_refund_no: str) -> dict[str, str]:
        """Refund query (§3) as v2's refundquery answer."""
        answer = await self._call("GET", REFUND_QUERY_PATH.format(quote(out_refund_no, safe="")), None,
                                  out_refund_no)
        return refund_query_fields(answer.data)


def open_notification(pay: typing.Any, headers: typing.Mapping[str, str], body: bytes,
                      events: tuple[str, ...]) -> Notification:
    """A v3 notification posted to the app whose WeChat Pay is `pay`: verified and decrypted (its
    `notification`); NotificationRefused as well when the merchant does not use API v3."""
    if not isinstance(pay, RealWeChatPayV3):
        raise NotificationRefused("version", "an API v3 notification, but the merchant uses API v2")
    return pay.notification(headers, body, events)
