"""The current user's player card: member/info."""

from __future__ import annotations

import typing

from aiohttp import web

from ..errors import MemberNotFound
from ..keys import pg_key
from ..lib import formats
from ..services.players import player_profile
from ..store import media
from ..web.auth import current_user_id
from ..web.openapi import describe, integer, obj, string
from ..web.responses import json_response

routes = web.RouteTableDef()


# What the player-info page prints for these fields (its template, which we serve unchanged):
#   年龄：{{age}}岁 unless age is the number 0, then "-"      -> an unknown age is 0 (no birthday)
#   身高：{{stature}}cm / 体重：{{weight}}kg unless the value is the string "0", then "-"
#                                                            -> an unset measure is "0"; a set one a number
#   {{order_id}}号 beside the position, "-" when ""           -> order_id is the jersey number (as `number`)
UNKNOWN_AGE = 0
UNSET_MEASURE = "0"


def _measure(value: typing.Any) -> typing.Any:
    return UNSET_MEASURE if value is None else value


def _number_or_zero_text(kind: str, description: str) -> dict[str, typing.Any]:
    return {"oneOf": [{"type": kind}, {"type": "string", "enum": [UNSET_MEASURE]}], "description": description}


PLAYER_INFO = obj(
    "球员信息",
    cn_name=string("中文名"),
    birthday=string("出生日期 YYYY-MM-DD，未填为空字符串"),
    birth_addr=string("出生地点"),
    mobile=string("手机号码"),
    age=integer("年龄（按俱乐部时区计算的周岁），无出生日期为 0（页面显示“-”）"),
    sex=string("性别：保密 / 男 / 女"),
    sex_value=integer("性别：0 保密，1 男，2 女"),
    stature=_number_or_zero_text("integer", "身高（厘米），未填为字符串 \"0\"（页面显示“-”）"),
    weight=_number_or_zero_text("number", "体重（公斤，一位小数），未填为字符串 \"0\"（页面显示“-”）"),
    native_place=string("籍贯"),
    nation=string("民族"),
    photo=string("个人近照 URL"),
    individual=string("个人简介"),
    team=string("当前所属球队名称，无则为空字符串"),
    number=string("球衣号码"),
    position=string("位置"),
    school=string("学校"),
    experience=string("成长经历"),
    feature=string("技术特点"),
    honor=string("个人荣誉"),
    comment=string("评价"),
    order_id=string("球衣号码（同 number；球员信息页在位置旁显示为“{order_id}号”），无则为空字符串"),
    head_img=string("用户头像 URL（同 user/info），没有头像时为本站的默认头像，从不为空"),
)


@routes.get("/api/v1/member/info")
@describe(
    "获取球员信息",
    tag="球员",
    response=PLAYER_INFO,
    errors=[MemberNotFound],
    description=(
        "会员即球员：成为会员的那笔支付在同一事务中为用户建立球员信息，预填已知内容（绑定的手机号、性别，"
        "中文名暂用用户名），其余字段未填，由俱乐部工作人员补全：文字为空字符串，年龄为 0，身高、体重为字符串 \"0\""
        "（球员信息页对这几个值显示“-”）。order_id 为球衣号码（与 number 相同）。"
        "从未成为会员的用户、以及被工作人员禁用的球员信息答 404 + 30002。"
    ),
)
async def get_member_info(request: web.Request) -> web.Response:
    row = await player_profile(request.config_dict[pg_key], current_user_id(request))
    text = formats.text
    number = text(row["number"])
    return json_response(
        {
            "cn_name": text(row["cn_name"]),
            "birthday": formats.fmt_date(row["birthday"]),
            "birth_addr": text(row["birth_addr"]),
            "mobile": text(row["mobile"]),
            "age": UNKNOWN_AGE if row["age"] is None else row["age"],
            "sex": formats.sex_label(row["sex"]),
            "sex_value": row["sex"],
            "stature": _measure(row["stature"]),
            # numeric(5, 1) arrives as Decimal, which JSON has no type for
            "weight": _measure(None if row["weight"] is None else float(row["weight"])),
            "native_place": text(row["native_place"]),
            "nation": text(row["nation"]),
            "photo": text(row["photo"]),
            "individual": text(row["individual"]),
            "team": text(row["team"]),
            "number": number,
            "position": text(row["position"]),
            "school": text(row["school"]),
            "experience": text(row["experience"]),
            "feature": text(row["feature"]),
            "honor": text(row["honor"]),
            "comment": text(row["comment"]),
            "order_id": number,
            "head_img": media.avatar(row["head_img"]),
        }
    )
