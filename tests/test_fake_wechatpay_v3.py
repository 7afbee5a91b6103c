"""The fake WeChat Pay API v3 server (tests/fakes/wechatpay_v3.py) enforces what wechatpay-v3.md §2/§3/§6/§9 say
it must, and signs and seals like WeChat: checked with a small signer and verifier of this file (plain
`cryptography`) and, for what one independent SDK does, with wechatpayv3 2.0.4."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import datetime as dt
import functools
import json
import secrets
import typing
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from cryptography import x509
from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from wechatpayv3 import WeChatPay, WeChatPayType
from yarl import URL

from tests.fakes.wechatpay_v3 import (
    BAD_SIGN,
    CERTIFICATE,
    CERTIFICATES,
    CLOSE_SUFFIX,
    HTTP_500,
    MIXED,
    PREPAY,
    PUBLIC_KEY,
    QUERY_PREFIX,
    REFUND_QUERY,
    REFUNDS,
    SIGNTEST,
    FakeWeChatPayV3,
    serve,
    settings_for,
)

NOTIFY_URL = "https://club.example.com/api/v1/pay/notify"
REFUND_NOTIFY_URL = "https://club.example.com/api/v1/pay/refund_notify"
OPENID = "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"


# -- a merchant's signer and a verifier of WeChat's signatures, written here ---------------------------

def rsa_sign(key: rsa.RSAPrivateKey, message: bytes) -> str:
    return base64.b64encode(key.sign(message, padding.PKCS1v15(), hashes.SHA256())).decode()


def verifies(key: typing.Any, message: bytes, signature: str) -> bool:
    try:
        key.verify(base64.b64decode(signature, validate=True), message, padding.PKCS1v15(), hashes.SHA256())
    except (ValueError, InvalidSignature):
        return False
    return True


@functools.cache
def _load_key(path: Path) -> rsa.RSAPrivateKey:
    key = serialization.load_pem_private_key(path.read_bytes(), None)
    assert isinstance(key, rsa.RSAPrivateKey)
    return key


def merchant_key(fake: FakeWeChatPayV3) -> rsa.RSAPrivateKey:
    """The merchant's key as the server reads it, from the PEM file (loaded once: loading checks the key, slowly)."""
    return _load_key(fake.merchant_key_path)


def public_key(fake: FakeWeChatPayV3) -> typing.Any:
    return serialization.load_pem_public_key(fake.public_key_path.read_bytes())


def platform_key(fake: FakeWeChatPayV3) -> typing.Any:
    return x509.load_pem_x509_certificate(fake.platform_cert_path.read_bytes()).public_key()


def authorization(fake: FakeWeChatPayV3, method: str, target: str, body: bytes, *, timestamp: int | None = None,
                  mchid: str | None = None, serial: str | None = None, key: rsa.RSAPrivateKey | None = None,
                  order: tuple[str, ...] = ("mchid", "nonce_str", "timestamp", "serial_no", "signature"),
                  separator: str = ",") -> str:
    """§2: `WECHATPAY2-SHA256-RSA2048 mchid="…",nonce_str="…",timestamp="…",serial_no="…",signature="…"`."""
    ts = str(fake.timestamp() if timestamp is None else timestamp)
    nonce = secrets.token_hex(16).upper()
    message = f"{method}\n{target}\n{ts}\n{nonce}\n".encode() + body + b"\n"
    items = {"mchid": mchid or fake.mchid, "nonce_str": nonce, "timestamp": ts,
             "serial_no": serial or fake.merchant_serial, "signature": rsa_sign(key or merchant_key(fake), message)}
    return "WECHATPAY2-SHA256-RSA2048 " + separator.join(f'{name}="{items[name]}"' for name in order)


@dataclasses.dataclass
class Answer:
    status: int
    headers: typing.Mapping[str, str]
    body: bytes

    def json(self) -> typing.Any:
        return json.loads(self.body)

    @property
    def code(self) -> str:
        return str(self.json()["code"])

    def signed_by(self, key: typing.Any) -> bool:
        """§2: the signature over `timestamp\\nnonce\\nbody\\n` (an empty body: `…\\n\\n`)."""
        message = f"{self.headers['Wechatpay-Timestamp']}\n{self.headers['Wechatpay-Nonce']}\n".encode() + \
            self.body + b"\n"
        return verifies(key, message, self.headers["Wechatpay-Signature"])


class Api:
    """The merchant's side: signed requests to the fake, each detail open to spoiling."""

    def __init__(self, session: aiohttp.ClientSession, fake: FakeWeChatPayV3) -> None:
        self.session = session
        self.fake = fake

    async def call(self, method: str, target: str, payload: typing.Any = None, *, body: bytes | None = None,
                   signed_body: bytes | None = None, signed_target: str | None = None,
                   headers: typing.Mapping[str, str] | None = None, omit: tuple[str, ...] = (),
                   **auth: typing.Any) -> Answer:
        if body is None:
            body = b"" if payload is None else json.dumps(payload).encode()
        sent = {"Accept": "application/json", "User-Agent": "jiandong-test/1.0",
                "Authorization": authorization(self.fake, method, signed_target or target,
                                               body if signed_body is None else signed_body, **auth)}
        if method == "POST":
            sent["Content-Type"] = "application/json"
        sent.update(headers or {})
        for name in omit:
            sent.pop(name, None)
        async with self.session.request(method, URL(self.fake.base_url + target, encoded=True), data=body or None,
                                        headers=sent) as resp:
            return Answer(resp.status, resp.headers, await resp.read())

    async def prepay(self, out_trade_no: str = "JD20260101000001", **changes: typing.Any) -> Answer:
        return await self.call("POST", PREPAY, prepay_body(self.fake, out_trade_no, **changes))

    async def query(self, out_trade_no: str) -> Answer:
        return await self.call("GET", f"{QUERY_PREFIX}{out_trade_no}?mchid={self.fake.mchid}")

    async def close(self, out_trade_no: str, payload: typing.Any = None) -> Answer:
        return await self.call("POST", f"{QUERY_PREFIX}{out_trade_no}{CLOSE_SUFFIX}",
                               payload or {"mchid": self.fake.mchid})

    async def refund(self, out_refund_no: str, refund: int, **changes: typing.Any) -> Answer:
        return await self.call("POST", REFUNDS, refund_body(out_refund_no, refund, **changes))


def prepay_body(fake: FakeWeChatPayV3, out_trade_no: str, **changes: typing.Any) -> dict[str, typing.Any]:
    """A JSAPI prepay body (§3); a change of `...` leaves the field out."""
    body = {"appid": fake.appid, "mchid": fake.mchid, "description": "简动篮球-周末训练营",
            "out_trade_no": out_trade_no, "notify_url": NOTIFY_URL, "amount": {"total": 19900, "currency": "CNY"},
            "payer": {"openid": OPENID},
            **changes}
    return {k: v for k, v in body.items() if v is not ...}


def refund_body(out_refund_no: str, refund: int, **changes: typing.Any) -> dict[str, typing.Any]:
    """A refund body of JD20260101000001 (§3); a change of `...` leaves the field out."""
    body = {"out_trade_no": "JD20260101000001", "out_refund_no": out_refund_no, "reason": "退出训练营",
            "notify_url": REFUND_NOTIFY_URL, "amount": {"refund": refund, "total": 19900, "currency": "CNY"},
            **changes}
    return {k: v for k, v in body.items() if v is not ...}


@pytest.fixture
async def make_fake(aiohttp_server: typing.Any,
                    tmp_path: Path) -> typing.Callable[..., typing.Awaitable[FakeWeChatPayV3]]:
    async def make(mode: str = PUBLIC_KEY) -> FakeWeChatPayV3:
        return await serve(aiohttp_server, FakeWeChatPayV3(tmp_path / f"wxpay-{mode}", mode=mode))

    return make


@pytest.fixture
async def fake(make_fake: typing.Any) -> FakeWeChatPayV3:
    return typing.cast(FakeWeChatPayV3, await make_fake())


@pytest.fixture
async def session() -> typing.AsyncIterator[aiohttp.ClientSession]:
    # No Accept or User-Agent of aiohttp's own: the tests decide which are sent.
    async with aiohttp.ClientSession(skip_auto_headers=("Accept", "User-Agent")) as session:
        yield session


@pytest.fixture
def api(session: aiohttp.ClientSession, fake: FakeWeChatPayV3) -> Api:
    return Api(session, fake)


async def paid_order(api: Api, out_trade_no: str = "JD20260101000001") -> None:
    assert (await api.prepay(out_trade_no)).status == 200
    api.fake.pay(out_trade_no)


def their_client(fake: FakeWeChatPayV3, cert_dir: Path | None = None) -> WeChatPay:
    """wechatpayv3 2.0.4 pointed at the fake: in public-key mode, or (with `cert_dir` holding the platform
    certificate, so that it downloads nothing at its start) in certificate mode."""
    keys: dict[str, typing.Any] = {}
    if cert_dir is None:
        keys = {"public_key": fake.public_key_path.read_text(), "public_key_id": fake.public_key_id}
    client = WeChatPay(wechatpay_type=WeChatPayType.JSAPI, mchid=fake.mchid,
                       private_key=fake.merchant_key_path.read_text(), cert_serial_no=fake.merchant_serial,
                       appid=fake.appid, apiv3_key=fake.api_v3_key, notify_url=NOTIFY_URL,
                       cert_dir=str(cert_dir) if cert_dir else None, proxy={"http": None, "https": None}, **keys)
    # §10.4: its gateway is a private attribute.
    client._core._gate_way = fake.base_url
    return client


# -- what wechatpayv3 signs passes, and what the fake signs passes wechatpayv3 ------------------------------

async def test_wechatpayv3_requests_pass_and_verify_the_answers_in_public_key_mode(fake: FakeWeChatPayV3):
    wx = their_client(fake)
    # Each 2xx answer is verified by wechatpayv3 itself (it raises on a bad signature).
    code, text = await asyncio.to_thread(wx.pay, description="简动篮球-周末训练营", out_trade_no="JD20260101000001",
                                         amount={"total": 19900}, payer={"openid": OPENID},
                                         time_expire=(fake.now() + dt.timedelta(minutes=30)).isoformat("T", "seconds"))
    assert code == 200 and json.loads(text)["prepay_id"].startswith("wx")
    code, text = await asyncio.to_thread(wx.query, out_trade_no="JD20260101000001")
    assert code == 200 and json.loads(text)["trade_state"] == "NOTPAY"
    fake.pay("JD20260101000001")
    code, text = await asyncio.to_thread(wx.refund, out_refund_no="RF1", out_trade_no="JD20260101000001",
                                         amount={"refund": 100, "total": 19900, "currency": "CNY"})
    assert code == 200 and json.loads(text)["status"] == "PROCESSING"
    code, text = await asyncio.to_thread(wx.query_refund, "RF1")
    assert code == 200 and json.loads(text)["out_refund_no"] == "RF1"
    code, _ = await asyncio.to_thread(wx.pay, description="x", out_trade_no="JD20260101000002",
                                      amount={"total": 1}, payer={"openid": OPENID})
    code, _ = await asyncio.to_thread(wx.close, "JD20260101000002")
    assert code == 204
    assert [method for method, _, _ in fake.calls] == ["POST", "GET", "POST", "GET", "POST", "POST"]
    # Its wrongly signed answers it refuses too, a probe as well.
    fake.fail(QUERY_PREFIX, BAD_SIGN)
    fake.fail(QUERY_PREFIX, SIGNTEST)
    for _ in range(2):
        with pytest.raises(Exception, match="failed to verify the signature"):
            await asyncio.to_thread(wx.query, out_trade_no="JD20260101000001")


async def test_wechatpayv3_in_certificate_mode_verifies_the_answers_and_downloads_the_certificate(
        make_fake: typing.Any, tmp_path: Path):
    fake = await make_fake(CERTIFICATE)
    certs = tmp_path / "certs"
    certs.mkdir()
    (certs / "platform.pem").write_bytes(fake.platform_cert_path.read_bytes())
    wx = their_client(fake, cert_dir=certs)
    code, _ = await asyncio.to_thread(wx.pay, description="x", out_trade_no="JD20260101000001",
                                      amount={"total": 1}, payer={"openid": OPENID})
    assert code == 200
    wx._core._certificates.clear()
    await asyncio.to_thread(wx._core._update_certificates)
    assert [c.serial_number for c in wx._core._certificates] == [fake.platform_cert.serial_number]


async def test_wechatpayv3_takes_the_fakes_notifications(make_fake: typing.Any, api: Api, tmp_path: Path):
    fake = api.fake
    await paid_order(api)
    headers, body = fake.notification("JD20260101000001")
    event = their_client(fake).callback(headers, body)  # public-key mode: offline (§8)
    assert event["event_type"] == "TRANSACTION.SUCCESS"
    assert event["resource"] == fake.transaction("JD20260101000001")
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    assert their_client(fake).callback(*fake.notification("JD20260101000001", signing_key=stranger)) is None
    # Certificate mode, with the certificate at hand (an unknown serial would make it go online).
    fake = await make_fake(CERTIFICATE)
    await paid_order(Api(api.session, fake))
    certs = tmp_path / "certs"
    certs.mkdir()
    (certs / "platform.pem").write_bytes(fake.platform_cert_path.read_bytes())
    event = their_client(fake, cert_dir=certs).callback(*fake.notification("JD20260101000001"))
    assert event["resource"] == fake.transaction("JD20260101000001")


# -- every request: headers, Authorization, body (§2) -------------------------------------------------------

async def test_a_signed_prepay_is_answered_with_a_signed_prepay_id(api: Api):
    answer = await api.prepay()
    assert answer.status == 200, answer.body
    assert answer.json()["prepay_id"].startswith("wx") and answer.signed_by(public_key(api.fake))
    assert answer.headers["Wechatpay-Serial"] == api.fake.public_key_id
    assert answer.headers["Wechatpay-Signature-Type"] == "WECHATPAY2-SHA256-RSA2048"
    assert answer.headers["Request-ID"]
    assert api.fake.calls == [("POST", PREPAY, prepay_body(api.fake, "JD20260101000001"))]
    assert api.fake.count(PREPAY) == 1 and api.fake.count(REFUNDS) == 0


async def test_authorization_items_in_any_order_pass_and_a_sloppy_header_does_not(api: Api):
    order = ("signature", "timestamp", "serial_no", "mchid", "nonce_str")
    assert (await api.call("POST", PREPAY, prepay_body(api.fake, "JD00000002"), order=order)).status == 200
    for spoil in ({"separator": ", "}, {"order": ("mchid", "nonce_str", "timestamp", "serial_no")},
                  {"order": ("mchid", "mchid", "nonce_str", "timestamp", "serial_no", "signature")}):
        answer = await api.call("POST", PREPAY, prepay_body(api.fake, "JD00000003"), **spoil)
        assert (answer.status, answer.code) == (401, "SIGN_ERROR"), spoil
    target = f"{QUERY_PREFIX}JD00000003?mchid={api.fake.mchid}"
    for header in ("", "Bearer x", 'WECHATPAY2-SHA256-RSA2048 mchid="1900000109"'):
        answer = await api.call("GET", target, headers={"Authorization": header})
        assert (answer.status, answer.code) == (401, "SIGN_ERROR"), header
    assert "JD00000003" not in api.fake.orders


async def test_a_signature_over_other_bytes_or_another_target_is_a_sign_error(api: Api):
    payload = prepay_body(api.fake, "JD20260101000001")
    # The same JSON serialised another way (compact) than the bytes signed (json.dumps' default).
    answer = await api.call("POST", PREPAY, body=json.dumps(payload, separators=(",", ":")).encode(),
                            signed_body=json.dumps(payload).encode())
    assert (answer.status, answer.code) == (401, "SIGN_ERROR")
    assert answer.json()["detail"]["sign_information"]["url"] == PREPAY
    # The query string left out of the signed URL line.
    answer = await api.call("GET", f"{QUERY_PREFIX}JD00000001?mchid={api.fake.mchid}",
                            signed_target=f"{QUERY_PREFIX}JD00000001")
    assert (answer.status, answer.code) == (401, "SIGN_ERROR")
    # Signed by another key, or naming another certificate.
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    assert (await api.call("POST", PREPAY, payload, key=stranger)).status == 401
    answer = await api.call("POST", PREPAY, payload, serial=api.fake.platform_serial)
    assert (answer.status, answer.code) == (401, "SIGN_ERROR")
    answer = await api.call("POST", PREPAY, payload, serial=api.fake.merchant_serial.lower())
    assert (answer.status, answer.code) == (401, "SIGN_ERROR")
    # Another merchant's number in the header.
    answer = await api.call("POST", PREPAY, payload, mchid="1900000999")
    assert (answer.status, answer.code) == (401, "SIGN_ERROR")
    assert api.fake.orders == {} and api.fake.count(PREPAY) == 5
    assert "Wechatpay-Signature" not in answer.headers  # error answers are not signed


async def test_a_timestamp_more_than_5_minutes_off_the_fakes_clock_is_a_sign_error(api: Api):
    now = api.fake.timestamp()
    for timestamp in (now - 301, now + 301, (now - 10) * 1000):
        answer = await api.call("POST", PREPAY, prepay_body(api.fake, "JD00000001"), timestamp=timestamp)
        assert (answer.status, answer.code) == (401, "SIGN_ERROR"), timestamp
    assert (await api.call("POST", PREPAY, prepay_body(api.fake, "JD00000001"), timestamp=now - 280)).status == 200
    # The fake's clock moves; a request signed with the real time is then stale.
    api.fake.advance(6)
    real_now = int(dt.datetime.now().timestamp())
    stale = await api.call("POST", PREPAY, prepay_body(api.fake, "JD00000002"), timestamp=real_now)
    assert (stale.status, stale.code) == (401, "SIGN_ERROR")
    api.fake.window = None
    assert (await api.call("POST", PREPAY, prepay_body(api.fake, "JD00000002"), timestamp=real_now)).status == 200


async def test_accept_and_user_agent_and_a_json_content_type_are_required(api: Api):
    for missing in ("Accept", "User-Agent"):
        answer = await api.call("GET", f"{QUERY_PREFIX}JD00000001?mchid={api.fake.mchid}", omit=(missing,))
        assert (answer.status, answer.json()) == (400, {"code": "INVALID_REQUEST",
                                                         "message": "Http头缺少Accept或User-Agent"})
    answer = await api.call("POST", PREPAY, prepay_body(api.fake, "JD00000001"), headers={"Content-Type": "text/plain"})
    assert (answer.status, answer.code) == (400, "INVALID_REQUEST")
    answer = await api.call("POST", PREPAY, prepay_body(api.fake, "JD00000001"),
                            headers={"Content-Type": "application/json; charset=utf-8"})
    assert answer.status == 200


async def test_the_header_mchid_must_be_the_body_and_query_mchid(api: Api):
    answer = await api.call("POST", PREPAY, prepay_body(api.fake, "JD00000001", mchid="1900000999"))
    assert (answer.status, answer.code) == (400, "PARAM_ERROR")
    answer = await api.call("POST", PREPAY, prepay_body(api.fake, "JD00000001", mchid=...))
    assert (answer.status, answer.code) == (400, "PARAM_ERROR")
    await api.prepay("JD00000001")
    answer = await api.call("GET", f"{QUERY_PREFIX}JD00000001?mchid=1900000999")
    assert (answer.status, answer.code) == (400, "PARAM_ERROR")
    assert (await api.call("GET", f"{QUERY_PREFIX}JD00000001")).status == 400
    answer = await api.close("JD00000001", {"mchid": "1900000999"})
    assert (answer.status, answer.code) == (400, "PARAM_ERROR")


async def test_bodies_with_nulls_4_byte_characters_or_bad_json_are_param_errors(api: Api):
    for body in [
        b'{"appid": "wxfake0123456789", "attach": null}',
        b'{"amount": {"total": 1, "currency": null}}',
        b'{"list": [1, null]}',
        "{\"description\": \"训练营\U0001F3C0\"}".encode(),  # 4 bytes in UTF-8
        b'{"attach": "\\ud83c\\udfc0"}',  # the same kind, as json.dumps escapes it
        b'{"reason": "x", "amount": NaN}',
        b'{"description": "x",}',
        b'["a list"]',
        "{\"description\": \"x\"}".encode("utf-16"),
    ]:
        answer = await api.call("POST", PREPAY, body=body)
        assert (answer.status, answer.code) == (400, "PARAM_ERROR"), body
    assert api.fake.orders == {}


# -- prepay (§3) ----------------------------------------------------------------------------------------------

async def test_prepay_refuses_bad_fields(api: Api):
    cases: list[tuple[dict[str, typing.Any], str]] = [
        ({"appid": "wxother0123456789"}, "APPID_MCHID_NOT_MATCH"),
        ({"description": ...}, "PARAM_ERROR"),
        ({"description": ""}, "PARAM_ERROR"),
        ({"out_trade_no": "JD123"}, "PARAM_ERROR"),
        ({"out_trade_no": "JD 20260101"}, "PARAM_ERROR"),
        ({"out_trade_no": "J" * 33}, "PARAM_ERROR"),
        ({"notify_url": "http://club.example.com/api/v1/pay/notify"}, "PARAM_ERROR"),
        ({"notify_url": NOTIFY_URL + "?order=1"}, "PARAM_ERROR"),
        ({"notify_url": ...}, "PARAM_ERROR"),
        ({"amount": {"total": 0}}, "PARAM_ERROR"),
        ({"amount": {"total": "19900"}}, "PARAM_ERROR"),
        ({"amount": {"total": 1.5}}, "PARAM_ERROR"),
        ({"amount": {"total": 1, "currency": "USD"}}, "PARAM_ERROR"),
        ({"payer": ...}, "PARAM_ERROR"),
        ({"payer": {"openid": ""}}, "PARAM_ERROR"),
        ({"time_expire": "20260101120000"}, "PARAM_ERROR"),
        ({"time_expire": "2020-01-01T12:00:00+08:00"}, "PARAM_ERROR"),
    ]
    for changes, code in cases:
        answer = await api.prepay(**changes)
        assert (answer.status, answer.code) == (400, code), changes
    assert api.fake.orders == {}


async def test_prepay_is_re_entrant_with_the_same_parameters_only(api: Api):
    expire = (api.fake.now() + dt.timedelta(hours=3)).isoformat("T", "seconds")
    first = await api.prepay(time_expire=expire, attach="signup:7")
    again = await api.prepay(time_expire=expire, attach="signup:7")
    assert first.json()["prepay_id"] == again.json()["prepay_id"]
    assert api.fake.orders["JD20260101000001"].prepays == 2
    changed: list[dict[str, typing.Any]] = [
        {"amount": {"total": 100, "currency": "CNY"}},
        {"time_expire": (api.fake.now() + dt.timedelta(hours=2)).isoformat("T", "seconds")},
        {"attach": "signup:8"}, {"description": "另一个训练营"}]
    for changes in changed:
        answer = await api.prepay(**{"time_expire": expire, "attach": "signup:7", **changes})
        assert (answer.status, answer.json()) == (400, {"code": "INVALID_REQUEST",
                                                         "message": "请求重入时，参数与首次请求时不一致"})
    # A prepay_id lives 2 hours: after that the same call gets a new one.
    api.fake.window = None
    api.fake.advance(121)
    renewed = await api.prepay(time_expire=expire, attach="signup:7")
    assert renewed.json()["prepay_id"] != first.json()["prepay_id"]


async def test_prepay_of_a_paid_or_closed_order_is_refused(api: Api):
    await paid_order(api, "JD00000001")
    answer = await api.prepay("JD00000001")
    assert (answer.status, answer.code) == (403, "ORDER_PAID")
    await api.prepay("JD00000002")
    assert (await api.close("JD00000002")).status == 204
    answer = await api.prepay("JD00000002")
    assert (answer.status, answer.code) == (400, "ORDER_CLOSED")


async def test_prepay_with_known_openids_refuses_another_appids_user(api: Api):
    api.fake.openids = {"o-someone-else"}
    answer = await api.prepay()
    assert (answer.status, answer.code) == (400, "PARAM_ERROR")


# -- query and close (§3) -----------------------------------------------------------------------------------

async def test_query_answers_the_transaction_and_404_for_an_unknown_order(api: Api):
    answer = await api.query("JD20260101000001")
    assert (answer.status, answer.json()) == (404, {"code": "ORDER_NOT_EXIST", "message": "订单不存在"})
    await api.prepay(attach="signup:7")
    unpaid = (await api.query("JD20260101000001")).json()
    assert unpaid == {"mchid": api.fake.mchid, "appid": api.fake.appid, "out_trade_no": "JD20260101000001",
                      "trade_state": "NOTPAY", "trade_state_desc": "订单未支付", "attach": "signup:7",
                      "amount": {"total": 19900, "currency": "CNY", "payer_currency": "CNY"}}
    api.fake.pay("JD20260101000001")
    answer = await api.query("JD20260101000001")
    paid = answer.json()
    assert answer.signed_by(public_key(api.fake)) and paid == api.fake.transaction("JD20260101000001")
    assert paid["trade_state"] == "SUCCESS" and paid["trade_type"] == "JSAPI" and paid["payer"] == {"openid": OPENID}
    assert len(paid["transaction_id"]) == 28 and paid["transaction_id"].startswith("4200")
    assert dt.datetime.fromisoformat(paid["success_time"]).utcoffset() == dt.timedelta(hours=8)
    assert paid["success_time"].endswith("+08:00")
    assert paid["amount"] == {"total": 19900, "payer_total": 19900, "currency": "CNY", "payer_currency": "CNY"}
    by_id = await api.call("GET", f"/v3/pay/transactions/id/{paid['transaction_id']}?mchid={api.fake.mchid}")
    assert by_id.json() == paid


async def test_close_answers_a_signed_204_again_and_again_but_not_for_a_paid_order(api: Api):
    await api.prepay("JD00000001")
    for _ in range(2):
        answer = await api.close("JD00000001")
        assert (answer.status, answer.body) == (204, b"")
        assert answer.signed_by(public_key(api.fake))
    assert (await api.query("JD00000001")).json()["trade_state"] == "CLOSED"
    answer = await api.close("JD00000001", {"mchid": api.fake.mchid, "out_trade_no": "JD00000001"})
    assert (answer.status, answer.code) == (400, "PARAM_ERROR")
    await paid_order(api, "JD00000002")
    answer = await api.close("JD00000002")
    assert (answer.status, answer.code) == (400, "ORDER_PAID")
    assert (await api.close("JD00000003")).status == 404
    assert api.fake.count(CLOSE_SUFFIX) == 5 and api.fake.count(QUERY_PREFIX) == 1


# -- refunds (§3) ---------------------------------------------------------------------------------------------

async def test_a_refund_moves_money_once_per_out_refund_no(api: Api):
    await paid_order(api)
    first = await api.refund("RF1", 5000)
    assert first.status == 200 and first.signed_by(public_key(api.fake))
    refund = first.json()
    assert refund["status"] == "PROCESSING" and refund["amount"]["refund"] == 5000
    assert refund == api.fake.refund_json("RF1")
    again = await api.refund("RF1", 5000)
    assert again.json()["refund_id"] == refund["refund_id"] and api.fake.refunds_made == ["RF1"]
    answer = await api.refund("RF1", 6000)
    assert (answer.status, answer.code) == (400, "INVALID_REQUEST")
    assert api.fake.refunds_made == ["RF1"]
    assert (await api.query("JD20260101000001")).json()["trade_state"] == "REFUND"


async def test_refunds_of_one_order_a_minute_apart_and_never_more_than_paid(api: Api):
    await paid_order(api)
    assert (await api.refund("RF1", 10000)).status == 200
    answer = await api.refund("RF2", 100)
    assert (answer.status, answer.code) == (429, "FREQUENCY_LIMITED")
    api.fake.advance(1)
    answer = await api.refund("RF2", 9901)
    assert (answer.status, answer.code) == (400, "INVALID_REQUEST")
    assert (await api.refund("RF2", 9900)).status == 200
    api.fake.advance(1)
    answer = await api.refund("RF3", 1)
    assert (answer.status, answer.code) == (400, "INVALID_REQUEST")
    # A closed refund gives its money back to what can be refunded.
    api.fake.settle_refund("RF2", "CLOSED")
    assert (await api.refund("RF3", 9900)).status == 200
    assert api.fake.refunds_made == ["RF1", "RF2", "RF3"]


async def test_refund_fields_are_checked(api: Api):
    await paid_order(api)
    await api.prepay("JD00000002")
    cases: list[tuple[dict[str, typing.Any], int, str]] = [
        ({"out_trade_no": "JD00000002"}, 404, "RESOURCE_NOT_EXISTS"),  # not paid
        ({"out_trade_no": "JD00000404"}, 404, "RESOURCE_NOT_EXISTS"),
        ({"out_trade_no": ...}, 400, "PARAM_ERROR"),
        ({"out_refund_no": "RF 1"}, 400, "PARAM_ERROR"),
        ({"out_refund_no": "R" * 65}, 400, "PARAM_ERROR"),
        ({"amount": {"refund": 0, "total": 19900, "currency": "CNY"}}, 400, "PARAM_ERROR"),
        ({"amount": {"refund": 100, "total": 20000, "currency": "CNY"}}, 400, "PARAM_ERROR"),
        ({"amount": {"refund": 100, "total": 19900}}, 400, "PARAM_ERROR"),
        ({"notify_url": REFUND_NOTIFY_URL + "?x=1"}, 400, "PARAM_ERROR"),
    ]
    for changes, status, code in cases:
        payload = {k: v for k, v in {**refund_body("RF1", 100), **changes}.items() if v is not ...}
        answer = await api.call("POST", REFUNDS, payload)
        assert (answer.status, answer.code) == (status, code), changes
    assert api.fake.refunds_made == []
    transaction_id = api.fake.orders["JD20260101000001"].transaction_id
    assert (await api.refund("RF@1|*-_", 100, out_trade_no=..., transaction_id=transaction_id)).status == 200


async def test_at_most_50_refunds_of_one_order(api: Api):
    await paid_order(api)
    for n in range(50):
        assert (await api.refund(f"RF{n}", 1)).status == 200
        api.fake.advance(1)
    answer = await api.refund("RF50", 1)
    assert (answer.status, answer.code) == (403, "RULE_LIMIT")


async def test_refund_query_and_settling(api: Api):
    answer = await api.call("GET", f"{REFUNDS}/RF1")
    assert (answer.status, answer.code) == (404, "RESOURCE_NOT_EXISTS")
    await paid_order(api)
    await api.refund("RF1", 100)
    api.fake.settle_refund("RF1")
    answer = await api.call("GET", f"{REFUNDS}/RF1")
    refund = answer.json()
    assert answer.signed_by(public_key(api.fake)) and refund["status"] == "SUCCESS"
    assert refund["success_time"].endswith("+08:00") and refund["user_received_account"] == "支付用户零钱"
    assert refund["amount"] == {"total": 19900, "refund": 100, "payer_total": 19900, "payer_refund": 100,
                                "settlement_refund": 100, "settlement_total": 19900, "discount_refund": 0,
                                "currency": "CNY", "refund_fee": 0}
    assert api.fake.count(REFUND_QUERY) == 2 and api.fake.count(REFUNDS) == 1
    with pytest.raises(AssertionError):
        api.fake.settle_refund("RF1", "CLOSED")


# -- the keys WeChat signs with (§5) ---------------------------------------------------------------------------

@pytest.mark.parametrize("mode", [PUBLIC_KEY, CERTIFICATE, MIXED])
async def test_answers_are_signed_with_the_key_of_the_mode(make_fake: typing.Any, session: aiohttp.ClientSession,
                                                           mode: str):
    fake = await make_fake(mode)
    api = Api(session, fake)
    # The request names the public key (as a client with one does, §2), or names nothing.
    with_id = await api.call("POST", PREPAY, prepay_body(fake, "JD00000001"),
                             headers={"Wechatpay-Serial": fake.public_key_id})
    without = await api.query("JD00000001")
    expected = {PUBLIC_KEY: (fake.public_key_id, fake.public_key_id),
                CERTIFICATE: (fake.platform_serial, fake.platform_serial),
                MIXED: (fake.public_key_id, fake.platform_serial)}[mode]
    assert (with_id.headers["Wechatpay-Serial"], without.headers["Wechatpay-Serial"]) == expected
    keys = {fake.public_key_id: public_key(fake), fake.platform_serial: platform_key(fake)}
    for answer in (with_id, without):
        serial = answer.headers["Wechatpay-Serial"]
        [other] = [key for name, key in keys.items() if name != serial]
        assert answer.signed_by(keys[serial]) and not answer.signed_by(other)
    assert int(fake.platform_serial, 16) == x509.load_pem_x509_certificate(
        fake.platform_cert_path.read_bytes()).serial_number
    assert fake.public_key_id.startswith("PUB_KEY_ID_0119000001") and len(fake.public_key_id) == 40


async def test_certificates_are_served_encrypted_in_certificate_mode_only(make_fake: typing.Any,
                                                                          session: aiohttp.ClientSession):
    answer = await Api(session, await make_fake(PUBLIC_KEY)).call("GET", CERTIFICATES)
    assert (answer.status, answer.code) == (404, "RESOURCE_NOT_EXISTS")
    assert answer.json()["message"].startswith("无可用的平台证书，请在商户平台-API安全申请使用微信支付公钥。")
    fake = await make_fake(CERTIFICATE)
    answer = await Api(session, fake).call("GET", CERTIFICATES)
    assert answer.status == 200 and answer.signed_by(platform_key(fake))
    [entry] = answer.json()["data"]
    sealed = entry["encrypt_certificate"]
    assert (entry["serial_no"], sealed["algorithm"], sealed["associated_data"]) == \
        (fake.platform_serial, "AEAD_AES_256_GCM", "certificate")
    pem = AESGCM(fake.api_v3_key.encode()).decrypt(sealed["nonce"].encode(), base64.b64decode(sealed["ciphertext"]),
                                                   b"certificate")
    assert pem == fake.platform_cert_path.read_bytes()


# -- failures and holds ----------------------------------------------------------------------------------------

async def test_failures_answer_their_code_with_its_status_then_things_work(api: Api):
    for mode, status in [("SYSTEM_ERROR", 500), ("FREQUENCY_LIMITED", 429), ("RATELIMIT_EXCEEDED", 429),
                         ("NOT_ENOUGH", 403), ("USER_ACCOUNT_ABNORMAL", 403), ("PARAM_ERROR", 400),
                         ("SIGN_ERROR", 401), ("ORDER_NOT_EXIST", 404)]:
        api.fake.fail(PREPAY, mode)
        answer = await api.prepay()
        assert (answer.status, answer.code) == (status, mode)
    api.fake.fail(PREPAY, HTTP_500, times=2)
    for _ in range(2):
        answer = await api.prepay()
        assert answer.status == 500 and answer.headers["Content-Type"].startswith("text/html")
    assert api.fake.orders == {}
    assert (await api.prepay()).status == 200 and api.fake.count(PREPAY) == 11
    with pytest.raises(ValueError):
        api.fake.fail(PREPAY, "NO_SUCH_CODE")


async def test_a_badly_signed_answer_carries_forged_news_and_does_nothing(api: Api):
    api.fake.fail(PREPAY, BAD_SIGN)
    api.fake.fail(CLOSE_SUFFIX, SIGNTEST)
    answer = await api.prepay()
    assert answer.status == 200 and answer.json()["prepay_id"] and not answer.signed_by(public_key(api.fake))
    assert api.fake.orders == {}
    await api.prepay()
    answer = await api.close("JD20260101000001")
    assert answer.status == 204 and answer.headers["Wechatpay-Signature"].startswith("WECHATPAY/SIGNTEST/")
    assert api.fake.orders["JD20260101000001"].state == "NOTPAY"


async def test_a_held_call_waits_before_or_after_it_is_carried_out(api: Api):
    await paid_order(api)
    held = api.fake.hold(PREPAY)
    task = asyncio.create_task(api.prepay("JD00000002"))
    await held.arrived.wait()
    assert "JD00000002" not in api.fake.orders and not task.done()
    held.release()
    assert (await task).status == 200
    held = api.fake.hold(REFUNDS, after=True)
    task = asyncio.create_task(api.refund("RF1", 100))
    await held.arrived.wait()
    assert api.fake.refunds_made == ["RF1"] and not task.done()
    held.release()
    assert (await task).status == 200


# -- notifications (§4) ----------------------------------------------------------------------------------------

def opened(fake: FakeWeChatPayV3, headers: typing.Mapping[str, str], body: bytes, key: typing.Any,
           api_v3_key: str | None = None) -> dict[str, typing.Any]:
    """Verify (§2) then decrypt (§4) a notification, as a receiver would."""
    message = f"{headers['Wechatpay-Timestamp']}\n{headers['Wechatpay-Nonce']}\n".encode() + body + b"\n"
    assert verifies(key, message, headers["Wechatpay-Signature"])
    resource = json.loads(body)["resource"]
    plain = AESGCM((api_v3_key or fake.api_v3_key).encode()).decrypt(
        resource["nonce"].encode(), base64.b64decode(resource["ciphertext"]), resource["associated_data"].encode())
    return typing.cast(dict[str, typing.Any], json.loads(plain))


async def test_a_payment_notification_verifies_and_decrypts(api: Api):
    fake = api.fake
    await paid_order(api)
    headers, body = fake.notification("JD20260101000001")
    assert set(headers) == {"Wechatpay-Serial", "Wechatpay-Signature", "Wechatpay-Timestamp", "Wechatpay-Nonce",
                            "Wechatpay-Signature-Type", "Content-Type", "User-Agent"}
    assert headers["Wechatpay-Serial"] == fake.public_key_id
    assert headers["Wechatpay-Signature-Type"] == "WECHATPAY2-SHA256-RSA2048"
    assert abs(int(headers["Wechatpay-Timestamp"]) - fake.timestamp()) <= 1
    envelope = json.loads(body)
    assert body == json.dumps(envelope, ensure_ascii=False, separators=(",", ":")).encode()
    assert {k: envelope[k] for k in ("resource_type", "event_type", "summary")} == \
        {"resource_type": "encrypt-resource", "event_type": "TRANSACTION.SUCCESS", "summary": "支付成功"}
    resource = envelope["resource"]
    assert (resource["original_type"], resource["algorithm"], resource["associated_data"], len(resource["nonce"])) \
        == ("transaction", "AEAD_AES_256_GCM", "transaction", 12)
    assert opened(fake, headers, body, public_key(fake)) == fake.transaction("JD20260101000001")


async def test_notification_knobs(api: Api):
    fake = api.fake
    await paid_order(api)
    headers, body = fake.notification("JD20260101000001", attach=None, amount={"total": 1, "payer_total": 1},
                                      serial=fake.platform_serial, timestamp=1735704006)
    plain = opened(fake, headers, body, platform_key(fake))
    assert "attach" not in plain and plain["amount"] == {"total": 1, "payer_total": 1}
    assert (headers["Wechatpay-Serial"], headers["Wechatpay-Timestamp"]) == (fake.platform_serial, "1735704006")
    headers, body = fake.notification("JD20260101000001", signature="WECHATPAY/SIGNTEST/AAAA")
    assert headers["Wechatpay-Signature"] == "WECHATPAY/SIGNTEST/AAAA"
    other = "".join(reversed(fake.api_v3_key))
    headers, body = fake.notification("JD20260101000001", api_v3_key=other)
    with pytest.raises(InvalidTag):
        opened(fake, headers, body, public_key(fake))
    assert opened(fake, headers, body, public_key(fake), api_v3_key=other)["out_trade_no"] == "JD20260101000001"
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    headers, body = fake.notification("JD20260101000001", signing_key=stranger)
    with pytest.raises(AssertionError):
        opened(fake, headers, body, public_key(fake))
    assert opened(fake, headers, body, stranger.public_key())["trade_state"] == "SUCCESS"


async def test_notifications_alternate_keys_during_a_switch_over(make_fake: typing.Any,
                                                                  session: aiohttp.ClientSession):
    fake = await make_fake(MIXED)
    await paid_order(Api(session, fake))
    serials = [fake.notification("JD20260101000001")[0]["Wechatpay-Serial"] for _ in range(4)]
    assert serials == [fake.public_key_id, fake.platform_serial] * 2
    headers, body = fake.notification("JD20260101000001")
    opened(fake, headers, body, public_key(fake))


async def test_a_refund_notification_carries_refund_status(api: Api):
    await paid_order(api)
    await api.refund("RF1", 100)
    api.fake.settle_refund("RF1", "ABNORMAL")
    headers, body = api.fake.refund_notification("RF1")
    envelope = json.loads(body)
    assert (envelope["event_type"], envelope["resource"]["original_type"], envelope["resource"]["associated_data"]) \
        == ("REFUND.ABNORMAL", "refund", "refund")
    plain = opened(api.fake, headers, body, public_key(api.fake))
    assert plain == {"mchid": api.fake.mchid, "transaction_id": api.fake.orders["JD20260101000001"].transaction_id,
                     "out_trade_no": "JD20260101000001", "refund_id": api.fake.refunds["RF1"].refund_id,
                     "out_refund_no": "RF1", "refund_status": "ABNORMAL", "user_received_account": "支付用户零钱",
                     "amount": {"total": 19900, "refund": 100, "payer_total": 19900, "payer_refund": 100}}
    api.fake.settle_refund("RF1")
    headers, body = api.fake.refund_notification("RF1")
    assert json.loads(body)["event_type"] == "REFUND.SUCCESS"
    assert opened(api.fake, headers, body, public_key(api.fake))["success_time"].endswith("+08:00")


def receiver(fake: FakeWeChatPayV3, statuses: list[int]) -> tuple[web.Application, list[tuple[bool, int]]]:
    """A notify endpoint that answers `statuses` in turn (then 204), a 401 to what it cannot verify within 5
    minutes of the fake's clock; it notes (verified, timestamp) of each post."""
    seen: list[tuple[bool, int]] = []

    async def handle(request: web.Request) -> web.Response:
        body = await request.read()
        h = request.headers
        message = f"{h['Wechatpay-Timestamp']}\n{h['Wechatpay-Nonce']}\n".encode() + body + b"\n"
        ok = verifies(public_key(fake), message, h["Wechatpay-Signature"]) and \
            abs(fake.timestamp() - int(h["Wechatpay-Timestamp"])) < 300
        seen.append((ok, int(h["Wechatpay-Timestamp"])))
        if not ok:
            return web.json_response({"code": "FAIL", "message": "失败"}, status=401)
        return web.Response(status=statuses.pop(0) if statuses else 204)

    app = web.Application()
    app.router.add_post("/api/v1/pay/notify", handle)
    app.router.add_post("/api/v1/pay/refund_notify", handle)
    return app, seen


async def test_notify_posts_to_the_notify_url_path(api: Api, aiohttp_client: typing.Any):
    app, seen = receiver(api.fake, [])
    client = await aiohttp_client(app)
    await paid_order(api)
    assert await api.fake.notify(client, "JD20260101000001") == (204, "")
    await api.refund("RF1", 100)
    api.fake.settle_refund("RF1")
    assert await api.fake.notify_refund(client, "RF1") == (204, "")
    assert [ok for ok, _ in seen] == [True, True]


async def test_deliver_retries_on_the_schedule_re_signed_until_200_or_204(api: Api, aiohttp_client: typing.Any):
    fake = api.fake
    await paid_order(api)
    app, seen = receiver(fake, [500, 503, 200])
    client = await aiohttp_client(app)
    start = fake.offset
    assert await fake.deliver(client, "/api/v1/pay/notify", fake.notification("JD20260101000001")) == \
        [500, 503, 200]
    assert fake.offset - start == dt.timedelta(seconds=30)
    # A stale one (or a probe) is refused; its retry, re-signed on the fake's clock, passes.
    stale = fake.notification("JD20260101000001", timestamp=fake.timestamp() - 600)
    assert await fake.deliver(client, "/api/v1/pay/notify", stale) == [401, 204]
    probe = fake.notification("JD20260101000001", signature="WECHATPAY/SIGNTEST/AAAA")
    assert await fake.deliver(client, "/api/v1/pay/notify", probe) == [401, 204]
    assert [ok for ok, _ in seen] == [True, True, True, False, True, False, True]


async def test_deliver_gives_up_after_16_attempts_in_24_hours_4_minutes(api: Api, aiohttp_client: typing.Any):
    fake = api.fake
    await paid_order(api)
    app, seen = receiver(fake, [500] * 20)
    client = await aiohttp_client(app)
    start = fake.offset
    statuses = await fake.deliver(client, "/api/v1/pay/notify", fake.notification("JD20260101000001"))
    assert statuses == [500] * 16
    assert fake.offset - start == dt.timedelta(hours=24, minutes=4)
    # Every attempt verified within the receiver's window: each was signed when it was sent.
    assert all(ok for ok, _ in seen) and len({ts for _, ts in seen}) == 16


# -- settings ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("mode, keys", [
    (PUBLIC_KEY, {"wechatpay_public_key_path", "wechatpay_public_key_id"}),
    (CERTIFICATE, {"wechatpay_platform_cert_paths"}),
    (MIXED, {"wechatpay_public_key_path", "wechatpay_public_key_id", "wechatpay_platform_cert_paths"}),
])
async def test_settings_for_each_mode(make_fake: typing.Any, mode: str, keys: set[str]):
    fake = await make_fake(mode)
    settings = settings_for(fake, wechatpay_notify_url="https://other.example.com/n")
    assert set(settings) == {"wechatpay_mch_id", "wechatpay_apiv3_key", "wechatpay_api_url", "wechatpay_cert_path",
                             "wechatpay_key_path", "wechatpay_notify_url"} | keys
    assert settings["wechatpay_notify_url"] == "https://other.example.com/n"
    assert settings["wechatpay_api_url"] == fake.base_url and len(fake.api_v3_key) == 32
    assert fake.api_v3_key.isascii()
    cert = x509.load_pem_x509_certificate(Path(settings["wechatpay_cert_path"]).read_bytes())
    assert format(cert.serial_number, "X") == fake.merchant_serial
    assert cert.public_key() == merchant_key(fake).public_key()
