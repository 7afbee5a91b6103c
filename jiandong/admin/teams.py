"""球队: teams — name, logo, description, order; members with their join and leave dates."""

from __future__ import annotations

import datetime as dt
import re
import typing

import wtforms
from aiohttp import web
from aiohttp_session import get_session

from ..keys import pg_key, settings_key
from ..services import players, teams
from ..services.admins import EDITOR
from ..services.editing import Invalid, ListQuery, NotFound
from .crud import Section
from .errors import PageError
from .forms import (
    OPTIONAL,
    REQUIRED,
    AdminForm,
    LocalDateTimeField,
    add_error,
    club_meta,
    keep_refused,
    length,
    number_range,
    read_form,
    refused_form,
)
from .render import PREFIX, Column, flash
from .security import requires

routes = web.RouteTableDef()


class TeamForm(AdminForm):
    name = wtforms.StringField("球队名称", [REQUIRED, length(50, 1)])
    logo_file = wtforms.FileField("队徽 LOGO", description="JPEG 或 PNG")
    description = wtforms.TextAreaField("简介", [length(2000)])
    sort = wtforms.IntegerField("排序", [OPTIONAL, number_range(-9999, 9999)], default=0, description="数字小的在前")


class MemberForm(AdminForm):
    # A search-as-you-type picker (static/picker.js fills the list): a choice reads "张三（23号）#12"; a name,
    # number or phone typed without choosing works when it names one card.
    player = wtforms.StringField("球员", [REQUIRED, length(100)], description="输入姓名、号码或手机号，从列表中选择",
                                 render_kw={"list": "player-options", "autocomplete": "off",
                                            "data-search": f"{PREFIX}/players/search"})
    joined_at = LocalDateTimeField("入队时间", [REQUIRED])


class LeaveForm(AdminForm):
    left_at = LocalDateTimeField("离队时间", [REQUIRED])


class TeamSection(Section):
    slug, title, noun = "teams", "球队", "球队"
    form_class = TeamForm
    image = ("logo_file", "logo")
    switch = ("启用", "停用")
    state_labels = ("已启用", "已停用")
    multipart = True
    search_hint = "球队名称或简介"
    edit_template = "admin/team.html"
    columns = [
        Column("队徽", "logo", kind="image"),
        Column("名称", "name", "name", kind="link"),
        Column("现有球员", "members", "members"),
        Column("排序", "sort", "sort"),
        Column("状态", "status", kind="status"),
    ]
    sorts = tuple(teams.SORTS)

    async def list_rows(self, app: web.Application, query: ListQuery) -> tuple[list[typing.Any], int]:
        return await teams.list_teams(app[pg_key], query)

    async def get_row(self, app: web.Application, ident: int) -> typing.Any:
        return await teams.get_team(app[pg_key], ident)

    async def _values(self, request: web.Request, form: typing.Any) -> dict[str, typing.Any]:
        values = {"name": form.name.data.strip(), "description": form.description.data, "sort": form.sort.data or 0}
        if form.logo_file.data:
            values["logo"] = form.logo_file.data.url
        return values

    async def create(self, request: web.Request, form: typing.Any) -> int:
        return await teams.create_team(request.config_dict, await self._values(request, form))

    async def update(self, request: web.Request, ident: int, form: typing.Any, row: typing.Any) -> None:
        await teams.update_team(request.config_dict, ident, await self._values(request, form))

    async def switch_on(self, app: web.Application, ident: int, on: bool) -> None:
        await teams.publish_team(app, ident, on)

    async def delete(self, app: web.Application, ident: int) -> None:
        await teams.delete_team(app, ident)

    async def extra(self, request: web.Request, row: typing.Any) -> dict[str, typing.Any]:
        if row is None:
            return {}
        pool = request.config_dict[pg_key]
        # The add-a-player form: refused just before (as typed, with why), or a new one.
        kept = refused_form(await get_session(request), f"{self.base}/{row['id']}",
                            {"member": lambda data: MemberForm(data, meta=club_meta(request))})
        member_form = kept[1] if kept else MemberForm(
            data={"joined_at": dt.datetime.now(request.config_dict[settings_key].tz)}, meta=club_meta(request))
        return {"members": await teams.team_members(pool, row["id"]),
                "member_form": member_form, "leave_form": LeaveForm(
                    data={"left_at": dt.datetime.now(request.config_dict[settings_key].tz)}, meta=club_meta(request))}


PICKED = re.compile(r"#([0-9]{1,18})")


async def picked_player(pool: typing.Any, text: str) -> int:
    """The card the picker's text names: a choice's `#id`, else the one card whose name, number or phone it is."""
    match = PICKED.search(text)
    if match and text.endswith(match.group(0)):
        return int(match.group(1))
    found = await players.search_cards(pool, text, limit=6)
    exact = [r for r in found if r["cn_name"] == text]
    if len(exact) == 1 or len(found) == 1:
        return (exact or found)[0]["id"]
    if not found:
        raise Invalid("没有找到这个球员：请输入姓名、号码或手机号，从列表中选择", "player")
    names = "、".join(f"{r['cn_name']}（#{r['id']}）" for r in found[:5])
    raise Invalid(f"找到多个球员：{names}；请从列表中选择", "player")


section = TeamSection()
section.add_routes(routes)


@routes.post(r"/teams/{id:[0-9]+}/members")
@requires(EDITOR)
async def add_team_member(request: web.Request) -> web.Response:
    ident, row = await section.load(request)
    form = MemberForm(await read_form(request), meta=club_meta(request))
    if form.validate():
        try:
            player_id = await picked_player(request.config_dict[pg_key], form.player.data)
            await teams.add_member(request.config_dict, ident, player_id, form.joined_at.data)
        except Invalid as exc:
            add_error(form, "player" if exc.field == "player_id" else exc.field, str(exc))
        else:
            await section.record(request, "member_add", ident, None, {"player_id": player_id,
                                                                     "joined_at": form.joined_at.data}, row)
            flash(await get_session(request), "球员已入队")
            raise web.HTTPFound(f"{section.base}/{ident}")
    # Back to the team's page with the form as typed and why (a reload there posts nothing).
    keep_refused(await get_session(request), f"{section.base}/{ident}", "member", form)
    raise web.HTTPSeeOther(f"{section.base}/{ident}#refused")


@routes.post(r"/teams/{id:[0-9]+}/members/{member:[0-9]+}/leave")
@requires(EDITOR)
async def end_team_membership(request: web.Request) -> web.Response:
    ident = section.ident(request)
    form = LeaveForm(await read_form(request), meta=club_meta(request))
    if not form.validate():
        raise PageError(400, "离队时间无效")
    try:
        await teams.end_membership(request.config_dict, ident, int(request.match_info["member"]), form.left_at.data)
    except NotFound:
        raise PageError(404, "该在队记录不存在或已离队") from None
    await section.record(request, "member_leave", ident, None, {"member": int(request.match_info["member"]),
                                                               "left_at": form.left_at.data},
                         await section.get_row(request.config_dict, ident))
    flash(await get_session(request), "已办理离队")
    raise web.HTTPFound(f"{section.base}/{ident}")
