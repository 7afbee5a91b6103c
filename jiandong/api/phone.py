"""Endpoints 4 and 5: send a verification code to a phone, and bind the verified phone to the user."""

from __future__ import annotations

import psycopg2.errors
from aiohttp import web

from ..errors import NoCodePending, ParameterError, PhoneTaken, SmsFailed, Throttled, UserNotFound, WrongCode
from ..keys import metrics_key, pg_key, redis_key, settings_key, sms_key
from ..services import verification
from ..services.content_cache import user_changed
from ..store import db
from ..web.auth import current_user_id
from ..web.fields import Spec, Text
from ..web.openapi import OPERATION_RESULT, describe, string
from ..web.params import client_ip
from ..web.responses import json_response, operation_result

routes = web.RouteTableDef()

# Binding the number the user already has changes nothing and succeeds.
BIND_SQL = """
    UPDATE users SET mobile = %s, updated_at = now()
    WHERE id = %s AND NOT is_disabled
"""

class PhoneParams(Spec):
    phone = Text(
        "中国大陆手机号码，11 位；可带 +86 / 86 / 0086 前缀，空格与横线会被忽略", required=True, max_length=32,
        pattern="^(\\+86|0086|86)?1[3-9][0-9]{9}$",
    )


class BindParams(PhoneParams):
    code = Text("短信验证码，6 位数字", required=True, max_length=6, pattern="^[0-9]{6}$")


# Development only: with dev logins (anyone may be anyone) and codes written to the log, the answer
# carries the code too, so that a script (the README's walk-through) can bind a phone.
SEND_CODE_RESULT = {
    **OPERATION_RESULT,
    "properties": {
        **OPERATION_RESULT["properties"],
        "dev_code": string("仅开发模式（未配置公众号 AppID 且短信写入日志时）：本次的验证码", pattern="^[0-9]{6}$"),
    },
}


@routes.post("/api/v1/identify/code")
@describe(
    "获取手机验证码",
    tag="用户",
    params=PhoneParams,
    response=SEND_CODE_RESULT,
    errors=[ParameterError, Throttled, SmsFailed],
    description=(
        "向手机发送 6 位验证码，5 分钟内有效。同一号码 60 秒内只发送一次；"
        "每个号码、每个客户端 IP 每天的发送次数有上限（超出返回 10010，msg 说明是哪一项上限）；"
        "短信服务商对同一号码的流控（每分钟 1 条、每小时 5 条、24 小时 10 条）同样返回 10010。"
        "无论号码是否已被其他用户绑定，回答都相同且同样计入上限（不泄露号码是否属于某个账号）；"
        "已被其他用户绑定的号码在 user/bind 校验验证码之后返回 10006。"
    ),
)
async def send_code(request: web.Request) -> web.Response:
    phone = verification.normalize_phone((await PhoneParams.read(request)).phone)
    settings = request.config_dict[settings_key]
    results = request.config_dict[metrics_key].sms
    try:
        code = await verification.issue(
            request.config_dict[redis_key],
            settings,
            request.config_dict[sms_key],
            phone,
            current_user_id(request),
            client_ip(request),
        )
    except Throttled:
        results.labels("refused").inc()
        raise
    except SmsFailed:
        results.labels("failed").inc()
        raise
    results.labels("sent").inc()
    if settings.dev_wechat and settings.sms_provider == "console":
        return json_response({"msg": "success", "error_code": 0, "request_url": request.path, "dev_code": code})
    return operation_result(request)


@routes.post("/api/v1/user/bind")
@describe(
    "关联(绑定)手机号",
    tag="用户",
    params=BindParams,
    errors=[ParameterError, NoCodePending, WrongCode, PhoneTaken, UserNotFound],
    description=(
        "用本用户获取的验证码绑定手机号，已绑定的号码会被替换。验证码用过即失效；"
        "连续输错 5 次也会失效（之后返回 10009，需重新获取）。验证码正确而号码已被其他用户绑定时返回 10006"
        "（验证码同样失效）。"
    ),
)
async def bind_phone(request: web.Request) -> web.Response:
    p = await BindParams.read(request)
    phone = verification.normalize_phone(p.phone)
    code = verification.check_code_format(p.code)
    user_id = current_user_id(request)
    await verification.verify_and_burn(
        request.config_dict[redis_key], request.config_dict[settings_key], phone, user_id, code
    )
    try:
        updated = await db.execute(request.config_dict[pg_key], BIND_SQL, (phone, user_id))
    except psycopg2.errors.UniqueViolation as exc:
        if db.is_unique_violation(exc, "users_mobile_key"):
            raise PhoneTaken() from None
        raise
    if not updated:
        raise UserNotFound()
    await user_changed(request.app, user_id)
    return operation_result(request)
