"""SMS verification codes: the provider interface, Aliyun Dysmsapi SendSms and the dev console provider."""

from __future__ import annotations

import logging
import typing

from aiohttp import web

from ..errors import SmsFailed, Throttled
from ..keys import client_session_key, settings_key, sms_key
from ..lib import encoding
from .aliyun import AliyunError, AliyunRpc

logger = logging.getLogger(__name__)

DYSMSAPI_VERSION = "2017-05-25"
# Aliyun's own flow control per phone (reference §4.3: 1 a minute, 5 an hour, 10 a rolling day) can
# refuse a code our limits let through (their day is not our calendar day): the user is told to wait.
FLOW_CONTROL = "isv.BUSINESS_LIMIT_CONTROL"


def mask_phone(phone: str) -> str:
    """138****8000: enough to tell numbers apart in a log, not enough to collect them."""
    return f"{phone[:3]}****{phone[-4:]}" if len(phone) >= 8 else "****"


class SmsRefused(Exception):
    """Aliyun answered a notice's SendSms with a Code other than OK (or failed: Code "Timeout", "HTTP500"…)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class SmsProvider(typing.Protocol):
    async def send_code(self, phone: str, code: str) -> None:
        """Deliver a verification code; Throttled (10010) when the provider's flow control refuses it,
        SmsFailed (70000) with the reason when it was not accepted otherwise."""

    async def send_notice(self, phone: str, template_code: str, params: typing.Mapping[str, str],
                          out_id: str) -> str:
        """Send a notification template; its BizId. SmsRefused with Aliyun's Code when not accepted."""


class ConsoleSms:
    """Development: the code goes to the log instead of a phone."""

    async def send_code(self, phone: str, code: str) -> None:
        logger.warning("SMS code for %s: %s", mask_phone(phone), code)

    async def send_notice(self, phone: str, template_code: str, params: typing.Mapping[str, str],
                          out_id: str) -> str:
        logger.warning("SMS notice %s for %s (console: not sent): %s", out_id, mask_phone(phone),
                       " / ".join(params.values()))
        return f"console-{out_id}"


class AliyunSms:
    """Dysmsapi SendSms: codes with a template whose one variable is ${code}; notices with their own templates."""

    def __init__(self, rpc: AliyunRpc, sign_name: str, template_code: str) -> None:
        self.rpc = rpc
        self.sign_name = sign_name
        self.template_code = template_code

    async def send_code(self, phone: str, code: str) -> None:
        params = {
            "PhoneNumbers": phone,
            "SignName": self.sign_name,
            "TemplateCode": self.template_code,
            # Compact JSON with a string value: `{"code":123456}` is rejected as isv.INVALID_JSON_PARAM.
            "TemplateParam": encoding.dumps_str({"code": code}),
        }
        try:
            answer = await self.rpc.call("SendSms", DYSMSAPI_VERSION, params)
        except AliyunError as exc:
            raise SmsFailed(f"发送短信失败: {exc.code}") from None
        if answer.get("Code") != "OK":
            logger.warning(
                "SendSms to %s refused: Code=%s Message=%s RequestId=%s",
                mask_phone(phone), answer.get("Code"), answer.get("Message"), answer.get("RequestId"),
            )
            if answer.get("Code") == FLOW_CONTROL:
                # Aliyun's message names the level: 触发分钟级流控 / 触发小时级流控 / 触发天级流控.
                if "天级" in str(answer.get("Message")):
                    raise Throttled("该手机号码今日获取验证码次数已达上限，请明天再试")
                raise Throttled("该手机号码获取验证码过于频繁，请稍后再试")
            raise SmsFailed(f"发送短信失败: {answer.get('Code') or '未知错误'}")
        logger.info(
            "SendSms to %s: BizId=%s RequestId=%s", mask_phone(phone), answer.get("BizId"), answer.get("RequestId")
        )

    async def send_notice(self, phone: str, template_code: str, params: typing.Mapping[str, str],
                          out_id: str) -> str:
        """SendSms with a notification template; OutId names the notice in Aliyun's delivery reports."""
        try:
            answer = await self.rpc.call("SendSms", DYSMSAPI_VERSION, {
                "PhoneNumbers": phone, "SignName": self.sign_name, "TemplateCode": template_code,
                "TemplateParam": encoding.dumps_str(dict(params)), "OutId": out_id,
            })
        except AliyunError as exc:
            raise SmsRefused(exc.code, exc.message) from None
        if answer.get("Code") != "OK":
            logger.warning("SendSms notice %s to %s refused: Code=%s Message=%s", out_id, mask_phone(phone),
                           answer.get("Code"), answer.get("Message"))
            raise SmsRefused(str(answer.get("Code") or "Unknown"), str(answer.get("Message") or ""))
        return str(answer.get("BizId") or "")


async def sms_ctx(app: web.Application) -> typing.AsyncIterator[None]:
    settings = app[settings_key]
    if settings.sms_provider == "aliyun":
        rpc = AliyunRpc(
            app[client_session_key],
            settings.aliyun_sms_url,
            settings.aliyun_access_key_id,
            settings.aliyun_access_key_secret,
        )
        app[sms_key] = AliyunSms(rpc, settings.sms_sign_name, settings.sms_template_code)
    else:
        logger.warning(
            "SMS provider is the console: verification codes are written to this log, not sent. "
            "Set JIANDONG_SMS_PROVIDER=aliyun in production."
        )
        app[sms_key] = ConsoleSms()
    yield
