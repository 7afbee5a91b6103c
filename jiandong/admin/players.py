"""球员卡: player cards — every field of member/info, the user it belongs to, the team history."""

from __future__ import annotations

import typing

import wtforms
from aiohttp import web

from ..keys import pg_key
from ..services import players, teams
from ..services.editing import Invalid, ListQuery
from .crud import Section, field_values
from .forms import OPTIONAL, REQUIRED, AdminForm, length, mobile_number, number_range
from .render import Column, ListPage, list_query, render

routes = web.RouteTableDef()

TEXT_FIELDS = ("cn_name", "birth_addr", "mobile", "native_place", "nation", "individual", "number", "position",
               "school", "experience", "feature", "honor", "comment")


NUMBER_RULE = "球衣号码须为 0~999 的数字"


class PlayerForm(AdminForm):
    cn_name = wtforms.StringField("中文名", [REQUIRED, length(50, 1)])
    # The pages print it as "23号": digits only.
    number = wtforms.StringField("球衣号码", [wtforms.validators.Regexp(r"^([0-9]{1,3})?$", message=NUMBER_RULE)],
                                 description="如 23；没有号码留空")
    position = wtforms.StringField("位置", [length(20)])
    sex = wtforms.SelectField("性别", choices={0: "保密", 1: "男", 2: "女"}, coerce=int, default=0)
    birthday = wtforms.DateField("出生日期", [OPTIONAL])
    birth_addr = wtforms.StringField("出生地点", [length(100)])
    mobile = wtforms.StringField("手机号码", [length(20), mobile_number])
    stature = wtforms.IntegerField("身高（厘米）", [OPTIONAL, number_range(50, 260)])
    weight = wtforms.DecimalField("体重（公斤）", [OPTIONAL, number_range(10, 300)], places=1)
    native_place = wtforms.StringField("籍贯", [length(50)])
    nation = wtforms.StringField("民族", [length(20)])
    photo_file = wtforms.FileField("个人近照", description="JPEG 或 PNG")
    school = wtforms.StringField("学校", [length(100)])
    individual = wtforms.TextAreaField("个人简介", [length(2000)])
    experience = wtforms.TextAreaField("成长经历", [length(2000)])
    feature = wtforms.TextAreaField("技术特点", [length(1000)])
    honor = wtforms.TextAreaField("个人荣誉", [length(1000)])
    comment = wtforms.TextAreaField("评价", [length(1000)])
    user_lookup = wtforms.StringField("关联用户", [length(100)],
                                      description="输入用户名、手机号或 openid 查找会员账号；留空则不关联")


class PlayerSection(Section):
    slug, title, noun = "players", "球员卡", "球员卡"
    form_class = PlayerForm
    image = ("photo_file", "photo")
    switch = ("启用", "停用")
    state_labels = ("已启用", "已停用")
    multipart = True
    search_hint = "姓名、号码、手机或用户名"
    edit_template = "admin/player.html"
    list_template = "admin/players.html"
    columns = [
        Column("近照", "photo", kind="image"),
        Column("姓名", "cn_name", "cn_name", kind="link"),
        Column("号码", "number", "number"),
        Column("位置", "position"),
        Column("当前球队", "team"),
        Column("关联用户", "user_name"),
        Column("状态", "status", kind="status"),
    ]
    sorts = tuple(players.CARD_SORTS)

    async def list_rows(self, app: web.Application, query: ListQuery) -> tuple[list[typing.Any], int]:
        return await players.list_cards(app[pg_key], query)

    async def list_page(self, request: web.Request) -> web.Response:
        """The list, filtered by team (?team=ID, or 0 for cards in no team) as well as searched."""
        pool = request.config_dict[pg_key]
        query = list_query(request, self.sorts)
        raw = request.query.get("team", "")
        team = int(raw) if raw.isdigit() and len(raw) < 19 else None
        rows, total = await players.list_cards(pool, query, team)
        page = ListPage(rows, total, query, self.columns, self.base, {} if team is None else {"team": team})
        return await render(request, self.list_template, {"section": self, "page": page, "team": team,
                                                          "teams": await teams.team_choices(pool),
                                                          "no_team": players.NO_TEAM})

    async def get_row(self, app: web.Application, ident: int) -> typing.Any:
        return await players.get_card(app[pg_key], ident)

    def form_data(self, row: typing.Any) -> dict[str, typing.Any]:
        return {**row, "user_lookup": row["user_mobile"] or (f"#{row['user_id']}" if row["user_id"] else "")}

    async def _values(self, request: web.Request, form: typing.Any) -> dict[str, typing.Any]:
        values = {**field_values(form, TEXT_FIELDS), "sex": form.sex.data, "birthday": form.birthday.data,
                  "stature": form.stature.data, "weight": form.weight.data,
                  "user_id": await self._user_id(request, form.user_lookup.data.strip())}
        values["number"] = values["number"].strip()
        if form.photo_file.data:
            values["photo"] = form.photo_file.data.url
        return values

    async def check(self, request: web.Request, form: typing.Any) -> list[tuple[str, str]]:
        try:
            await self._user_id(request, form.user_lookup.data.strip())
        except Invalid as exc:
            return [(exc.field, str(exc))]
        return []

    async def _user_id(self, request: web.Request, lookup: str) -> int | None:
        if not lookup:
            return None
        if lookup.startswith("#") and lookup[1:].isdigit():
            return int(lookup[1:])
        found = await players.find_users(request.config_dict[pg_key], lookup, limit=6)
        if not found:
            raise Invalid("没有找到这个用户", "user_lookup")
        exact = [u for u in found if lookup in (u["mobile"], u["openid"], u["username"])]
        if len(exact) == 1:
            return exact[0]["id"]
        if len(found) > 1:
            names = "、".join(f"{u['username']}（#{u['id']}）" for u in found[:5])
            raise Invalid(f"找到多个用户：{names}；请输入手机号、openid 或 #编号", "user_lookup")
        return found[0]["id"]

    async def create(self, request: web.Request, form: typing.Any) -> int:
        return await players.create_card(request.config_dict, await self._values(request, form))

    async def update(self, request: web.Request, ident: int, form: typing.Any, row: typing.Any) -> None:
        await players.update_card(request.config_dict, ident, await self._values(request, form))

    async def switch_on(self, app: web.Application, ident: int, on: bool) -> None:
        await players.enable_card(app, ident, on)

    async def delete(self, app: web.Application, ident: int) -> None:
        await players.delete_card(app, ident)

    async def extra(self, request: web.Request, row: typing.Any) -> dict[str, typing.Any]:
        history = await players.card_teams(request.config_dict[pg_key], row["id"]) if row else []
        return {"history": history}


section = PlayerSection()
section.add_routes(routes)
