"""配置项: the config values the H5 pages read (services/configs.PAGE_CODES) — plain text (titles, ICP,
copyright) and rich text (the agreements, sanitised), each with the page that reads it and, for rich text, a
preview as the pages get it. Other codes are not this section's: the banned words are kept by chat moderation
(admin/chat.py); legacy codes and the demo's markers are only listed, with ?all=1."""

from __future__ import annotations

import re
import typing

import wtforms
from aiohttp import web

from ..keys import pg_key
from ..services import configs
from ..services.editing import ListQuery, clean_html
from .crud import Section
from .errors import PageError
from .forms import REQUIRED, AdminForm, length
from .render import Column, ListPage, list_query, render

routes = web.RouteTableDef()
TAG = re.compile(r"<[^>]*>")


def text_of(value: str) -> str:
    """A value's text for the list (tags dropped; the template escapes what is left)."""
    return " ".join(TAG.sub(" ", value).split())


class ConfigForm(AdminForm):
    name = wtforms.StringField("名称", [length(100)])
    value = wtforms.TextAreaField("值", [length(50000)])


class NewConfigForm(ConfigForm):
    code = wtforms.StringField("编码", [REQUIRED, length(100, 1)],
                               description="H5 页面以此编码读取：" + "；".join(
                                   f"{code}（{page}）" for code, page in configs.PAGE_CODES.items()))
    rich = wtforms.BooleanField("富文本（HTML，保存时去除不安全内容）")


class ConfigSection(Section):
    slug, title, noun = "configs", "配置项", "配置项"
    form_class = ConfigForm
    switch = None
    can_delete = False
    search_hint = "编码、名称或内容"
    list_template = "admin/configs.html"
    edit_template = "admin/config.html"
    id_pattern = r"[A-Za-z][A-Za-z0-9_.-]{0,99}"
    columns = [
        Column("编码", "code", "code", kind="link", note="page"),
        Column("名称", "name", "name"),
        Column("类型", "kind"),
        Column("内容", "preview"),
        Column("更新时间", "updated_at", "updated_at", kind="time"),
    ]
    sorts = tuple(configs.SORTS)

    def ident(self, request: web.Request) -> str:
        code = request.match_info["id"]
        # Codes the pages do not read are not this section's: as unknown as a code nobody made.
        if not configs.is_page_code(code):
            raise PageError(404)
        return code

    async def list_rows(self, app: web.Application, query: ListQuery) -> tuple[list[typing.Any], int]:
        rows, total = await configs.list_configs(app[pg_key], query)
        return [{**row, "id": row["code"], "kind": "富文本" if row["rich"] else "文本",
                 "page": "读取：" + configs.PAGE_CODES[row["code"]],
                 "preview": text_of(clean_html(row["value"]) if row["rich"] else row["value"])[:40]}
                for row in rows], total

    async def list_page(self, request: web.Request) -> web.Response:
        query = list_query(request, self.sorts)
        pool = request.config_dict[pg_key]
        rows, total = await self.list_rows(request.config_dict, query)
        show_all = request.query.get("all") == "1"
        context = {"section": self, "page": ListPage(rows, total, query, self.columns, self.base),
                   "missing": [(code, configs.PAGE_CODES[code]) for code in await configs.missing_page_codes(pool)],
                   "show_all": show_all, "others": await configs.legacy_configs(pool) if show_all else []}
        return await render(request, self.list_template, context)

    async def extra(self, request: web.Request, row: typing.Any) -> dict[str, typing.Any]:
        if row is None:
            return {}
        # What config/value answers: the value sanitised on save; sanitised again here in case it was not.
        return {"reads": configs.PAGE_CODES[row["code"]], "preview": clean_html(row["value"]) if row["rich"] else None}

    async def get_row(self, app: web.Application, ident: typing.Any) -> typing.Any:
        row = await configs.get_config(app[pg_key], ident)
        return row and {**row, "id": row["code"]}

    async def make_form(self, request: web.Request, row: typing.Any, formdata: typing.Any = None) -> typing.Any:
        if row is not None:
            return ConfigForm(formdata, data=row if formdata is None else None)
        # The list's 未设置 links name the code to create.
        code = request.query.get("code", "")
        return NewConfigForm(formdata, data={"code": code, "name": configs.PAGE_CODES[code].rsplit("：", 1)[-1],
                                             "rich": code.endswith("_agreement")}
                             if formdata is None and configs.is_page_code(code) else None)

    async def create(self, request: web.Request, form: typing.Any) -> str:
        code = form.code.data.strip()
        await configs.create_config(request.config_dict, code, form.name.data.strip(), form.value.data, form.rich.data)
        return code

    async def update(self, request: web.Request, ident: typing.Any, form: typing.Any, row: typing.Any) -> None:
        await configs.update_config(request.config_dict, ident, form.name.data.strip(), form.value.data)


section = ConfigSection()
section.add_routes(routes)
