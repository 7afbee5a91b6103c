"""轮播图: banners — picture, position (球员中心 / 赛事中心 / 资讯中心), order, link, enabled."""

from __future__ import annotations

import typing

import wtforms
from aiohttp import web

from ..keys import pg_key
from ..services import banners
from ..services.editing import Invalid, ListQuery
from .crud import Section, field_values
from .forms import OPTIONAL, AdminForm, length, number_range
from .inputs import url_rule
from .render import Column

routes = web.RouteTableDef()


class BannerForm(AdminForm):
    title = wtforms.StringField("标题", [length(100)])
    position = wtforms.SelectField("位置", choices=dict(banners.POSITIONS), coerce=int, default=1)
    image = wtforms.FileField("图片", description="JPEG 或 PNG，建议 750×300")
    jump_url = wtforms.StringField("链接", [OPTIONAL, length(500), url_rule], description="点击后打开的地址，可留空")
    sort = wtforms.IntegerField("排序", [OPTIONAL, number_range(-9999, 9999)], default=0, description="数字小的在前")
    description = wtforms.TextAreaField("描述", [length(500)])


class BannerSection(Section):
    slug, title, noun = "banners", "轮播图", "轮播图"
    form_class = BannerForm
    image = ("image", "img_url")
    switch = ("启用", "停用")
    state_labels = ("已启用", "已停用")
    multipart = True
    search_hint = "标题或描述"
    columns = [
        Column("图片", "img_url", kind="image"),
        Column("标题", "title", "title", kind="link"),
        Column("位置", "position_label", "position"),
        Column("排序", "sort", "sort"),
        Column("状态", "status", kind="status"),
    ]
    sorts = tuple(banners.SORTS)

    async def list_rows(self, app: web.Application, query: ListQuery) -> tuple[list[typing.Any], int]:
        rows, total = await banners.list_banners(app[pg_key], query)
        labelled = [{**row, "position_label": banners.POSITIONS.get(row["position"], row["position"])} for row in rows]
        return labelled, total

    async def get_row(self, app: web.Application, ident: int) -> typing.Any:
        return await banners.get_banner(app[pg_key], ident)

    async def create(self, request: web.Request, form: typing.Any) -> int:
        if not form.image.data:
            raise Invalid("请上传图片", "image")
        image = form.image.data
        values = {**field_values(form, ("title", "description", "position", "jump_url")), "sort": form.sort.data or 0}
        return await banners.create_banner(request.config_dict, values, image)

    async def update(self, request: web.Request, ident: int, form: typing.Any, row: typing.Any) -> None:
        image = form.image.data
        values = {**field_values(form, ("title", "description", "position", "jump_url")), "sort": form.sort.data or 0}
        await banners.update_banner(request.config_dict, ident, values, image)

    async def switch_on(self, app: web.Application, ident: int, on: bool) -> None:
        await banners.enable_banner(app, ident, on)

    async def delete(self, app: web.Application, ident: int) -> None:
        await banners.delete_banner(app, ident)


section = BannerSection()
section.add_routes(routes)
