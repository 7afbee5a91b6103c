"""A fake Aliyun Dysmsapi (SendSms, Version 2017-05-25) following wechat-aliyun.md §4.

It checks the RPC v1 signature with its own signer (written from §4.2 the "form-encode, then
fix up" way, not with the project's code), requires the documented parameters, records every
accepted message, and can be told to fail the way Aliyun does.

It keeps §4.3's default flow control for verification codes, isv.BUSINESS_LIMIT_CONTROL (HTTP 200)
once a phone had, under one SignName, 1 accepted submit in the last minute, 5 in the last hour or
10 in the last 24 hours, or 40 under any SignName in the last 24 hours. Its clock is the real one
plus what tests `advance` it by (time passes here and at the caller alike), so a test never sleeps
through a window; `skew` puts Aliyun's clock ahead of the caller's (the Timestamp check).

The gateway-level errors (SignatureDoesNotMatch, SignatureNonceUsed, InvalidAccessKeyId.NotFound,
MissingParameter, InvalidTimeStamp.*, ...) and their HTTP statuses are our assumption: the
reference marks those names as unverified. The isv.* business codes come with HTTP 200.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import datetime as dt
import hashlib
import hmac
import json
import re
import typing
import uuid
from urllib.parse import quote_plus

from aiohttp import web

COMMON_PARAMS = (
    "AccessKeyId", "Action", "Format", "RegionId", "SignatureMethod", "SignatureNonce",
    "SignatureVersion", "Timestamp", "Version", "Signature",
)
SEND_SMS_PARAMS = ("PhoneNumbers", "SignName", "TemplateCode")
PHONE = re.compile(r"(?:\+86|0086|86)?1[3-9][0-9]{9}")
LIMIT_MESSAGES = {
    "isv.BUSINESS_LIMIT_CONTROL": "触发分钟级流控Permits:1",
    "isv.MOBILE_NUMBER_ILLEGAL": "非法手机号",
}
# §4.3: accepted verification codes per SignName and phone over rolling windows, and Aliyun's message.
FLOW_CONTROL = (
    (dt.timedelta(minutes=1), 1, "触发分钟级流控Permits:1"),
    (dt.timedelta(hours=1), 5, "触发小时级流控Permits:5"),
    (dt.timedelta(days=1), 10, "触发天级流控Permits:10"),
)
# §4.3: codes to one phone from any sender on the platform per rolling day.
PLATFORM_DAY_LIMIT = 40
# §4.3: notification messages per SignName + TemplateCode + phone per rolling day.
NOTICE_DAY_LIMIT = 50
# How far a request's Timestamp may be from Aliyun's clock (the gateway rule we assume, see above).
TIMESTAMP_WINDOW = dt.timedelta(minutes=15)


def _enc(value: str) -> str:
    # §4.2's equivalent form: form-urlencode, then `+`->%20, `*`->%2A, %7E->`~`.
    return quote_plus(value, safe="").replace("+", "%20").replace("*", "%2A").replace("%7E", "~")


def timestamp_error(params: typing.Mapping[str, str], now: dt.datetime) -> tuple[str, str] | None:
    """The gateway's error for a Timestamp that is malformed or too far from `now` (Aliyun's clock)."""
    try:
        stamp = dt.datetime.strptime(params["Timestamp"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.timezone.utc)
    except ValueError:
        return "InvalidTimeStamp.Format", "Specified time stamp or date value is not well formatted."
    if abs(now - stamp) > TIMESTAMP_WINDOW:
        return "InvalidTimeStamp.Expired", "Specified time stamp or date value is expired."
    return None


class Clock:
    """Aliyun's clock: the real one plus `advance`d time (which the caller's clock is taken to follow),
    and `skew`, how far Aliyun's clock runs ahead of the caller's (negative: behind)."""

    def __init__(self) -> None:
        self.elapsed = dt.timedelta()
        self.skew = dt.timedelta()

    def now(self) -> dt.datetime:
        return dt.datetime.now(dt.timezone.utc) + self.elapsed

    def advance(self, seconds: float) -> None:
        self.elapsed += dt.timedelta(seconds=seconds)

    def caller_now(self) -> dt.datetime:
        """What a caller's Timestamp is compared with: its own clock (the real one) as Aliyun reads it."""
        return dt.datetime.now(dt.timezone.utc) + self.skew


def fake_signature(params: typing.Mapping[str, str], secret: str, method: str) -> str:
    canonical = "&".join(f"{_enc(k)}={_enc(params[k])}" for k in sorted(params) if k != "Signature")
    to_sign = f"{method}&{_enc('/')}&{_enc(canonical)}"
    return base64.b64encode(hmac.new(f"{secret}&".encode(), to_sign.encode(), hashlib.sha1).digest()).decode()


@dataclasses.dataclass
class SentSms:
    phone: str
    sign_name: str
    template_code: str
    template_param: dict[str, typing.Any]
    at: dt.datetime

    @property
    def code(self) -> str:
        return self.template_param["code"]

    @property
    def number(self) -> str:
        return number_of(self.phone)


def number_of(phone: str) -> str:
    """The 11 digits of a mainland number given with or without its country prefix."""
    return phone[-11:]


class FakeDysmsapi(Clock):
    """Start with `server = await aiohttp_server(fake.app())`; read `fake.sent`, set `fake.fail_code` etc."""

    def __init__(self, access_key_id: str = "LTAI5tFakeKeyId", access_key_secret: str = "fake-secret") -> None:
        super().__init__()
        self.access_key_id = access_key_id
        self.access_key_secret = access_key_secret
        self.sent: list[SentSms] = []
        self.requests: list[dict[str, str]] = []
        self.nonces: set[str] = set()
        # Failure switches: an isv.* code answered with HTTP 200, a bare HTTP error status, a delay.
        self.fail_code: str | None = None
        self.http_status: int | None = None
        self.delay: float = 0.0
        # Notification templates (TemplateCode -> its variables); any other TemplateCode is the code template.
        self.notice_templates: dict[str, tuple[str, ...]] = {}

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/", self.handle)
        return app

    def codes_for(self, phone: str) -> list[str]:
        return [sms.code for sms in self.sent if sms.phone == phone]

    async def handle(self, request: web.Request) -> web.Response:
        params = dict(request.query)
        if request.method == "POST":
            params.update({k: v for k, v in (await request.post()).items() if isinstance(v, str)})
        elif request.method != "GET":
            return web.Response(status=405)
        self.requests.append(params)
        request_id = str(uuid.uuid4()).upper()
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.http_status is not None:
            return web.Response(status=self.http_status, text="Internal Server Error")

        def error(code: str, message: str, status: int = 400) -> web.Response:
            return web.json_response(
                {"Code": code, "Message": message, "RequestId": request_id, "HostId": "dysmsapi.aliyuncs.com"},
                status=status,
            )

        missing = [name for name in COMMON_PARAMS if not params.get(name)]
        if missing:
            return error("MissingParameter", f"The input parameter {missing[0]} that is mandatory is not supplied.")
        if params["AccessKeyId"] != self.access_key_id:
            return error("InvalidAccessKeyId.NotFound", "Specified access key is not found.", 404)
        if (params["SignatureMethod"], params["SignatureVersion"]) != ("HMAC-SHA1", "1.0"):
            return error("InvalidParameter", "SignatureMethod / SignatureVersion not supported.")
        expected = fake_signature(params, self.access_key_secret, request.method)
        if not hmac.compare_digest(expected, params["Signature"]):
            return error(
                "SignatureDoesNotMatch",
                f"Specified signature is not matched with our calculation. server string to sign is:"
                f"{request.method}&%2F&...",
            )
        if (stale := timestamp_error(params, self.caller_now())) is not None:
            return error(*stale)
        if params["SignatureNonce"] in self.nonces:
            return error("SignatureNonceUsed", "Specified signature nonce was used already.")
        self.nonces.add(params["SignatureNonce"])
        if params["Action"] != "SendSms":
            return error("InvalidAction.NotFound", "Specified api is not found, please check your url and method.", 404)
        if params["Version"] != "2017-05-25":
            return error("InvalidVersion", "Specified parameter Version is not valid.")
        if params["Format"] != "JSON":
            return error("InvalidParameter", "this fake answers JSON only")

        def refuse(code: str, message: str) -> web.Response:
            return web.json_response({"Code": code, "Message": message, "RequestId": request_id})

        if self.fail_code is not None:
            return refuse(self.fail_code, LIMIT_MESSAGES.get(self.fail_code, self.fail_code))
        missing = [name for name in SEND_SMS_PARAMS if not params.get(name)]
        if missing:
            return refuse("isv.INVALID_PARAMETERS", f"{missing[0]} is mandatory")
        if "," in params["PhoneNumbers"] or not PHONE.fullmatch(params["PhoneNumbers"]):
            return refuse("isv.MOBILE_NUMBER_ILLEGAL", "非法手机号")
        try:
            template_param = json.loads(params.get("TemplateParam", ""))
        except ValueError:
            return refuse("isv.INVALID_JSON_PARAM", "JSON参数不合法")
        if not isinstance(template_param, dict) or not all(isinstance(v, str) for v in template_param.values()):
            return refuse("isv.INVALID_JSON_PARAM", "JSON参数不合法，只接受字符串值")
        variables = self.notice_templates.get(params["TemplateCode"], ("code",))
        if any(name not in template_param for name in variables):
            return refuse("isv.TEMPLATE_MISSING_PARAMETERS", "模版缺少变量")
        if params["TemplateCode"] in self.notice_templates:
            limited = self.notice_flow_control(params["SignName"], params["TemplateCode"],
                                               number_of(params["PhoneNumbers"]))
        else:
            limited = self.flow_control(params["SignName"], number_of(params["PhoneNumbers"]))
        if limited is not None:
            return refuse("isv.BUSINESS_LIMIT_CONTROL", limited)
        self.sent.append(
            SentSms(params["PhoneNumbers"], params["SignName"], params["TemplateCode"], template_param, self.now())
        )
        return web.json_response(
            {"Code": "OK", "Message": "OK", "BizId": f"{len(self.sent):06d}^0", "RequestId": request_id}
        )

    def notices_to(self, phone: str) -> list[SentSms]:
        return [sms for sms in self.sent
                if sms.number == number_of(phone) and sms.template_code in self.notice_templates]

    def notice_flow_control(self, sign_name: str, template_code: str, number: str) -> str | None:
        now = self.now()
        sent = sum(1 for sms in self.sent if (sms.sign_name, sms.template_code, sms.number) ==
                   (sign_name, template_code, number) and now - sms.at < dt.timedelta(days=1))
        return f"触发天级流控Permits:{NOTICE_DAY_LIMIT}" if sent >= NOTICE_DAY_LIMIT else None

    def flow_control(self, sign_name: str, number: str) -> str | None:
        """Aliyun's message when a code to `number` now would pass a §4.3 limit, else None."""
        now = self.now()
        ages = [(sms.sign_name, now - sms.at) for sms in self.sent
                if sms.number == number and sms.template_code not in self.notice_templates]
        if sum(age < dt.timedelta(days=1) for _, age in ages) >= PLATFORM_DAY_LIMIT:
            return f"触发天级流控Permits:{PLATFORM_DAY_LIMIT}"
        for window, permits, message in FLOW_CONTROL:
            if sum(name == sign_name and age < window for name, age in ages) >= permits:
                return message
        return None
