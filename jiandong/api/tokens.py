"""Endpoint 1: exchange a WeChat OAuth code for a login token."""

from __future__ import annotations

import aiopg
from aiohttp import web

from ..errors import ApiError, AuthorizationFailed, UserNotFound, WeChatUnavailable
from ..integrations.wechat import WeChatProfile
from ..keys import metrics_key, pg_key, tokens_key, wechat_key
from ..services.content_cache import user_changed
from ..services.standing import Action, check_standing
from ..store import db
from ..web.auth import public
from ..web.fields import Spec, Text
from ..web.openapi import describe, obj, string
from ..web.responses import json_response

routes = web.RouteTableDef()

# A login refreshes what WeChat says about the user, except the name and avatar once the
# user has edited them (user/save), and never blanks a value WeChat no longer sends.
UPSERT_USER_SQL = """
    INSERT INTO users (openid, unionid, username, head_img, sex, country, province, city, last_login_time)
    VALUES (%(openid)s, %(unionid)s, %(nickname)s, %(headimgurl)s, %(sex)s, %(country)s, %(province)s,
            %(city)s, now())
    ON CONFLICT (openid) DO UPDATE SET
        unionid = COALESCE(EXCLUDED.unionid, users.unionid),
        username = CASE WHEN users.profile_edited OR EXCLUDED.username = '' THEN users.username
                        ELSE EXCLUDED.username END,
        head_img = CASE WHEN users.profile_edited OR EXCLUDED.head_img = '' THEN users.head_img
                        ELSE EXCLUDED.head_img END,
        last_login_time = now(),
        updated_at = now()
    RETURNING id, is_disabled
"""


async def upsert_user(pool: aiopg.Pool, profile: WeChatProfile) -> int:
    row = await db.fetchone(pool, UPSERT_USER_SQL, {
        "openid": profile.openid,
        "unionid": profile.unionid,
        "nickname": profile.nickname[:64],
        "headimgurl": profile.headimgurl[:500],
        "sex": profile.sex if profile.sex in (0, 1, 2) else 0,
        "country": profile.country[:64],
        "province": profile.province[:64],
        "city": profile.city[:64],
    })
    assert row is not None
    check_standing(row, Action.LOGIN)
    return row["id"]


class CodeParams(Spec):
    code = Text("网页授权码", required=True, max_length=512)


@routes.post("/api/v1/token/user")
@describe(
    "用户登录获取令牌",
    tag="用户",
    public=True,
    params=CodeParams,
    response=obj("令牌", token=string("32 位小写十六进制令牌，请求头 token 携带")),
    errors=[AuthorizationFailed, WeChatUnavailable, UserNotFound],
    description="用 WeChat 网页授权 code 换取令牌；未配置 appid 时为开发模式，任意 code 即一个开发身份。",
)
@public
async def issue_token(request: web.Request) -> web.Response:
    code = (await CodeParams.read(request)).code
    logins = request.config_dict[metrics_key].logins
    try:
        profile = await request.config_dict[wechat_key].profile_for_code(code)
    except ApiError as error:
        # By error code: WeChat refused the code, or could not be asked.
        logins.labels(str(error.error_code)).inc()
        raise
    logins.labels("ok").inc()
    user_id = await upsert_user(request.config_dict[pg_key], profile)
    await user_changed(request.app, user_id)
    token = await request.config_dict[tokens_key].issue(user_id)
    return json_response({"token": token})
