"""赛事: matches — title, texts, score, cover, play time, hot flag, the teams that play."""

from __future__ import annotations

import datetime as dt
import typing

import wtforms
from aiohttp import web
from aiohttp_session import get_session

from ..keys import pg_key
from ..services import competitions, teams
from ..services.admins import EDITOR
from ..services.editing import ListQuery, NotFound
from .crud import Section, field_values
from .errors import PageError
from .forms import OPTIONAL, REQUIRED, AdminForm, LocalDateTimeField, MultiCheckboxField, length, number_range
from .render import Column, ListPage, flash, list_query, render
from .security import requires

routes = web.RouteTableDef()


class CompetitionForm(AdminForm):
    title = wtforms.StringField("标题", [REQUIRED, length(100, 1)])
    play_time = LocalDateTimeField("比赛时间", [REQUIRED])
    team_ids = MultiCheckboxField("参赛球队", coerce=int, validate_choice=True)
    summary = wtforms.TextAreaField("简介", [length(500)])
    score = wtforms.StringField("比分 / 结果", [length(50)],
                                description="如 86:79，赛前留空；录入比赛结果后，会员看到的比分按结果生成")
    cover = wtforms.FileField("封面图", description="JPEG 或 PNG")
    description = wtforms.TextAreaField(
        "赛事详情（富文本）", [length(20000)],
        description="可用 HTML 标签：p、h3、strong、img、table 等；保存时去除脚本等不安全内容")
    venue = wtforms.StringField("比赛地点", [length(100)], description="如 建东体育馆 2 号场；员工可见，会员页面不显示")
    notes = wtforms.StringField("备注", [length(500)])
    is_hot = wtforms.BooleanField("热门赛事")
    capacity = wtforms.IntegerField("报名人数上限", [OPTIONAL, number_range(1, 100_000)],
                                    description="留空为不限；满员后会员不能再报名（员工仍可添加）")
    apply_deadline = LocalDateTimeField("报名截止时间", [OPTIONAL],
                                        description="留空则比赛开始前均可报名；须不晚于比赛时间")

    def validate_apply_deadline(self, field: wtforms.Field) -> None:
        if field.data and self.play_time.data and field.data > self.play_time.data:
            raise wtforms.ValidationError("报名截止时间须不晚于比赛时间")


FIELDS = ("title", "summary", "description", "score", "play_time", "notes", "capacity", "apply_deadline", "venue")


class CompetitionSection(Section):
    slug, title, noun = "competitions", "赛事", "赛事"
    form_class = CompetitionForm
    image = ("cover", "main_img_url")
    multipart = True
    search_hint = "标题、简介或比分"
    edit_template = "admin/competition.html"
    list_template = "admin/competitions.html"
    columns = [
        Column("封面", "main_img_url", kind="image"),
        Column("标题", "title", "title", kind="link"),
        Column("比赛时间", "play_time", "play_time", kind="time"),
        Column("球队", "team_names"),
        Column("比分", "result"),
        Column("报名", "signups"),
        Column("状态", "status", "status", kind="status"),
    ]
    sorts = tuple(competitions.SORTS)

    async def list_rows(self, app: web.Application, query: ListQuery) -> tuple[list[typing.Any], int]:
        return await competitions.list_competitions(app[pg_key], query)

    async def list_page(self, request: web.Request) -> web.Response:
        """The list, filtered by time and result (?when=upcoming|finished|unscored) and team (?team=ID)."""
        pool = request.config_dict[pg_key]
        query = list_query(request, self.sorts)
        when = request.query.get("when", "")
        when = when if when in competitions.WHEN else ""
        raw = request.query.get("team", "")
        team = int(raw) if raw.isdigit() and 0 < len(raw) < 19 else None
        rows, total = await competitions.list_competitions(pool, query, when or None, team)
        extra = {k: v for k, v in (("when", when), ("team", team)) if v}
        page = ListPage(rows, total, query, self.columns, self.base, extra)
        return await render(request, self.list_template, {
            "section": self, "page": page, "when": when, "team": team, "whens": competitions.WHEN,
            "teams": await teams.team_choices(pool)})

    async def get_row(self, app: web.Application, ident: int) -> typing.Any:
        return await competitions.get_competition(app[pg_key], ident)

    async def prepare(self, request: web.Request, form: typing.Any, row: typing.Any) -> None:
        form.team_ids.choices = dict(await teams.team_choices(request.config_dict[pg_key]))
        if form.team_ids.data is None:
            form.team_ids.data = []

    async def _values(self, request: web.Request, form: typing.Any) -> dict[str, typing.Any]:
        values = {**field_values(form, FIELDS), "is_hot": int(form.is_hot.data)}
        if form.cover.data:
            values["main_img_url"] = form.cover.data.url
        return values

    async def create(self, request: web.Request, form: typing.Any) -> int:
        return await competitions.create_competition(request.config_dict, await self._values(request, form),
                                                     form.team_ids.data)

    async def update(self, request: web.Request, ident: int, form: typing.Any, row: typing.Any) -> None:
        await competitions.update_competition(request.config_dict, ident, await self._values(request, form),
                                              form.team_ids.data)

    async def switch_on(self, app: web.Application, ident: int, on: bool) -> None:
        await competitions.publish_competition(app, ident, on)

    async def delete(self, app: web.Application, ident: int) -> None:
        await competitions.delete_competition(app, ident)


section = CompetitionSection()
section.add_routes(routes)


# A copy plays a week later: the next round of a weekly league, at the same place, with the same teams.
COPY_AFTER = dt.timedelta(days=7)


@routes.post(r"/competitions/{id:[0-9]+}/copy")
@requires(EDITOR)
async def copy_competition(request: web.Request) -> web.Response:
    ident, row = await section.load(request)
    try:
        copy_id = await competitions.copy_competition(request.config_dict, ident, row["play_time"] + COPY_AFTER)
    except NotFound:
        raise PageError(404, "赛事不存在") from None
    await section.record(request, "copy", copy_id, None, {"copied_from": ident}, row)
    flash(await get_session(request), "已复制为草稿，比赛时间顺延 7 天：请核对标题和时间后发布")
    raise web.HTTPFound(f"{section.base}/{copy_id}")
