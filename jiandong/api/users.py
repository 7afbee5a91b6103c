"""The current user's account: user/info and user/save."""

from __future__ import annotations

from aiohttp import web

from .. import db, formats
from ..auth import current_user_id
from ..errors import UserNotFound
from ..http import json_response
from ..keys import pg_key
from ..openapi import describe, integer, obj, string
from ..services.membership import ACTIVE, MEMBER_STATUS_SQL

routes = web.RouteTableDef()

USER_INFO = obj(
    "用户信息",
    username=string("用户名"),
    mobile=string("手机号码，未绑定为空字符串"),
    sex=string("性别：保密 / 男 / 女"),
    sex_value=integer("性别：0 保密，1 男，2 女"),
    country=string("所在国家"),
    province=string("所在省份"),
    city=string("所在城市"),
    head_img=string("头像 URL"),
    is_member=integer("是否有效会员 0/1"),
    register_time=string("注册时间 YYYY-MM-DD HH:MM:SS"),
    last_login_time=string("上次登录时间"),
    member_status=integer("会员状态 0 非会员，1 正常，2 被禁用，3 过期"),
    member_expire_time=string("会员有效期，无则为空字符串"),
)

USER_INFO_SQL = f"""
    SELECT u.username, u.mobile, u.sex, u.country, u.province, u.city, u.head_img,
           u.register_time, u.last_login_time, u.member_expire_time, {MEMBER_STATUS_SQL} AS member_status
    FROM users u WHERE u.id = %s AND NOT u.is_disabled
"""


@routes.get("/api/v1/user/info")
@describe("获取用户信息", tag="用户", response=USER_INFO, errors=[UserNotFound])
async def get_user_info(request: web.Request) -> web.Response:
    row = await db.fetchone(request.config_dict[pg_key], USER_INFO_SQL, (current_user_id(request),))
    if row is None:
        raise UserNotFound()
    return json_response(
        {
            "username": row["username"],
            "mobile": formats.text(row["mobile"]),
            "sex": formats.sex_label(row["sex"]),
            "sex_value": row["sex"],
            "country": row["country"],
            "province": row["province"],
            "city": row["city"],
            "head_img": row["head_img"],
            "is_member": formats.flag(row["member_status"] == ACTIVE),
            "register_time": formats.fmt_time(row["register_time"]),
            "last_login_time": formats.fmt_time(row["last_login_time"]),
            "member_status": row["member_status"],
            "member_expire_time": formats.fmt_time(row["member_expire_time"]),
        }
    )
