"""A fake api.mch.weixin.qq.com for WeChat Pay API v3 (JSAPI, direct merchant), following wechatpay-v3.md
(the § numbers are that document's).

JSON in and out. It makes its own keys at construction (the merchant's API key and certificate, the WeChat Pay
public key with its PUB_KEY_ID_, a platform certificate, the APIv3 key) and writes them as PEM files for the
server under test. Every request must carry Accept and User-Agent and an Authorization header signed with
the merchant's key over the exact bytes sent (§2), within 5 minutes of the fake's clock, with the merchant
certificate's serial; bodies must be JSON without nulls or 4-byte UTF-8 characters (§2). It keeps orders
(NOTPAY, SUCCESS, CLOSED, REFUND) and refunds (PROCESSING, SUCCESS, CLOSED, ABNORMAL) and answers prepay,
query, close, refund, refund query and /v3/certificates with the fields of §3/§5 and the errors of §6,
every 2xx answer (the 204 of close too) signed like WeChat signs: with the public key's private half in
public-key mode, the platform certificate's key in certificate mode, and during a switch-over (MIXED) with
whatever the request's Wechatpay-Serial names (§5). It checks none of this with the project's code: the
signatures and AES-256-GCM are made here with `cryptography`.

Like the v2 fake (fakes/wechatpay.py) it can be told to fail a call (HTTP_500, BAD_SIGN, SIGNTEST or a v3 error
code answered with that code's HTTP status) or to hold one until released, and it plays the payer (`pay`)
and WeChat's notifier: `notification`/`refund_notification` build the signed, encrypted envelopes of §4 (with
knobs for probes, stale times, wrong keys), `notify`/`notify_refund` post one, `deliver` posts with WeChat's
retry schedule, re-signing each attempt on its own clock.

Its clock (`now`) is the real one plus an offset tests move with `advance`: the 5-minute window of requests,
the timestamps it signs, the 1-minute rule between refunds of one order, time_expire and the 2-hour life of a
prepay_id all run on it. (So advancing it more than 5 minutes makes the server's requests stale unless the
server's clock moves too, or a test sets `window = None`.)

Where the reference gives no answer, the fake's choice is marked INFERRED below.
"""

from __future__ import annotations

import base64
import binascii
import collections
import dataclasses
import datetime as dt
import json
import re
import secrets
import string
import time
import typing
import uuid
from pathlib import Path
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from aiohttp import web
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.x509.oid import NameOID

from tests.fakes.wechatpay import Held

PREPAY = "/v3/pay/transactions/jsapi"
QUERY_PREFIX = "/v3/pay/transactions/out-trade-no/"  # GET {prefix}{out_trade_no}?mchid=...
QUERY_ID_PREFIX = "/v3/pay/transactions/id/"  # GET {prefix}{transaction_id}?mchid=... (paid orders only)
CLOSE_SUFFIX = "/close"  # POST {QUERY_PREFIX}{out_trade_no}/close
REFUNDS = "/v3/refund/domestic/refunds"  # POST
REFUND_QUERY = REFUNDS + "/"  # GET {REFUNDS}/{out_refund_no}: its own key for hold/fail/count
CERTIFICATES = "/v3/certificates"  # GET (certificate and mixed modes)

# fail() modes besides v3 error codes: a bare HTTP 500 (not JSON), a 2xx answer whose signature is wrong,
# and a 2xx answer whose signature is a WECHATPAY/SIGNTEST/ probe (§2).
HTTP_500, BAD_SIGN, SIGNTEST = "HTTP_500", "BAD_SIGN", "SIGNTEST"
# What WeChat signs with (§5): the WeChat Pay public key, a platform certificate, or a switch-over.
PUBLIC_KEY, CERTIFICATE, MIXED = "public_key", "certificate", "mixed"

BEIJING = ZoneInfo("Asia/Shanghai")
SIGNATURE_TYPE = "WECHATPAY2-SHA256-RSA2048"
AUTH_KEYS = frozenset({"mchid", "nonce_str", "timestamp", "serial_no", "signature"})
AUTH_ITEM = re.compile(r'([a-z_]+)="([^"]*)"')
# §2: SDKs refuse |now - ts| beyond 5 minutes; the doc only says "long ago" requests are refused.
WINDOW = dt.timedelta(minutes=5)
# §3: a prepay_id is valid for 2 hours; prepay again (same parameters) for a new one.
PREPAY_ID_LIFE = dt.timedelta(hours=2)
# §3 Refund: at most 50 partial refunds per order; refunds of one order at least a minute apart.
MAX_REFUNDS = 50
REFUND_INTERVAL = dt.timedelta(minutes=1)
# §4: the retries after a failed notification, 15 of them (16 attempts, 24 h 4 min in all).
RETRY_SCHEDULE = tuple(dt.timedelta(seconds=s) for s in (
    15, 15, 30, 180, 600, 1200, 1800, 1800, 1800, 3600, 10800, 10800, 10800, 21600, 21600))
OUT_TRADE_NO = re.compile(r"[0-9A-Za-z_\-*|]{6,32}")
OUT_REFUND_NO = re.compile(r"[0-9A-Za-z_\-*@|]{1,64}")
RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})")
PAID = ("SUCCESS", "REFUND")
TRADE_STATE_DESC = {"NOTPAY": "订单未支付", "SUCCESS": "支付成功", "CLOSED": "订单已关闭", "REFUND": "订单发生过退款"}
REFUND_SUMMARY = {"SUCCESS": "退款成功", "ABNORMAL": "退款异常", "CLOSED": "退款关闭", "PROCESSING": "退款处理中"}

# v3 error codes: HTTP status and a default message. The statuses are §6's: the HTTP table and the business
# codes of the basic-payment pages; those §6 marks * (not confirmed by an official page) are used as given.
# The messages are ours except the ones §2/§5/§6 quote.
ERRORS: dict[str, tuple[int, str]] = {
    "PARAM_ERROR": (400, "参数错误"),
    "INVALID_REQUEST": (400, "无效请求"),
    "APPID_MCHID_NOT_MATCH": (400, "appid和mch_id不匹配"),
    "MCH_NOT_EXISTS": (400, "商户号不存在"),
    "ORDER_CLOSED": (400, "订单已关闭"),
    "SIGN_ERROR": (401, "签名错误，请检查后再试"),
    "ACCOUNT_ERROR": (403, "账号异常"),
    "NO_AUTH": (403, "商户无权限"),
    "NOT_ENOUGH": (403, "余额不足"),
    "OUT_TRADE_NO_USED": (403, "商户订单号重复"),
    "RULE_LIMIT": (403, "业务规则限制"),
    "TRADE_ERROR": (403, "交易错误"),
    "ORDER_NOT_EXIST": (404, "订单不存在"),  # * in §6
    "RESOURCE_NOT_EXISTS": (404, "资源不存在"),
    "FREQUENCY_LIMITED": (429, "频率限制，请降低请求频率后重试"),  # * in §6
    "RATELIMIT_EXCEEDED": (429, "达到调用速率限制"),
    "SYSTEM_ERROR": (500, "系统繁忙，请稍后重试"),
    "BANK_ERROR": (500, "银行系统异常"),  # * in §6
    "INVALID_TRANSACTIONID": (500, "订单号非法"),  # * in §6
    "OPENID_MISMATCH": (500, "openid和appid不匹配"),  # * in §6
    "SERVICE_UNAVAILABLE": (503, "服务不可用，请稍后重试"),
    # INFERRED: §6 lists USER_ACCOUNT_ABNORMAL among the refund codes without a status; 403, the class of
    # business refusals (NOT_ENOUGH, a refund code too, is 403 in the basic-payment table).
    "USER_ACCOUNT_ABNORMAL": (403, "退款请求失败，用户账户异常"),
    # INFERRED: §3 Close says closing a paid order fails with ORDER_PAID (skills), HTTP status not known: 400.
    # (A prepay for a paid order answers 403, PREPAY_PAID below.)
    "ORDER_PAID": (400, "订单已支付"),
}
REENTRY_MISMATCH = "请求重入时，参数与首次请求时不一致"  # §3, quoted
MISSING_HEADERS = "Http头缺少Accept或User-Agent"  # §2, quoted
NO_PLATFORM_CERT = "无可用的平台证书，请在商户平台-API安全申请使用微信支付公钥。"  # §5, quoted (its tail elided there)
# INFERRED: §3 gives no answer to a prepay for an order already paid. 403 (business refusal, like the
# documented 403 OUT_TRADE_NO_USED "商户订单号重复"), with the code the skills use for closing a paid order.
PREPAY_PAID = (403, "ORDER_PAID", "该订单已支付")
# INFERRED: the codes of refund refusals §3 states as rules without an answer: more than is left of the
# payment; a 51st refund of one order; total/currency not the order's.
OVER_REFUND = (400, "INVALID_REQUEST", "申请退款金额超过订单可退金额")
TOO_MANY_REFUNDS = (403, "RULE_LIMIT", "退款次数超过限制，一笔订单最多退款50次")
REFUND_TOO_SOON = (429, "FREQUENCY_LIMITED", "同一笔订单的退款申请间隔不能小于1分钟")  # §6's 429 for the code
# INFERRED: openid not of this appid (when a test set `openids`): 400 PARAM_ERROR, not §6's 500* OPENID_MISMATCH.
OPENID_NOT_OF_APPID = (400, "PARAM_ERROR", "appid和openid不匹配")
# Request-ID: "the number after the last - is an internal error code, e.g. 268443699 = 签名错误" (§2).
INTERNAL_CODES = {"SIGN_ERROR": "268443699"}


def _beijing_rfc3339(moment: dt.datetime) -> str:
    return moment.astimezone(BEIJING).strftime("%Y-%m-%dT%H:%M:%S+08:00")


def _dump(data: typing.Any) -> bytes:
    """JSON as WeChat sends it: compact, UTF-8 (not ASCII escapes), as in the vectors of §7."""
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()


def _nonce(length: int = 32) -> str:
    return "".join(secrets.choice(string.ascii_uppercase + string.digits) for _ in range(length))


def _digits(count: int) -> str:
    return "".join(secrets.choice(string.digits) for _ in range(count))


def rsa_sign(key: rsa.RSAPrivateKey, message: bytes) -> str:
    """Base64(RSASSA-PKCS1-v1_5(SHA-256)) (§2)."""
    return base64.b64encode(key.sign(message, padding.PKCS1v15(), hashes.SHA256())).decode()


def rsa_verify(key: rsa.RSAPublicKey, message: bytes, signature: str) -> bool:
    try:
        key.verify(base64.b64decode(signature, validate=True), message, padding.PKCS1v15(), hashes.SHA256())
    except (binascii.Error, ValueError, InvalidSignature):
        return False
    return True


def aes_gcm_encrypt(api_v3_key: str, nonce: str, associated_data: str, plaintext: bytes) -> str:
    """§4 in reverse: Base64(AES-256-GCM ciphertext ‖ 16-byte tag), key = the APIv3 key's bytes."""
    return base64.b64encode(AESGCM(api_v3_key.encode()).encrypt(
        nonce.encode(), plaintext, associated_data.encode())).decode()


def aes_gcm_decrypt(api_v3_key: str, nonce: str, associated_data: str, ciphertext: str) -> bytes:
    return AESGCM(api_v3_key.encode()).decrypt(nonce.encode(), base64.b64decode(ciphertext), associated_data.encode())


def call_key(method: str, path: str) -> str:
    """The key of a call for hold/fail/count: PREPAY, QUERY_PREFIX, QUERY_ID_PREFIX, CLOSE_SUFFIX, REFUNDS,
    REFUND_QUERY or CERTIFICATES."""
    if method == "POST" and path.startswith(QUERY_PREFIX) and path.endswith(CLOSE_SUFFIX):
        return CLOSE_SUFFIX
    for prefix in (QUERY_PREFIX, QUERY_ID_PREFIX, REFUND_QUERY):
        if path.startswith(prefix):
            return prefix
    return path


def _find(value: typing.Any, wrong: typing.Callable[[typing.Any], bool], where: str = "") -> str | None:
    """The JSON path of the first value (or key) in `value` for which `wrong` holds, else None."""
    if wrong(value):
        return where or "/"
    if isinstance(value, dict):
        for k, v in value.items():
            if wrong(k):
                return f"{where}/{k}"
            found = _find(v, wrong, f"{where}/{k}")
            if found:
                return found
    elif isinstance(value, list):
        for n, v in enumerate(value):
            found = _find(v, wrong, f"{where}/{n}")
            if found:
                return found
    return None


def _outside_bmp(value: typing.Any) -> bool:
    return isinstance(value, str) and any(ord(c) > 0xFFFF for c in value)


def _refuse_constant(name: str) -> typing.NoReturn:
    raise ValueError(f"{name} is not JSON")


def _whole(value: typing.Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _notify_url_error(value: typing.Any) -> str | None:
    """§3: HTTPS, publicly reachable, no query string; 255 characters at most."""
    if not isinstance(value, str) or not value or len(value) > 255:
        return "notify_url格式不正确"
    parts = urlsplit(value)
    if parts.scheme != "https" or not parts.hostname:
        return "notify_url必须为https地址"
    if "?" in value or "#" in value:
        return "notify_url不能携带参数"
    return None


@dataclasses.dataclass
class Order:
    out_trade_no: str
    params: dict[str, typing.Any]  # the prepay body as first sent
    prepay_id: str
    created_at: dt.datetime
    prepay_at: dt.datetime  # when prepay_id was issued (it lives 2 hours)
    state: str = "NOTPAY"
    transaction_id: str = ""
    success_time: str = ""
    prepays: int = 1

    @property
    def total(self) -> int:
        return int(self.params["amount"]["total"])

    @property
    def openid(self) -> str:
        return str(self.params["payer"]["openid"])

    @property
    def notify_url(self) -> str:
        return str(self.params["notify_url"])


@dataclasses.dataclass
class Refund:
    out_refund_no: str
    order: Order
    refund: int
    refund_id: str
    notify_url: str
    created_at: dt.datetime
    params: dict[str, typing.Any]
    status: str = "PROCESSING"
    success_time: str = ""


class Refusal(Exception):
    """An error answer, raised from deep in a check."""

    def __init__(self, code: str, message: str | None = None, *, status: int | None = None,
                 detail: dict[str, typing.Any] | None = None) -> None:
        super().__init__(code)
        self.code = code
        self.message = message or ERRORS[code][1]
        self.status = status or ERRORS[code][0]
        self.detail = detail


def _new_rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _self_signed(key: rsa.RSAPrivateKey, common_name: str, organization: str, years: int) -> x509.Certificate:
    """A certificate like WeChat's: RSA 2048, SHA-256, a 40-hex-digit serial (first digit not 0, so its
    upper-case hex has no leading zero to lose), valid from yesterday."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization),
                      x509.NameAttribute(NameOID.COUNTRY_NAME, "CN")])
    now = dt.datetime.now(dt.UTC)
    return (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(secrets.randbits(159) | (1 << 158))
            .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=365 * years))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))


def _write_key(path: Path, key: rsa.RSAPrivateKey) -> Path:
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    return path


def _write_cert(path: Path, cert: x509.Certificate) -> Path:
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path


class FakeWeChatPayV3:
    def __init__(self, directory: Path, appid: str = "wxfake0123456789", mchid: str = "1900000109",
                 mode: str = PUBLIC_KEY) -> None:
        if mode not in (PUBLIC_KEY, CERTIFICATE, MIXED):
            raise ValueError(f"unknown mode {mode!r}")
        self.appid = appid
        self.mchid = mchid
        self.mode = mode
        self.base_url = ""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory
        # The merchant's API key and certificate (apiclient_key.pem / apiclient_cert.pem, §1).
        self.merchant_key = _new_rsa_key()
        self.merchant_cert = _self_signed(self.merchant_key, mchid, "Test merchant", years=5)
        self.merchant_serial = format(self.merchant_cert.serial_number, "X")
        self.merchant_key_path = _write_key(directory / "apiclient_key.pem", self.merchant_key)
        self.merchant_cert_path = _write_cert(directory / "apiclient_cert.pem", self.merchant_cert)
        # WeChat Pay's side (§5): the public key (pub_key.pem) with its id, and a platform certificate.
        self.wechatpay_key = _new_rsa_key()  # the WeChat Pay public key's private half
        self.public_key_id = "PUB_KEY_ID_0119000001" + _digits(19)
        self.public_key_path = directory / "pub_key.pem"
        self.public_key_path.write_bytes(self.wechatpay_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
        self.platform_key = _new_rsa_key()
        self.platform_cert = _self_signed(self.platform_key, "Tenpay.com sign (test)", "Tenpay.com", years=5)
        self.platform_serial = format(self.platform_cert.serial_number, "X")
        self.platform_cert_path = _write_cert(directory / f"wechatpay_{self.platform_serial}.pem", self.platform_cert)
        # Certificates replaced by rotate_platform_certificate: still listed and still valid, no longer signing.
        self.retired: list[tuple[rsa.RSAPrivateKey, x509.Certificate]] = []
        self.api_v3_key = "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(32))

        self.orders: dict[str, Order] = {}
        self.refunds: dict[str, Refund] = {}
        # Each refund request that moved money (a new refund accepted): a repeat of one adds nothing here.
        self.refunds_made: list[str] = []
        # (method, path, the parsed JSON body or the query) of every call that reached a route.
        self.calls: list[tuple[str, str, dict[str, typing.Any]]] = []
        self.failures: dict[str, collections.deque[str]] = collections.defaultdict(collections.deque)
        self.held: dict[str, Held] = {}
        self.offset = dt.timedelta()
        # The request timestamp window (§2); None: not checked (for tests that move this clock far ahead).
        self.window: dt.timedelta | None = WINDOW
        self.real_time_signatures = False
        # When a test sets it: the openids of users under this appid; prepay refuses others (§9).
        self.openids: set[str] | None = None
        self._mixed_turn = 0

    # -- the clock, and what tests tell the fake ---------------------------------------------------

    def now(self) -> dt.datetime:
        """WeChat Pay's clock: the real time (Beijing) plus what tests `advance`d it by."""
        return dt.datetime.now(BEIJING) + self.offset

    def advance(self, minutes: float) -> None:
        self.offset += dt.timedelta(minutes=minutes)

    def timestamp(self) -> int:
        """What it signs with: its clock, or the real time once a test set `real_time_signatures` (the minutes a
        test makes pass at both ends leave the server's clock where it is)."""
        if self.real_time_signatures:
            return int(time.time())
        return int(self.now().timestamp())

    def hold(self, path: str, *, after: bool = False) -> Held:
        """The next call with this key (PREPAY, QUERY_PREFIX, CLOSE_SUFFIX, REFUNDS, REFUND_QUERY, ...) waits,
        once it came in and passed the signature checks (or with `after`, once it was carried out), until the
        returned `Held` is released."""
        held = self.held[path] = Held(after=after)
        return held

    def fail(self, path_key: str, mode: str, times: int = 1) -> None:
        """The next `times` calls with this key fail with `mode`: HTTP_500, BAD_SIGN, SIGNTEST or a v3 error code
        of ERRORS (answered with its status). Checked after the request's own checks, before it is carried out."""
        if mode not in (HTTP_500, BAD_SIGN, SIGNTEST) and mode not in ERRORS:
            raise ValueError(f"unknown failure mode {mode!r}")
        self.failures[path_key].extend([mode] * times)

    def count(self, path_key: str) -> int:
        return sum(1 for method, path, _ in self.calls if call_key(method, path) == path_key)

    def make_app(self) -> web.Application:
        app = web.Application()
        app.router.add_post(PREPAY, self._handle)
        app.router.add_get(QUERY_PREFIX + "{out_trade_no}", self._handle)
        app.router.add_post(QUERY_PREFIX + "{out_trade_no}" + CLOSE_SUFFIX, self._handle)
        app.router.add_get(QUERY_ID_PREFIX + "{transaction_id}", self._handle)
        app.router.add_post(REFUNDS, self._handle)
        app.router.add_get(REFUND_QUERY + "{out_refund_no}", self._handle)
        app.router.add_get(CERTIFICATES, self._handle)
        return app

    # -- keys ------------------------------------------------------------------------------------------

    def _key_named(self, serial: str) -> rsa.RSAPrivateKey:
        """The private key behind a Wechatpay-Serial; an unknown one: the mode's own."""
        if serial == self.public_key_id:
            return self.wechatpay_key
        if serial == self.platform_serial:
            return self.platform_key
        for key, cert in self.retired:
            if serial == format(cert.serial_number, "X"):
                return key
        return self.wechatpay_key if self.mode == PUBLIC_KEY else self.platform_key

    def rotate_platform_certificate(self) -> str:
        """WeChat Pay's certificate rotation (§5): a new platform certificate signs from now on; the old one is
        still listed by /v3/certificates. The new serial (not written to any file: a client learns it by download)."""
        self.retired.append((self.platform_key, self.platform_cert))
        self.platform_key = _new_rsa_key()
        self.platform_cert = _self_signed(self.platform_key, "Tenpay.com sign (test)", "Tenpay.com", years=5)
        self.platform_serial = format(self.platform_cert.serial_number, "X")
        return self.platform_serial

    def _answer_serial(self, request: web.Request) -> str:
        """§5: public-key mode signs with the public key, certificate mode with the platform certificate; during
        a switch-over answers are signed with whatever the request's Wechatpay-Serial names (public key id →
        public key; absent or anything else → platform certificate)."""
        if self.mode == PUBLIC_KEY:
            return self.public_key_id
        if self.mode == CERTIFICATE:
            return self.platform_serial
        return self.public_key_id if request.headers.get("Wechatpay-Serial") == self.public_key_id \
            else self.platform_serial

    def _notification_serial(self) -> str:
        """§5: notifications move over gradually during a switch-over; here they alternate, public key first."""
        if self.mode == PUBLIC_KEY:
            return self.public_key_id
        if self.mode == CERTIFICATE:
            return self.platform_serial
        self._mixed_turn += 1
        return self.public_key_id if self._mixed_turn % 2 else self.platform_serial

    def wechatpay_headers(self, serial: str, body: bytes, *, timestamp: int | None = None,
                          signature: str | None = None, signing_key: rsa.RSAPrivateKey | None = None,
                          bad: str | None = None) -> dict[str, str]:
        """The Wechatpay-* headers WeChat puts on a signed answer or notification: the signature over
        `timestamp\\nnonce\\nbody\\n` (§2), with the key `serial` names unless `signing_key` is given."""
        ts = str(self.timestamp() if timestamp is None else timestamp)
        nonce = _nonce()
        key = signing_key or self._key_named(serial)
        message = f"{ts}\n{nonce}\n".encode() + body + b"\n"
        if signature is None:
            if bad == BAD_SIGN:  # valid Base64 of a signature, but of another message
                signature = rsa_sign(key, message + b"forged")
            elif bad == SIGNTEST:  # §2: a probe; its Base64 does not decode
                signature = "WECHATPAY/SIGNTEST/" + rsa_sign(key, message)
            else:
                signature = rsa_sign(key, message)
        return {"Wechatpay-Serial": serial, "Wechatpay-Signature": signature, "Wechatpay-Timestamp": ts,
                "Wechatpay-Nonce": nonce, "Wechatpay-Signature-Type": SIGNATURE_TYPE}

    def resign(self, headers: typing.Mapping[str, str], body: bytes) -> dict[str, str]:
        """The same notification as WeChat resends it: a fresh timestamp (this clock), nonce and signature by
        the key its Wechatpay-Serial names (a probe or a wrongly signed one comes back correctly signed)."""
        fresh = dict(headers)
        fresh.update(self.wechatpay_headers(headers.get("Wechatpay-Serial", self._notification_serial()), body))
        return fresh

    # -- answers -----------------------------------------------------------------------------------------

    @staticmethod
    def _request_id(code: str = "") -> str:
        return f"08{secrets.token_hex(20).upper()}-{INTERNAL_CODES.get(code, '0')}"

    def _signed(self, request: web.Request, payload: dict[str, typing.Any] | None, *, status: int = 200,
                bad: str | None = None) -> web.Response:
        """A 2xx answer signed as §2 says (a 204 too, over an empty body), with Request-ID."""
        body = b"" if payload is None else _dump(payload)
        headers = self.wechatpay_headers(self._answer_serial(request), body, bad=bad)
        headers["Request-ID"] = self._request_id()
        if payload is None:
            return web.Response(status=204, headers=headers)
        return web.Response(status=status, body=body, headers=headers, content_type="application/json",
                            charset="utf-8")

    def _error(self, refusal: Refusal) -> web.Response:
        """An error answer `{"code","message"}` with its HTTP status. Unsigned: the reference does not say
        whether WeChat signs error answers (wechatpayv3 verifies only 2xx ones, §8), so clients must not need
        it (INFERRED)."""
        payload: dict[str, typing.Any] = {"code": refusal.code, "message": refusal.message}
        if refusal.detail:
            payload["detail"] = refusal.detail
        return web.Response(status=refusal.status, body=_dump(payload), content_type="application/json",
                            charset="utf-8", headers={"Request-ID": self._request_id(refusal.code)})

    # -- the checks every request passes (§2, §9) -----------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        key = call_key(request.method, request.path)
        raw = await request.read()
        try:
            recorded = dict(request.query) if request.method == "GET" else json.loads(raw)
        except ValueError:
            recorded = {}
        self.calls.append((request.method, request.path, recorded if isinstance(recorded, dict) else {}))
        try:
            self._check_headers(request)
            self._check_authorization(request, raw)
            body = dict(request.query) if request.method == "GET" else self._parse_body(raw)
            self._check_mchid(request, key, body)
        except Refusal as refusal:
            return self._error(refusal)
        held = self.held.pop(key, None)
        if held is not None and held.after:
            answer = self._carry_out(key, request, body)
            held.arrived.set()
            await held.released.wait()
            return answer
        if held is not None:
            held.arrived.set()
            await held.released.wait()
        queue = self.failures.get(key)
        if queue:
            return self._failure(key, queue.popleft(), request)
        return self._carry_out(key, request, body)

    def _check_headers(self, request: web.Request) -> None:
        if not request.headers.get("Accept") or not request.headers.get("User-Agent"):
            raise Refusal("INVALID_REQUEST", MISSING_HEADERS)
        if request.method == "POST" and request.content_type != "application/json":
            # §2 says to send it; the answer to a body of another type is INFERRED.
            raise Refusal("INVALID_REQUEST", "Http头Content-Type值必须为application/json")

    def _check_authorization(self, request: web.Request, raw: bytes) -> None:
        """§2: the header parsed strictly (the five items, each once, in any order, no spaces); the merchant's
        serial; the signature over METHOD\\nPATH?QUERY\\nTIMESTAMP\\nNONCE\\nBODY\\n (the target exactly as sent,
        the body's exact bytes); the timestamp within 5 minutes of this clock. Anything else: 401 SIGN_ERROR."""
        header = request.headers.get("Authorization", "")
        scheme, _, rest = header.partition(" ")
        items: dict[str, str] = {}
        for item in rest.split(",") if scheme == SIGNATURE_TYPE else ():
            match = AUTH_ITEM.fullmatch(item)
            if match is None or match[1] not in AUTH_KEYS or match[1] in items or not match[2]:
                items = {}
                break
            items[match[1]] = match[2]
        if set(items) != AUTH_KEYS:
            raise Refusal("SIGN_ERROR", "Http头Authorization值格式错误，请参考《微信支付商户REST API签名规则》",
                          detail={"field": "authorization", "location": "header",
                                  "detail": {"issue": "authorization format error"}})
        if items["mchid"] != self.mchid:
            # INFERRED: a merchant this server does not know has no certificate to verify with.
            raise Refusal("SIGN_ERROR", "商户号不存在或商户证书不存在",
                          detail={"field": "mchid", "location": "authorization"})
        if items["serial_no"] != self.merchant_serial:
            # §2: serial_no is the merchant certificate's serial (upper-case hex, exactly: INFERRED strictness).
            raise Refusal("SIGN_ERROR", "商户证书序列号有误。请使用签名私钥匹配的证书序列号",
                          detail={"field": "serial_no", "location": "authorization"})
        target = request.raw_path
        message = (f"{request.method}\n{target}\n{items['timestamp']}\n{items['nonce_str']}\n".encode()
                   + raw + b"\n")
        if not rsa_verify(self.merchant_cert.public_key(), message, items["signature"]):  # type: ignore[arg-type]
            # The detail's shape of §2: WeChat's view of the message.
            text = message.decode(errors="replace")
            raise Refusal("SIGN_ERROR", detail={
                "detail": {"issue": "sign not match"}, "field": "signature", "location": "authorization",
                "sign_information": {"method": request.method, "sign_message_length": len(message),
                                     "truncated_sign_message": text[:100] + ("…" if len(text) > 100 else ""),
                                     "url": target}})
        if not items["timestamp"].isdigit() or (self.window is not None and abs(
                self.timestamp() - int(items["timestamp"])) > self.window.total_seconds()):
            raise Refusal("SIGN_ERROR", "请求时间与系统时间相差过大，请检查系统时间",
                          detail={"field": "timestamp", "location": "authorization",
                                  "detail": {"issue": "timestamp expired"}})

    @staticmethod
    def _parse_body(raw: bytes) -> dict[str, typing.Any]:
        """§2: JSON (an object), no null anywhere (omit the key), UTF-8 characters of 1–3 bytes only. The rule
        names description/attach/reason; the fake applies it to every string (stricter, INFERRED)."""
        try:
            body = json.loads(raw.decode("utf-8"), parse_constant=_refuse_constant)
        except (UnicodeDecodeError, ValueError):
            raise Refusal("PARAM_ERROR", "请求体不是合法的JSON格式") from None
        if not isinstance(body, dict):
            raise Refusal("PARAM_ERROR", "请求体不是合法的JSON对象")
        where = _find(body, lambda v: v is None)
        if where:
            raise Refusal("PARAM_ERROR", f"字段{where}的值不能为null，请省略该字段",
                          detail={"field": where, "location": "body", "detail": {"issue": "null value"}})
        where = _find(body, _outside_bmp)
        if where:
            raise Refusal("PARAM_ERROR", f"字段{where}含有不支持的字符（4字节UTF-8字符）",
                          detail={"field": where, "location": "body", "detail": {"issue": "4-byte UTF-8"}})
        return body

    def _check_mchid(self, request: web.Request, key: str, body: dict[str, typing.Any]) -> None:
        """The Authorization mchid (= this merchant, checked before) must be the body's / query's: 400
        PARAM_ERROR (INFERRED: §2 lists the mismatch among the causes of SIGN_ERROR, §9 only says it is refused)."""
        required = key in (PREPAY, CLOSE_SUFFIX, QUERY_PREFIX, QUERY_ID_PREFIX)
        if "mchid" not in body:
            if required:
                raise Refusal("PARAM_ERROR", "缺少参数mchid")
            return
        if body["mchid"] != self.mchid:
            raise Refusal("PARAM_ERROR", "请求中的mchid与Authorization中的mchid不一致",
                          detail={"field": "mchid", "location": "query" if request.method == "GET" else "body"})

    # -- failures and the API ------------------------------------------------------------------------------

    def _failure(self, key: str, mode: str, request: web.Request) -> web.Response:
        if mode == HTTP_500:
            return web.Response(status=500, text="<html>500 Internal Server Error</html>", content_type="text/html")
        if mode in (BAD_SIGN, SIGNTEST):
            # Forged good news, signed wrongly: nothing is carried out.
            return self._signed(request, self._forged(key, request), bad=mode)
        return self._error(Refusal(mode))

    def _forged(self, key: str, request: web.Request) -> dict[str, typing.Any] | None:
        now = _beijing_rfc3339(self.now())
        if key == PREPAY:
            return {"prepay_id": "wx" + self.now().strftime("%Y%m%d%H%M%S") + "f0" * 10}
        if key == CLOSE_SUFFIX:
            return None
        if key in (QUERY_PREFIX, QUERY_ID_PREFIX):
            return {"appid": self.appid, "mchid": self.mchid,
                    "out_trade_no": request.match_info.get("out_trade_no", "forged0001"),
                    "transaction_id": "4200000000000000000000000000", "trade_type": "JSAPI", "trade_state": "SUCCESS",
                    "trade_state_desc": "支付成功", "bank_type": "OTHERS", "success_time": now,
                    "payer": {"openid": "forged"},
                    "amount": {"total": 1, "payer_total": 1, "currency": "CNY", "payer_currency": "CNY"}}
        if key in (REFUNDS, REFUND_QUERY):
            return {"refund_id": "50000000000000000000000000000", "out_refund_no": "forged", "transaction_id":
                    "4200000000000000000000000000", "out_trade_no": "forged0001", "channel": "ORIGINAL",
                    "user_received_account": "支付用户零钱", "success_time": now, "create_time": now,
                    "status": "SUCCESS", "funds_account": "AVAILABLE",
                    "amount": {"total": 1, "refund": 1, "payer_total": 1, "payer_refund": 1, "settlement_refund": 1,
                               "settlement_total": 1, "discount_refund": 0, "currency": "CNY", "refund_fee": 0}}
        return self._certificates_json()

    def _carry_out(self, key: str, request: web.Request, body: dict[str, typing.Any]) -> web.Response:
        try:
            if key == PREPAY:
                return self._signed(request, self._prepay(body))
            if key == QUERY_PREFIX:
                return self._signed(request, self.transaction(self._order(request.match_info["out_trade_no"])))
            if key == QUERY_ID_PREFIX:
                return self._signed(request, self._query_by_id(request.match_info["transaction_id"]))
            if key == CLOSE_SUFFIX:
                self._close(request.match_info["out_trade_no"], body)
                return self._signed(request, None)
            if key == REFUNDS:
                return self._signed(request, self._refund(body))
            if key == REFUND_QUERY:
                refund = self.refunds.get(request.match_info["out_refund_no"])
                if refund is None:
                    raise Refusal("RESOURCE_NOT_EXISTS", "退款单不存在")
                return self._signed(request, self.refund_json(refund.out_refund_no))
            if self.mode == PUBLIC_KEY:
                raise Refusal("RESOURCE_NOT_EXISTS", NO_PLATFORM_CERT)
            return self._signed(request, self._certificates_json())
        except Refusal as refusal:
            return self._error(refusal)

    def _order(self, out_trade_no: str) -> str:
        if out_trade_no not in self.orders:
            raise Refusal("ORDER_NOT_EXIST")
        return out_trade_no

    def _query_by_id(self, transaction_id: str) -> dict[str, typing.Any]:
        # §3: unpaid orders can only be queried by out_trade_no.
        for order in self.orders.values():
            if order.transaction_id and order.transaction_id == transaction_id:
                return self.transaction(order.out_trade_no)
        raise Refusal("ORDER_NOT_EXIST")

    def _prepay(self, body: dict[str, typing.Any]) -> dict[str, typing.Any]:
        """§3 JSAPI prepay."""
        for name in ("appid", "mchid", "description", "out_trade_no", "notify_url", "amount"):
            if name not in body:
                raise Refusal("PARAM_ERROR",
                              f"输入源“/body/{name}”映射到字段“{name}”必填性规则校验失败，此字段为必填项")
        if body["appid"] != self.appid:
            raise Refusal("APPID_MCHID_NOT_MATCH")
        description, attach = body["description"], body.get("attach", "")
        if not isinstance(description, str) or not 1 <= len(description) <= 127:
            raise Refusal("PARAM_ERROR", "description长度需在1到127之间")  # INFERRED: characters, not bytes
        if not isinstance(attach, str) or len(attach) > 128:
            raise Refusal("PARAM_ERROR", "attach长度超过128")
        if not isinstance(body["out_trade_no"], str) or not OUT_TRADE_NO.fullmatch(body["out_trade_no"]):
            raise Refusal("PARAM_ERROR", "out_trade_no只能由6到32位数字、大小写字母、_-|*组成")
        problem = _notify_url_error(body["notify_url"])
        if problem:
            raise Refusal("PARAM_ERROR", problem)
        amount = body["amount"]
        if not isinstance(amount, dict) or not _whole(amount.get("total")) or amount["total"] < 1:
            raise Refusal("PARAM_ERROR", "amount.total必须为大于0的整数")
        if amount.get("currency", "CNY") != "CNY":
            raise Refusal("PARAM_ERROR", "amount.currency只支持CNY")
        payer = body.get("payer")
        if not isinstance(payer, dict) or not isinstance(payer.get("openid"), str) or not payer["openid"]:
            raise Refusal("PARAM_ERROR", "JSAPI支付必须传openid")
        if self.openids is not None and payer["openid"] not in self.openids:
            raise Refusal(OPENID_NOT_OF_APPID[1], OPENID_NOT_OF_APPID[2], status=OPENID_NOT_OF_APPID[0])
        if "time_expire" in body:
            expire = body["time_expire"]
            if not isinstance(expire, str) or not RFC3339.fullmatch(expire):
                raise Refusal("PARAM_ERROR", "time_expire格式错误，应为RFC 3339格式，如2018-06-08T10:34:56+08:00")
            # INFERRED: the code of a time_expire already past.
            if dt.datetime.fromisoformat(expire) <= self.now():
                raise Refusal("PARAM_ERROR", "time_expire不能早于当前时间")
        order = self.orders.get(body["out_trade_no"])
        now = self.now()
        if order is None:
            prepay_id = self._new_prepay_id()
            self.orders[body["out_trade_no"]] = Order(body["out_trade_no"], body, prepay_id, now, now)
            return {"prepay_id": prepay_id}
        if order.state in PAID:
            raise Refusal(PREPAY_PAID[1], PREPAY_PAID[2], status=PREPAY_PAID[0])
        if order.state == "CLOSED":
            raise Refusal("ORDER_CLOSED")
        if order.params != body:
            raise Refusal("INVALID_REQUEST", REENTRY_MISMATCH)
        order.prepays += 1
        if now - order.prepay_at >= PREPAY_ID_LIFE:
            order.prepay_id, order.prepay_at = self._new_prepay_id(), now
        return {"prepay_id": order.prepay_id}

    def _new_prepay_id(self) -> str:
        return "wx" + self.now().strftime("%Y%m%d%H%M%S") + secrets.token_hex(10)

    def _close(self, out_trade_no: str, body: dict[str, typing.Any]) -> None:
        """§3 Close: the body carries only mchid; re-entrant; a paid order cannot be closed."""
        if set(body) != {"mchid"}:
            raise Refusal("PARAM_ERROR", "关单请求体只能包含mchid")
        order = self.orders.get(out_trade_no)
        if order is None:
            raise Refusal("ORDER_NOT_EXIST")  # INFERRED: the reference does not say
        if order.state in PAID:
            raise Refusal("ORDER_PAID")  # INFERRED status (400), see ERRORS
        order.state = "CLOSED"

    def _refund(self, body: dict[str, typing.Any]) -> dict[str, typing.Any]:
        """§3 Refund."""
        out_refund_no = body.get("out_refund_no")
        if not isinstance(out_refund_no, str) or not OUT_REFUND_NO.fullmatch(out_refund_no):
            raise Refusal("PARAM_ERROR", "out_refund_no只能由1到64位数字、大小写字母、_-|*@组成")
        amount = body.get("amount")
        if not isinstance(amount, dict) or not all(_whole(amount.get(n)) for n in ("refund", "total")):
            raise Refusal("PARAM_ERROR", "amount.refund与amount.total为必填的整数")
        if amount.get("currency") != "CNY":  # INFERRED code (required field, only CNY)
            raise Refusal("PARAM_ERROR", "amount.currency必填且只支持CNY")
        if "notify_url" in body:
            problem = _notify_url_error(body["notify_url"])
            if problem:
                raise Refusal("PARAM_ERROR", problem)
        reason = body.get("reason", "")
        if not isinstance(reason, str) or len(reason) > 80:
            raise Refusal("PARAM_ERROR", "reason长度超过80")
        if body.get("funds_account", "AVAILABLE") != "AVAILABLE":
            raise Refusal("PARAM_ERROR", "funds_account只支持AVAILABLE")
        order = self._paid_order(body)
        if amount["refund"] < 1:
            raise Refusal("PARAM_ERROR", "退款金额必须大于0")
        if amount["total"] != order.total:  # INFERRED code
            raise Refusal("PARAM_ERROR", "amount.total与原订单金额不一致")
        refund = self.refunds.get(out_refund_no)
        if refund is not None:
            # §3: the same out_refund_no refunds only once; resent, it answers about that refund.
            if refund.order is not order or refund.refund != amount["refund"]:
                raise Refusal("INVALID_REQUEST", REENTRY_MISMATCH)
            return self.refund_json(out_refund_no)
        mine = [r for r in self.refunds.values() if r.order is order]
        if sum(r.refund for r in mine if r.status != "CLOSED") + amount["refund"] > order.total:
            raise Refusal(OVER_REFUND[1], OVER_REFUND[2], status=OVER_REFUND[0])
        if len(mine) >= MAX_REFUNDS:
            raise Refusal(TOO_MANY_REFUNDS[1], TOO_MANY_REFUNDS[2], status=TOO_MANY_REFUNDS[0])
        now = self.now()
        if any(now - r.created_at < REFUND_INTERVAL for r in mine):
            raise Refusal(REFUND_TOO_SOON[1], REFUND_TOO_SOON[2], status=REFUND_TOO_SOON[0])
        refund_id = "50" + now.strftime("%Y%m%d") + _digits(19)
        self.refunds[out_refund_no] = Refund(out_refund_no, order, amount["refund"], refund_id,
                                             body.get("notify_url", ""), now, body)
        self.refunds_made.append(out_refund_no)
        # §3 trade_state: REFUND (转入退款) once a refund was made.
        order.state = "REFUND"
        return self.refund_json(out_refund_no)

    def _paid_order(self, body: dict[str, typing.Any]) -> Order:
        if "transaction_id" not in body and "out_trade_no" not in body:
            raise Refusal("PARAM_ERROR", "transaction_id和out_trade_no必须二选一")
        by_id = next((o for o in self.orders.values()
                      if o.transaction_id and o.transaction_id == body.get("transaction_id")), None)
        by_no = self.orders.get(body.get("out_trade_no", ""))
        if "transaction_id" in body and "out_trade_no" in body and by_id is not by_no:
            raise Refusal("PARAM_ERROR", "transaction_id与out_trade_no不是同一笔订单")
        order = by_id if "transaction_id" in body else by_no
        if order is None or order.state not in PAID:
            raise Refusal("RESOURCE_NOT_EXISTS", "订单不存在")
        return order

    def _certificates_json(self) -> dict[str, typing.Any]:
        """§5: the platform certificates (the signing one and any rotated out), each encrypted under the APIv3
        key (associated_data "certificate")."""
        data = []
        for cert in [self.platform_cert, *(c for _, c in reversed(self.retired))]:
            nonce = _nonce(12).lower()
            pem = cert.public_bytes(serialization.Encoding.PEM)
            data.append({
                "serial_no": format(cert.serial_number, "X"),
                "effective_time": _beijing_rfc3339(cert.not_valid_before_utc),
                "expire_time": _beijing_rfc3339(cert.not_valid_after_utc),
                "encrypt_certificate": {"algorithm": "AEAD_AES_256_GCM", "associated_data": "certificate",
                                        "nonce": nonce,
                                        "ciphertext": aes_gcm_encrypt(self.api_v3_key, nonce, "certificate", pem)},
            })
        return {"data": data}

    # -- what the payer and WeChat do ----------------------------------------------------------------------

    def pay(self, out_trade_no: str) -> Order:
        """The payer confirms the payment in WeChat (no notification is sent by this alone)."""
        order = self.orders[out_trade_no]
        assert order.state == "NOTPAY", order.state
        if "time_expire" in order.params:
            assert self.now() < dt.datetime.fromisoformat(order.params["time_expire"]), "past time_expire"
        order.state = "SUCCESS"
        order.transaction_id = "4200" + self.now().strftime("%Y%m%d") + _digits(16)
        order.success_time = _beijing_rfc3339(self.now())
        return order

    def transaction(self, out_trade_no: str, *, at_payment: bool = False) -> dict[str, typing.Any]:
        """The Transaction JSON of §3 Query, only the keys that have values (as for NOTPAY orders). With
        `at_payment`, as it was when paid (trade_state SUCCESS even if refunded since: the notification's)."""
        order = self.orders[out_trade_no]
        state = "SUCCESS" if at_payment and order.state in PAID else order.state
        paid = order.state in PAID
        data: dict[str, typing.Any] = {"mchid": self.mchid, "appid": self.appid, "out_trade_no": out_trade_no}
        if paid:
            data.update(transaction_id=order.transaction_id, trade_type="JSAPI")
        data.update(trade_state=state, trade_state_desc=TRADE_STATE_DESC[state])
        if paid:
            data["bank_type"] = "OTHERS"
        if "attach" in order.params:
            data["attach"] = order.params["attach"]
        if paid:
            data.update(success_time=order.success_time, payer={"openid": order.openid},
                        amount={"total": order.total, "payer_total": order.total, "currency": "CNY",
                                "payer_currency": "CNY"})
        else:
            data["amount"] = {"total": order.total, "currency": "CNY", "payer_currency": "CNY"}
        return data

    def _envelope(self, event_type: str, summary: str, original_type: str, resource: dict[str, typing.Any],
                  api_v3_key: str | None) -> bytes:
        """§4's envelope, the resource sealed with AES-256-GCM (associated_data = original_type)."""
        nonce = _nonce(12).lower()
        return _dump({
            "id": str(uuid.uuid4()), "create_time": _beijing_rfc3339(self.now()),
            "resource_type": "encrypt-resource", "event_type": event_type, "summary": summary,
            "resource": {"original_type": original_type, "algorithm": "AEAD_AES_256_GCM",
                         "ciphertext": aes_gcm_encrypt(api_v3_key or self.api_v3_key, nonce, original_type,
                                                       _dump(resource)),
                         "associated_data": original_type, "nonce": nonce},
        })

    def _notification_headers(self, body: bytes, serial: str | None, timestamp: int | None, signature: str | None,
                              signing_key: rsa.RSAPrivateKey | None) -> dict[str, str]:
        headers = self.wechatpay_headers(serial or self._notification_serial(), body, timestamp=timestamp,
                                         signature=signature, signing_key=signing_key)
        headers.update({"Content-Type": "application/json", "User-Agent": "Mozilla/4.0"})
        return headers

    def notification(self, out_trade_no: str, /, *, event_type: str = "TRANSACTION.SUCCESS",
                     serial: str | None = None, timestamp: int | None = None, signature: str | None = None,
                     api_v3_key: str | None = None, signing_key: rsa.RSAPrivateKey | None = None,
                     **resource_overrides: typing.Any) -> tuple[dict[str, str], bytes]:
        """The headers and exact body of a payment notification (§4): the resource is `transaction(...)` as at
        payment with the overrides merged (None removes a key). `serial` picks the key (public key id or platform
        serial; in MIXED mode they alternate by default), `signature` replaces the computed one (e.g. a
        "WECHATPAY/SIGNTEST/…" probe), `timestamp` the time, `api_v3_key` seals with another key, `signing_key`
        signs with another RSA key."""
        resource = {**self.transaction(out_trade_no, at_payment=True), **resource_overrides}
        resource = {k: v for k, v in resource.items() if v is not None}
        summary = "支付成功" if event_type == "TRANSACTION.SUCCESS" else event_type
        body = self._envelope(event_type, summary, "transaction", resource, api_v3_key)
        return self._notification_headers(body, serial, timestamp, signature, signing_key), body

    async def _post(self, client: typing.Any, url: str, headers_body: tuple[dict[str, str], bytes]) -> tuple[int, str]:
        headers, body = headers_body
        resp = await client.post(urlsplit(url).path, data=body, headers=headers)
        return resp.status, await resp.text()

    async def notify(self, client: typing.Any, out_trade_no: str,
                     headers_body: tuple[dict[str, str], bytes] | None = None) -> tuple[int, str]:
        """POST the notification (the given one, or a fresh one) to the order's notify_url path on the test
        server (`client` is an aiohttp test client). The HTTP status and the answer's text."""
        order = self.orders[out_trade_no]
        return await self._post(client, order.notify_url, headers_body or self.notification(out_trade_no))

    async def deliver(self, client: typing.Any, path: str, headers_body: tuple[dict[str, str], bytes]) -> list[int]:
        """WeChat's delivery (§4): post; on an answer other than 200/204 wait (this clock) the next interval of
        15s/15s/30s/3m/10m/20m/30m/30m/30m/60m/3h/3h/3h/6h/6h and post again, re-signed at that time. The
        statuses of all attempts; at most 16."""
        headers, body = headers_body
        statuses: list[int] = []
        for attempt in range(len(RETRY_SCHEDULE) + 1):
            if attempt:
                self.offset += RETRY_SCHEDULE[attempt - 1]
                headers = self.resign(headers, body)
            resp = await client.post(path, data=body, headers=headers)
            await resp.read()
            statuses.append(resp.status)
            if resp.status in (200, 204):
                break
        return statuses

    def settle_refund(self, out_refund_no: str, status: str = "SUCCESS") -> Refund:
        """The refund reaches SUCCESS, CLOSED or ABNORMAL at WeChat (nothing is posted by this alone)."""
        if status not in ("SUCCESS", "CLOSED", "ABNORMAL"):
            raise ValueError(f"unknown refund status {status!r}")
        refund = self.refunds[out_refund_no]
        # §9: PROCESSING → SUCCESS/ABNORMAL/CLOSED (an ABNORMAL one can still be settled, §3).
        assert refund.status in ("PROCESSING", "ABNORMAL"), refund.status
        refund.status = status
        if status == "SUCCESS":
            refund.success_time = _beijing_rfc3339(self.now())
        return refund

    def refund_json(self, out_refund_no: str) -> dict[str, typing.Any]:
        """The Refund JSON of §3 (refund answer and query)."""
        refund = self.refunds[out_refund_no]
        order = refund.order
        data: dict[str, typing.Any] = {
            "refund_id": refund.refund_id, "out_refund_no": out_refund_no, "transaction_id": order.transaction_id,
            "out_trade_no": order.out_trade_no, "channel": "ORIGINAL", "user_received_account": "支付用户零钱"}
        if refund.status == "SUCCESS":
            data["success_time"] = refund.success_time
        data.update({
            "create_time": _beijing_rfc3339(refund.created_at), "status": refund.status, "funds_account": "AVAILABLE",
            "amount": {"total": order.total, "refund": refund.refund, "payer_total": order.total,
                       "payer_refund": refund.refund, "settlement_refund": refund.refund,
                       "settlement_total": order.total, "discount_refund": 0, "currency": "CNY", "refund_fee": 0}})
        return data

    def refund_notification(self, out_refund_no: str, /, *, event_type: str | None = None, serial: str | None = None,
                            timestamp: int | None = None, signature: str | None = None, api_v3_key: str | None = None,
                            signing_key: rsa.RSAPrivateKey | None = None,
                            **resource_overrides: typing.Any) -> tuple[dict[str, str], bytes]:
        """A refund notification (§4): event REFUND.<status>, the resource's field set of §4 (refund_status, not
        status), with the same knobs as `notification`."""
        refund = self.refunds[out_refund_no]
        order = refund.order
        resource: dict[str, typing.Any] = {
            "mchid": self.mchid, "transaction_id": order.transaction_id, "out_trade_no": order.out_trade_no,
            "refund_id": refund.refund_id, "out_refund_no": out_refund_no, "refund_status": refund.status}
        if refund.status == "SUCCESS":
            resource["success_time"] = refund.success_time
        resource.update({"user_received_account": "支付用户零钱",
                         "amount": {"total": order.total, "refund": refund.refund, "payer_total": order.total,
                                    "payer_refund": refund.refund}})
        resource = {k: v for k, v in {**resource, **resource_overrides}.items() if v is not None}
        event_type = event_type or "REFUND." + refund.status
        summary = REFUND_SUMMARY.get(event_type.removeprefix("REFUND."), event_type)
        body = self._envelope(event_type, summary, "refund", resource, api_v3_key)
        return self._notification_headers(body, serial, timestamp, signature, signing_key), body

    async def notify_refund(self, client: typing.Any, out_refund_no: str,
                            headers_body: tuple[dict[str, str], bytes] | None = None) -> tuple[int, str]:
        """POST the refund notification to the refund's notify_url path on the test server."""
        refund = self.refunds[out_refund_no]
        assert refund.notify_url, "the refund was asked without a notify_url"
        return await self._post(client, refund.notify_url, headers_body or self.refund_notification(out_refund_no))


async def serve(aiohttp_server: typing.Any, fake: FakeWeChatPayV3, pki: typing.Any = None) -> FakeWeChatPayV3:
    """Start the fake on 127.0.0.1 and set its `base_url` (for `wechatpay_api_url`); with a test `pki`
    (fakes/pki.py) over TLS with its server certificate."""
    server = await aiohttp_server(fake.make_app(), ssl=pki.server_context() if pki is not None else None)
    fake.base_url = str(server.make_url("")).rstrip("/")
    return fake


def settings_for(fake: FakeWeChatPayV3, **overrides: typing.Any) -> dict[str, typing.Any]:
    """Settings of an app that pays through the fake with API v3 (the notify URL's path is the real endpoint)."""
    settings: dict[str, typing.Any] = {
        "wechatpay_mch_id": fake.mchid,
        "wechatpay_apiv3_key": fake.api_v3_key,
        "wechatpay_api_url": fake.base_url,
        "wechatpay_cert_path": str(fake.merchant_cert_path),
        "wechatpay_key_path": str(fake.merchant_key_path),
    }
    if fake.mode in (PUBLIC_KEY, MIXED):
        settings["wechatpay_public_key_path"] = str(fake.public_key_path)
        settings["wechatpay_public_key_id"] = fake.public_key_id
    if fake.mode in (CERTIFICATE, MIXED):
        settings["wechatpay_platform_cert_paths"] = (str(fake.platform_cert_path),)
    settings["wechatpay_notify_url"] = "https://club.example.com/api/v1/pay/notify"
    return {**settings, **overrides}
