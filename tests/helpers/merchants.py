"""One WeChat Pay merchant, on API v2 or v3, as the payment tests see it: the same operations over either fake
(tests/fakes/wechatpay.py, tests/fakes/wechatpay_v3.py), so that one test runs against both (the `merchant`
fixture in conftest.py is parametrised over VERSIONS).

Names are neutral: operations are PREPAY, QUERY, CLOSE, REFUND, REFUND_QUERY; failure modes are v2's err_codes
(mapped to v3's codes, V3_MODES) or HTTP_500 / BAD_SIGN; refund outcomes are SUCCESS, CLOSED, CHANGE (v3's
ABNORMAL); what was sent comes back as `Sent` records in fen and datetimes. A notification is a payload the
merchant posts as it is (v2: the XML bytes; v3: headers and body).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import secrets
import time
import typing
from pathlib import Path
from zoneinfo import ZoneInfo

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from wechatpy.pay.utils import calculate_signature, calculate_signature_hmac

from tests.fakes import wechatpay as fake_v2
from tests.fakes import wechatpay_v3 as fake_v3
from tests.fakes.pki import PKI, make_pki

VERSIONS = ("v2", "v3")
PREPAY, QUERY, CLOSE, REFUND, REFUND_QUERY = "prepay", "query", "close", "refund", "refund_query"
HTTP_500, BAD_SIGN = "HTTP_500", "BAD_SIGN"
SUCCESS, CLOSED, CHANGE = "SUCCESS", "CLOSED", "CHANGE"
BEIJING = ZoneInfo("Asia/Shanghai")
# v2's err_codes the tests use, as v3 says them (§6 of the v3 reference).
V3_MODES = {
    "SYSTEMERROR": "SYSTEM_ERROR", "ORDERPAID": "ORDER_PAID", "ORDERCLOSED": "ORDER_CLOSED",
    "ORDERNOTEXIST": "ORDER_NOT_EXIST", "NOTENOUGH": "NOT_ENOUGH", "FREQUENCY_LIMITED": "FREQUENCY_LIMITED",
    "USER_ACCOUNT_ABNORMAL": "USER_ACCOUNT_ABNORMAL", "PARAM_ERROR": "PARAM_ERROR", "SIGNERROR": "SIGN_ERROR",
    HTTP_500: fake_v3.HTTP_500, BAD_SIGN: fake_v3.BAD_SIGN,
}
V3_REFUND_STATUS = {SUCCESS: "SUCCESS", CLOSED: "CLOSED", CHANGE: "ABNORMAL"}
V2_REFUND_STATUS = {SUCCESS: "SUCCESS", CLOSED: "REFUNDCLOSE", CHANGE: "CHANGE"}

Payload = typing.Any  # bytes (v2) or (headers, body) (v3)


@dataclasses.dataclass(frozen=True)
class Paid:
    transaction_id: str
    paid_at: dt.datetime


@dataclasses.dataclass(frozen=True)
class Sent:
    """A call the server made, in neutral terms (fen, datetimes); absent fields are None."""

    out_trade_no: str | None = None
    out_refund_no: str | None = None
    total: int | None = None
    refund: int | None = None
    openid: str | None = None
    notify_url: str | None = None
    description: str | None = None
    reason: str | None = None
    time_expire: dt.datetime | None = None


class Merchant(typing.Protocol):
    version: str
    appid: str
    mch_id: str
    refunds_made: list[str]

    def settings(self, **overrides: typing.Any) -> dict[str, typing.Any]: ...
    def pay(self, out_trade_no: str) -> Paid: ...
    def state(self, out_trade_no: str) -> str: ...
    def prepay_id(self, out_trade_no: str) -> str: ...
    def notification(self, out_trade_no: str, *, total: int | None = None, transaction_id: str | None = None,
                     out_trade_no_given: str | None = None, appid: str | None = None, mch_id: str | None = None,
                     forged: bool = False) -> Payload: ...
    async def notify(self, client: typing.Any, out_trade_no: str, payload: Payload = None) -> tuple[int, bool]: ...
    def count(self, op: str) -> int: ...
    def fail(self, op: str, mode: str, times: int = 1) -> None: ...
    def hold(self, op: str, *, after: bool = False) -> typing.Any: ...
    def sent(self, op: str) -> list[Sent]: ...
    def calls_made(self) -> int: ...
    def client_ips(self) -> list[str | None]: ...
    def advance(self, minutes: float) -> None: ...
    def settle_refund(self, out_refund_no: str, status: str = SUCCESS) -> None: ...
    def refund_id(self, out_refund_no: str) -> str: ...
    def refund_notification(self, out_refund_no: str, *, refund: int | None = None,
                            out_trade_no: str | None = None, out_refund_no_given: str | None = None,
                            forged: bool = False) -> Payload: ...
    async def notify_refund(self, client: typing.Any, out_refund_no: str, payload: Payload = None
                            ) -> tuple[int, bool]: ...

    # Notifications WeChat would not send as they are, and what the server keeps of one (tests/test_pay.py).
    def odd_notification(self, out_trade_no: str, *, without: tuple[str, ...] = (), total: typing.Any = None,
                         currency: str | None = None, transaction_id: str | None = None,
                         failed: bool = False) -> Payload: ...
    def altered(self, out_trade_no: str) -> Payload: ...
    def unsigned(self, out_trade_no: str) -> Payload: ...
    def kept_raw(self, payload: Payload) -> bytes: ...
    def check_pay_sign(self, params: typing.Mapping[str, str]) -> None: ...
    def fail_as(self, op: str, codes: typing.Mapping[str, str], times: int = 1) -> None: ...


def _v2_time(value: str | None) -> dt.datetime | None:
    return dt.datetime.strptime(value, "%Y%m%d%H%M%S").replace(tzinfo=BEIJING) if value else None


def _int(value: typing.Any) -> int | None:
    return int(value) if value not in (None, "") else None


class _Fake:
    """What both merchants read of their fake the same way: its orders, refunds and calls by operation."""

    OPS: typing.ClassVar[dict[str, str]]
    fake: typing.Any

    def __init__(self, fake: typing.Any, pki: PKI, mch_id: str) -> None:
        self.fake = fake
        self.pki = pki
        self.appid = fake.appid
        self.mch_id = mch_id

    @property
    def refunds_made(self) -> list[str]:
        return self.fake.refunds_made

    def state(self, out_trade_no: str) -> str:
        return self.fake.orders[out_trade_no].state

    def prepay_id(self, out_trade_no: str) -> str:
        return self.fake.orders[out_trade_no].prepay_id

    def count(self, op: str) -> int:
        return self.fake.count(self.OPS[op])

    def hold(self, op: str, *, after: bool = False) -> typing.Any:
        return self.fake.hold(self.OPS[op], after=after)

    def calls_made(self) -> int:
        """Every call that reached the fake, whatever its operation."""
        return len(self.fake.calls)

    def refund_id(self, out_refund_no: str) -> str:
        return self.fake.refunds[out_refund_no].refund_id


class V2Merchant(_Fake):
    """API v2 (fakes/wechatpay.py), over TLS with the test CA, the merchant's client certificate configured."""

    version = "v2"
    OPS = {PREPAY: fake_v2.UNIFIED_ORDER, QUERY: fake_v2.ORDER_QUERY, CLOSE: fake_v2.CLOSE_ORDER,
           REFUND: fake_v2.REFUND, REFUND_QUERY: fake_v2.REFUND_QUERY}

    def __init__(self, fake: fake_v2.FakeWeChatPay, pki: PKI) -> None:
        super().__init__(fake, pki, fake.mch_id)

    def settings(self, **overrides: typing.Any) -> dict[str, typing.Any]:
        return fake_v2.settings_with_certificate(self.fake, self.pki, **overrides)

    def pay(self, out_trade_no: str) -> Paid:
        order = self.fake.pay(out_trade_no)
        paid_at = _v2_time(order.time_end)
        assert paid_at is not None
        return Paid(order.transaction_id, paid_at)

    def notification(self, out_trade_no: str, *, total: int | None = None, transaction_id: str | None = None,
                     out_trade_no_given: str | None = None, appid: str | None = None, mch_id: str | None = None,
                     forged: bool = False) -> Payload:
        overrides: dict[str, str] = {}
        if total is not None:
            overrides.update(total_fee=str(total), cash_fee=str(total))
        for name, value in (("transaction_id", transaction_id), ("out_trade_no", out_trade_no_given),
                            ("appid", appid), ("mch_id", mch_id)):
            if value is not None:
                overrides[name] = value
        key = "another merchant's api key 1234" if forged else None
        return self.fake.notification(out_trade_no, key=key, **overrides)

    async def notify(self, client: typing.Any, out_trade_no: str, payload: Payload = None) -> tuple[int, bool]:
        status, answer = await self.fake.notify(client, out_trade_no, payload)
        # v2 answers every notification 200; its body says whether it was taken.
        assert status == 200 and answer["return_code"] in ("SUCCESS", "FAIL"), (status, answer)
        return status, answer["return_code"] == "SUCCESS"

    def fail(self, op: str, mode: str, times: int = 1) -> None:
        self.fake.fail(self.OPS[op], {HTTP_500: fake_v2.HTTP_500, BAD_SIGN: fake_v2.BAD_SIGN}.get(mode, mode), times)

    def sent(self, op: str) -> list[Sent]:
        return [Sent(
            out_trade_no=p.get("out_trade_no"), out_refund_no=p.get("out_refund_no"), total=_int(p.get("total_fee")),
            refund=_int(p.get("refund_fee")), openid=p.get("openid"), notify_url=p.get("notify_url"),
            description=p.get("body"), reason=p.get("refund_desc"), time_expire=_v2_time(p.get("time_expire")),
        ) for path, p in self.fake.calls if path == self.OPS[op]]

    def client_ips(self) -> list[str | None]:
        """The payer's IP each prepay gave (spbill_create_ip)."""
        return [p.get("spbill_create_ip") for path, p in self.fake.calls if path == self.OPS[PREPAY]]

    def advance(self, minutes: float) -> None:
        self.fake.advance(minutes)

    def settle_refund(self, out_refund_no: str, status: str = SUCCESS) -> None:
        self.fake.settle_refund(out_refund_no, V2_REFUND_STATUS[status])

    def refund_notification(self, out_refund_no: str, *, refund: int | None = None,
                            out_trade_no: str | None = None, out_refund_no_given: str | None = None,
                            forged: bool = False) -> Payload:
        overrides: dict[str, str] = {}
        if refund is not None:
            overrides["refund_fee"] = str(refund)
        if out_trade_no is not None:
            overrides["out_trade_no"] = out_trade_no
        if out_refund_no_given is not None:
            overrides["out_refund_no"] = out_refund_no_given
        key = "another merchant's api key 123456" if forged else None
        return self.fake.refund_notification(out_refund_no, key=key, **overrides)

    async def notify_refund(self, client: typing.Any, out_refund_no: str, payload: Payload = None
                            ) -> tuple[int, bool]:
        status, answer = await self.fake.notify_refund(client, out_refund_no, payload)
        assert status == 200 and answer["return_code"] in ("SUCCESS", "FAIL"), (status, answer)
        return status, answer["return_code"] == "SUCCESS"

    # -- added for tests/test_pay.py ------------------------------------------------------------------

    def odd_notification(self, out_trade_no: str, *, without: tuple[str, ...] = (), total: typing.Any = None,
                         currency: str | None = None, transaction_id: str | None = None,
                         failed: bool = False) -> Payload:
        """A signed notification WeChat would not send: `without` leaves out "transaction_id" / "currency"
        (fee_type), `total` is any value (its text), `currency` another one, `failed` a payment that did not
        succeed (result_code FAIL, err_code NOTENOUGH)."""
        overrides: dict[str, str | None] = {}
        if total is not None:
            overrides.update(total_fee=str(total), cash_fee=str(total))
        if currency is not None:
            overrides["fee_type"] = currency
        if transaction_id is not None:
            overrides["transaction_id"] = transaction_id
        for name in without:
            overrides[{"transaction_id": "transaction_id", "currency": "fee_type"}[name]] = None
        if failed:
            overrides.update(result_code="FAIL", err_code="NOTENOUGH")
        return self.fake.notification(out_trade_no, **overrides)

    def altered(self, out_trade_no: str) -> Payload:
        """A genuine notification whose amount was changed to 1 fen after it was signed."""
        genuine = self.fake.notification(out_trade_no).decode()
        total = self.fake.orders[out_trade_no].params["total_fee"]
        altered = genuine.replace(f"<total_fee>{total}</total_fee>", "<total_fee>1</total_fee>")
        assert altered != genuine
        return altered.encode()

    def unsigned(self, out_trade_no: str) -> Payload:
        """A genuine notification without its signature."""
        genuine = self.fake.notification(out_trade_no).decode()
        return (genuine[: genuine.index("<sign>")] + "</xml>").encode()

    def kept_raw(self, payload: Payload) -> bytes:
        """What the server keeps of a notification it read: the body as posted."""
        return bytes(payload)

    def check_pay_sign(self, params: typing.Mapping[str, str]) -> None:
        """The JSAPI parameters' paySign is the v2 signature (MD5 or HMAC-SHA256, as signType says) with the key."""
        signed = {k: params[k] for k in ("appId", "timeStamp", "nonceStr", "package", "signType")}
        calculate = {"MD5": calculate_signature, "HMAC-SHA256": calculate_signature_hmac}[params["signType"]]
        assert params["paySign"] == calculate(signed, self.fake.key), params

    def fail_as(self, op: str, codes: typing.Mapping[str, str], times: int = 1) -> None:
        """Fail with the error code given for this version ({"v2": ..., "v3": ...}): codes V3_MODES does not map."""
        self.fake.fail(self.OPS[op], codes[self.version], times)


class V3Merchant(_Fake):
    """API v3 (fakes/wechatpay_v3.py) in public-key mode, over TLS with the test CA.

    The fake's clock moves with `advance` (refund intervals, prepay lifetimes); the server's does not. So the
    fake's check of our requests' timestamps is off once it moved more than a minute ahead (test_pay_v3.py and
    test_fake_wechatpay_v3.py hold that check), and the notifications it posts carry the real time, which the
    server checks against its own clock.
    """

    version = "v3"
    OPS = {PREPAY: fake_v3.PREPAY, QUERY: fake_v3.QUERY_PREFIX, CLOSE: fake_v3.CLOSE_SUFFIX, REFUND: fake_v3.REFUNDS,
           REFUND_QUERY: fake_v3.REFUND_QUERY}

    def __init__(self, fake: fake_v3.FakeWeChatPayV3, pki: PKI) -> None:
        super().__init__(fake, pki, fake.mchid)
        self._stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    def settings(self, **overrides: typing.Any) -> dict[str, typing.Any]:
        return fake_v3.settings_for(self.fake, wechatpay_ca_file=str(self.pki.ca), **overrides)

    def pay(self, out_trade_no: str) -> Paid:
        order = self.fake.pay(out_trade_no)
        return Paid(order.transaction_id, dt.datetime.fromisoformat(order.success_time))

    def notification(self, out_trade_no: str, *, total: int | None = None, transaction_id: str | None = None,
                     out_trade_no_given: str | None = None, appid: str | None = None, mch_id: str | None = None,
                     forged: bool = False) -> Payload:
        overrides: dict[str, typing.Any] = {}
        if total is not None:
            overrides["amount"] = {"total": total, "payer_total": total, "currency": "CNY", "payer_currency": "CNY"}
        for name, value in (("transaction_id", transaction_id), ("out_trade_no", out_trade_no_given),
                            ("appid", appid), ("mchid", mch_id)):
            if value is not None:
                overrides[name] = value
        return self.fake.notification(out_trade_no, timestamp=int(time.time()),
                                      signing_key=self._stranger if forged else None, **overrides)

    async def notify(self, client: typing.Any, out_trade_no: str, payload: Payload = None) -> tuple[int, bool]:
        status, text = await self.fake.notify(client, out_trade_no, payload or self.notification(out_trade_no))
        return status, _v3_taken(status, text)

    def fail(self, op: str, mode: str, times: int = 1) -> None:
        if mode not in V3_MODES:
            raise ValueError(f"{mode} has no API v3 counterpart: a v2-only test")
        self.fake.fail(self.OPS[op], V3_MODES[mode], times)

    def sent(self, op: str) -> list[Sent]:
        records = []
        for method, path, body in self.fake.calls:
            if fake_v3.call_key(method, path) != self.OPS[op]:
                continue
            amount = body.get("amount") or {}
            expire = body.get("time_expire")
            out_trade_no = body.get("out_trade_no")
            if op in (QUERY, CLOSE):
                out_trade_no = path[len(fake_v3.QUERY_PREFIX):].split("/")[0]
            out_refund_no = path.rsplit("/", 1)[1] if op == REFUND_QUERY else body.get("out_refund_no")
            records.append(Sent(
                out_trade_no=out_trade_no, out_refund_no=out_refund_no,
                total=amount.get("total"), refund=amount.get("refund"),
                openid=(body.get("payer") or {}).get("openid"), notify_url=body.get("notify_url"),
                description=body.get("description"), reason=body.get("reason"),
                time_expire=dt.datetime.fromisoformat(expire) if expire else None,
            ))
        return records

    def client_ips(self) -> list[str | None]:
        """The payer's IP each prepay gave (scene_info.payer_client_ip)."""
        return [(body.get("scene_info") or {}).get("payer_client_ip") for method, path, body in self.fake.calls
                if fake_v3.call_key(method, path) == self.OPS[PREPAY]]

    def advance(self, minutes: float) -> None:
        self.fake.advance(minutes)
        if self.fake.offset > dt.timedelta(minutes=1):
            self.fake.window = None
        # The minutes pass for both sides (the tests move the server's times back), so the fake's answers stay
        # signed on the server's clock, the real one: it refuses a signature 5 minutes away from its own.
        self.fake.real_time_signatures = True

    def settle_refund(self, out_refund_no: str, status: str = SUCCESS) -> None:
        self.fake.settle_refund(out_refund_no, V3_REFUND_STATUS[status])

    def refund_notification(self, out_refund_no: str, *, refund: int | None = None,
                            out_trade_no: str | None = None, out_refund_no_given: str | None = None,
                            forged: bool = False) -> Payload:
        overrides: dict[str, typing.Any] = {}
        if refund is not None:
            total = self.fake.refunds[out_refund_no].order.total
            overrides["amount"] = {"total": total, "refund": refund, "payer_total": total, "payer_refund": refund}
        if out_trade_no is not None:
            overrides["out_trade_no"] = out_trade_no
        if out_refund_no_given is not None:
            overrides["out_refund_no"] = out_refund_no_given
        return self.fake.refund_notification(out_refund_no, timestamp=int(time.time()),
                                             signing_key=self._stranger if forged else None, **overrides)

    async def notify_refund(self, client: typing.Any, out_refund_no: str, payload: Payload = None
                            ) -> tuple[int, bool]:
        status, text = await self.fake.notify_refund(client, out_refund_no,
                                                     payload or self.refund_notification(out_refund_no))
        return status, _v3_taken(status, text)

    # -- added for tests/test_pay.py ------------------------------------------------------------------

    def odd_notification(self, out_trade_no: str, *, without: tuple[str, ...] = (), total: typing.Any = None,
                         currency: str | None = None, transaction_id: str | None = None,
                         failed: bool = False) -> Payload:
        """A signed, encrypted notification WeChat would not send: `without` leaves out "transaction_id" /
        "currency" (amount.currency), `total` is any JSON value, `currency` another one, `failed` a payment
        that did not succeed (trade_state PAYERROR)."""
        amount = dict(self.fake.transaction(out_trade_no, at_payment=True)["amount"])
        if total is not None:
            amount.update(total=total, payer_total=total)
        if currency is not None:
            amount["currency"] = currency
        overrides: dict[str, typing.Any] = {"amount": amount}
        if transaction_id is not None:
            overrides["transaction_id"] = transaction_id
        for name in without:
            if name == "currency":
                del amount["currency"]
            else:
                overrides[{"transaction_id": "transaction_id"}[name]] = None
        if failed:
            overrides.update(trade_state="PAYERROR", trade_state_desc="支付失败")
        return self.fake.notification(out_trade_no, timestamp=int(time.time()), **overrides)

    def altered(self, out_trade_no: str) -> Payload:
        """A genuine notification's signed headers over another body (the amount changed to 1 fen)."""
        headers, _ = self.notification(out_trade_no)
        _, body = self.notification(out_trade_no, total=1)
        return headers, body

    def unsigned(self, out_trade_no: str) -> Payload:
        """A genuine notification without its signature (no Wechatpay-Signature header)."""
        headers, body = self.notification(out_trade_no)
        return {k: v for k, v in headers.items() if k != "Wechatpay-Signature"}, body

    def kept_raw(self, payload: Payload) -> bytes:
        """What the server keeps of a notification it read: the decrypted resource."""
        resource = json.loads(payload[1])["resource"]
        return fake_v3.aes_gcm_decrypt(self.fake.api_v3_key, resource["nonce"], resource["associated_data"],
                                       resource["ciphertext"])

    def check_pay_sign(self, params: typing.Mapping[str, str]) -> None:
        """The JSAPI parameters' paySign is RSA (SHA256withRSA) over appId, timeStamp, nonceStr, package, checked
        with the merchant certificate's public key (as WeChat's client does)."""
        assert params["signType"] == "RSA", params
        cert = x509.load_pem_x509_certificate(self.fake.merchant_cert_path.read_bytes())
        message = f"{params['appId']}\n{params['timeStamp']}\n{params['nonceStr']}\n{params['package']}\n".encode()
        assert fake_v3.rsa_verify(cert.public_key(), message, params["paySign"]), params  # type: ignore[arg-type]

    def fail_as(self, op: str, codes: typing.Mapping[str, str], times: int = 1) -> None:
        """Fail with the error code given for this version ({"v2": ..., "v3": ...}): codes V3_MODES does not map."""
        self.fake.fail(self.OPS[op], codes[self.version], times)


def _v3_taken(status: int, text: str) -> bool:
    """v3 reads the status (§4): 204 taken; otherwise a 4xx/5xx whose body is the FAIL JSON."""
    if status == 204:
        assert text == "", text
        return True
    assert 400 <= status < 600 and json.loads(text) == {"code": "FAIL", "message": "失败"}, (status, text)
    return False


async def start(version: str, aiohttp_server: typing.Any, directory: Path) -> Merchant:
    """A fake merchant of `version`, served over TLS with a test CA of its own under `directory`."""
    base = directory / f"merchant-{version}-{secrets.token_hex(3)}"
    if version == "v2":
        fake2 = fake_v2.FakeWeChatPay()
        pki = make_pki(base / "pki", fake2.mch_id)
        return V2Merchant(await fake_v2.serve(aiohttp_server, fake2, pki), pki)
    fake3 = fake_v3.FakeWeChatPayV3(base / "keys")
    pki = make_pki(base / "pki", fake3.mchid)
    return V3Merchant(await fake_v3.serve(aiohttp_server, fake3, pki), pki)
