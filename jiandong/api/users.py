"""The current user's account: user/info and user/save."""

from __future__ import annotations

import re
import typing
from datetime import datetime, timezone

from aiohttp import web

from ..errors import ParameterError, SaveImageFailed, UserNotFound
from ..keys import content_cache_key, pg_key
from ..lib import encoding, formats
from ..lib.cleaning import is_http_url, is_plain_name
from ..services.content_cache import shape, user_changed
from ..services.files import record_file
from ..services.membership import ACTIVE, MEMBER_STATUS_SQL
from ..store import db, media
from ..web.auth import current_user_id
from ..web.fields import MaybeInt, Spec, Text, TextOrFile
from ..web.openapi import describe, integer, obj, string
from ..web.params import UPLOAD_BODY_LIMIT
from ..web.responses import operation_result

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
    head_img=string("头像 URL；用户没有头像时为本站的默认头像（/media/ 下的图片），从不为空"),
    is_member=integer("是否有效会员 0/1"),
    register_time=string("注册时间 YYYY-MM-DD HH:MM:SS"),
    last_login_time=string("上次登录时间"),
    member_status=integer("会员状态 0 非会员，1 正常，2 被禁用，3 过期"),
    member_expire_time=string("会员有效期，无则为空字符串"),
)

USER_INFO_TTL = 30.0
USER_INFO_SQL = f"""
    SELECT u.username, u.mobile, u.sex, u.country, u.province, u.city, u.head_img,
           u.register_time, u.last_login_time, u.member_expire_time, {MEMBER_STATUS_SQL} AS member_status
    FROM users u WHERE u.id = %s AND NOT u.is_disabled
"""


class CachedInfo(typing.NamedTuple):
    body: bytes
    # set while the membership is active: the entry is stale from this moment on
    active_until: datetime | None


# The encoded user/info answer, by user id (the first part: user_changed drops a user's entries).
INFO = shape("user", "user_info", CachedInfo)


def _user_info_body(row: db.Row) -> dict[str, typing.Any]:
    return {
        "username": row["username"],
        "mobile": formats.text(row["mobile"]),
        "sex": formats.sex_label(row["sex"]),
        "sex_value": row["sex"],
        "country": row["country"],
        "province": row["province"],
        "city": row["city"],
        "head_img": media.avatar(row["head_img"]),
        "is_member": formats.flag(row["member_status"] == ACTIVE),
        "register_time": formats.fmt_time(row["register_time"]),
        "last_login_time": formats.fmt_time(row["last_login_time"]),
        "member_status": row["member_status"],
        "member_expire_time": formats.fmt_time(row["member_expire_time"]),
    }


@routes.get("/api/v1/user/info")
@describe("获取用户信息", tag="用户", response=USER_INFO, errors=[UserNotFound])
async def get_user_info(request: web.Request) -> web.Response:
    user_id = current_user_id(request)
    pool = request.config_dict[pg_key]

    async def load() -> CachedInfo:
        row = await db.fetchone(pool, USER_INFO_SQL, (user_id,))
        if row is None:
            raise UserNotFound()
        active_until = row["member_expire_time"] if row["member_status"] == ACTIVE else None
        return CachedInfo(encoding.dumps(_user_info_body(row)), active_until)

    # The encoded answer is cached: every write to a user invalidates it (user_changed).
    cache = request.config_dict[content_cache_key]
    key = INFO(user_id)
    info = await cache.get(key, load, ttl=USER_INFO_TTL)
    if info.active_until is not None and info.active_until <= datetime.now(timezone.utc):
        # The membership ran out since the entry was cached: let the database say what it is now.
        cache.drop_local("user", user_id)
        info = await cache.get(key, load, ttl=USER_INFO_TTL)
    return web.Response(body=info.body, content_type="application/json")


USERNAME_MIN, USERNAME_MAX = 4, 25
HEAD_IMG_URL_MAX = 500
AVATAR_FOLDER = "avatars"
# The OpenAPI pattern of a name: what cleaning.is_plain_name accepts.
NAME_PATTERN = r'^[^\x00-\x1f\x7f-\x9f<>"\u2028\u2029]*$'


def _username(value: str) -> str:
    # Counted in characters, not bytes, so a four-character Chinese name is fine.
    if not USERNAME_MIN <= len(value) <= USERNAME_MAX:
        raise ParameterError(f"参数错误: username 长度必须为 {USERNAME_MIN}~{USERNAME_MAX} 个字符")
    if not is_plain_name(value):
        raise ParameterError('参数错误: username 不能含有 < > " 或控制字符')
    return value


URL_SCHEME = re.compile(r"^[a-z][a-z0-9+.-]*:", re.IGNORECASE)


def _head_img_url(value: str) -> str:
    if not is_http_url(value, HEAD_IMG_URL_MAX):
        raise ParameterError(f"参数错误: head_img 必须是不超过 {HEAD_IMG_URL_MAX} 个字符的 http(s) 地址")
    return value


class ProfileParams(Spec):
    username = Text(
        '用户名，4~25 个字符，不含 < > " 与控制字符（非必要）', check=_username, minLength=USERNAME_MIN,
        maxLength=USERNAME_MAX, pattern=NAME_PATTERN,
    )
    sex = MaybeInt("性别：0 保密，1 男，2 女（非必要）", minimum=0, maximum=2, enum=[0, 1, 2])
    head_img = TextOrFile(
        "头像（非必要）：http(s) 地址；或 JPEG/PNG 图片的 base64 数据"
        "（可带 data:image/...;base64, 前缀）；或 multipart 文件。图片不超过 2 MiB"
    )


@routes.post("/api/v1/user/save")
@describe(
    "用户修改个人信息",
    tag="用户",
    params=ProfileParams,
    errors=[ParameterError, SaveImageFailed, UserNotFound],
    max_body=UPLOAD_BODY_LIMIT,
    description="只修改提交了的字段（空值视为未提交）；任一字段不合法时什么都不保存。修改后登录不再用微信昵称和头像覆盖。",
)
async def save_user(request: web.Request) -> web.Response:
    user_id = current_user_id(request)
    # Every field is checked before anything is stored, so one bad field saves nothing.
    p = await ProfileParams.read(request)
    changes: dict[str, typing.Any] = {}
    if p.username:
        changes["username"] = p.username
    if p.sex is not None:
        changes["sex"] = p.sex
    image = None
    head_img = p.head_img
    if not isinstance(head_img, str):
        image = await media.image_from_upload(head_img.data, head_img.filename)
    elif head_img.lower().startswith(("http://", "https://")) or (
        URL_SCHEME.match(head_img) and not media.DATA_URL_PREFIX.match(head_img)
    ):
        # javascript:, data:text/html ... never become an avatar.
        changes["head_img"] = _head_img_url(head_img)
    elif head_img:
        image = await media.image_from_base64(head_img)
    if not changes and image is None:
        raise ParameterError("参数错误: 至少提交 username、sex、head_img 之一")
    if image is not None:
        changes["head_img"] = await media.store_image(request, AVATAR_FOLDER, image)
    # Column names come from the fixed keys above, never from the request.
    assignments = ", ".join(f"{column} = %({column})s" for column in changes)
    async with db.transaction(request.config_dict[pg_key]) as cur:
        await cur.execute(
            f"UPDATE users SET {assignments}, profile_edited = true, updated_at = now()"
            " WHERE id = %(user_id)s AND NOT is_disabled",
            {**changes, "user_id": user_id},
        )
        if cur.rowcount != 1:
            raise UserNotFound()
        if image is not None:
            await record_file(
                cur,
                name=changes["head_img"],
                original=image.original,
                size=len(image.data),
                mime=image.mime,
                sha256=image.sha256,
                user_id=user_id,
            )
    await user_changed(request.app, user_id)
    return operation_result(request)
