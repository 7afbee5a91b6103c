"""Endpoint 16: the users' feedback (suggestions, complaints), rate limited per user."""

from __future__ import annotations

import re

from aiohttp import web

from ..errors import ParameterError, Throttled
from ..keys import pg_key, redis_key, settings_key
from ..store import db
from ..store.kv import rkey
from ..web.auth import current_user_id
from ..web.fields import Int, Spec, Text
from ..web.openapi import describe
from ..web.responses import operation_result

routes = web.RouteTableDef()

CONTENT_MAX, TITLE_MAX, PHONE_MAX = 2000, 100, 20
PHONE = re.compile(r"[0-9+\-]+")
RATE_LIMIT, RATE_WINDOW = 5, 600  # feedbacks per user per window (seconds)


def _no_nul(name: str, value: str) -> str:
    # PostgreSQL text cannot hold NUL; say so instead of failing the INSERT.
    if "\x00" in value:
        raise ParameterError(f"参数错误: {name} 含有非法字符")
    return value


class FeedbackParams(Spec):
    # Read in this order: the first fault named is the same as before.
    content = Text("内容", required=True, max_length=CONTENT_MAX)
    title = Text("标题（非必要）", max_length=TITLE_MAX)
    type = Int("类型：1 建议（默认），2 投诉，3 其它", minimum=1, maximum=3, default=1, enum=[1, 2, 3])
    phone = Text("手机号码（非必要，数字、+、-，不超过 20 个字符）", max_length=PHONE_MAX, pattern="^[0-9+-]*$")


@routes.post("/api/v1/feeds")
@describe(
    "提交意见反馈",
    tag="反馈",
    params=FeedbackParams,
    errors=[ParameterError, Throttled],
    description=f"每个用户每 {RATE_WINDOW // 60} 分钟最多提交 {RATE_LIMIT} 次。",
)
async def submit_feedback(request: web.Request) -> web.Response:
    user_id = current_user_id(request)
    p = await FeedbackParams.read(request)
    content = _no_nul("content", p.content)
    title = _no_nul("title", p.title)
    kind = p.type
    phone = p.phone
    if phone and not PHONE.fullmatch(phone):
        raise ParameterError("参数错误: phone 只能包含数字、+ 和 -")
    await _count_submission(request, user_id)
    await db.execute(
        request.config_dict[pg_key],
        "INSERT INTO feedback (user_id, type, phone, title, content) VALUES (%s, %s, %s, %s, %s)",
        (user_id, kind, phone, title, content),
    )
    return operation_result(request)


async def _count_submission(request: web.Request, user_id: int) -> None:
    """Count this submission in the user's window; Throttled past the limit."""
    key = rkey(request.config_dict[settings_key], "feedback_rate", user_id)
    # The window starts at the first submission and is not extended by later ones (SET NX EX, then INCR).
    async with request.config_dict[redis_key].pipeline(transaction=True) as pipe:
        pipe.set(key, 0, ex=RATE_WINDOW, nx=True)
        pipe.incr(key)
        _, count = await pipe.execute()
    if count > RATE_LIMIT:
        raise Throttled("提交过于频繁")
