"""会员业务: the membership product — name, price in yuan (stored in fen), years, stock, on sale or not."""

from __future__ import annotations

import decimal
import typing

import wtforms
from aiohttp import web

from ..keys import pg_key
from ..lib import formats
from ..services import products
from ..services.editing import ListQuery
from .crud import Section
from .forms import OPTIONAL, REQUIRED, AdminForm, length, number_range
from .render import Column

routes = web.RouteTableDef()


def to_fen(yuan: decimal.Decimal | None) -> int:
    return 0 if yuan is None else int((yuan * 100).to_integral_value(decimal.ROUND_HALF_UP))


def to_yuan(fen: int | None) -> decimal.Decimal:
    return decimal.Decimal(formats.fmt_money(fen))


def two_decimals(form: wtforms.Form, field: wtforms.Field) -> None:
    if field.data is not None and field.data.as_tuple().exponent < -2:
        raise wtforms.ValidationError("最多两位小数")


class ProductForm(AdminForm):
    title = wtforms.StringField("名称", [REQUIRED, length(100, 1)])
    price = wtforms.DecimalField("价格（元）", [REQUIRED, number_range(0.01, 100000), two_decimals], places=2)
    cost = wtforms.DecimalField("原价（元）", [OPTIONAL, number_range(0, 100000), two_decimals], places=2,
                                description="划线价，可留空")
    valid_time = wtforms.IntegerField("有效期（年）", [REQUIRED, number_range(1, 10)], default=1)
    amount = wtforms.IntegerField("库存", [REQUIRED, number_range(0, 10_000_000)], default=10000)
    sort = wtforms.IntegerField("排序", [OPTIONAL, number_range(-9999, 9999)], default=0,
                                description="多个在售时，H5 显示排序最前的一个")
    remark = wtforms.StringField("备注", [length(200)])
    content = wtforms.TextAreaField("介绍（富文本）", [length(20000)])


class ProductSection(Section):
    slug, title, noun = "products", "会员业务", "会员业务"
    form_class = ProductForm
    switch = ("上架", "停售")
    state_labels = ("在售", "已停售")
    search_hint = "名称或备注"
    columns = [
        Column("名称", "title", "title", kind="link"),
        Column("价格（元）", "price", "price", kind="money"),
        Column("有效期（年）", "valid_time"),
        Column("库存", "amount"),
        Column("排序", "sort", "sort"),
        Column("状态", "status", kind="status"),
    ]
    sorts = tuple(products.SORTS)

    async def list_rows(self, app: web.Application, query: ListQuery) -> tuple[list[typing.Any], int]:
        return await products.list_products(app[pg_key], query)

    async def get_row(self, app: web.Application, ident: int) -> typing.Any:
        return await products.get_product(app[pg_key], ident)

    def form_data(self, row: typing.Any) -> dict[str, typing.Any]:
        return {**row, "price": to_yuan(row["price"]), "cost": to_yuan(row["cost"]) if row["cost"] else None}

    def _values(self, form: typing.Any) -> dict[str, typing.Any]:
        return {"title": form.title.data.strip(), "price": to_fen(form.price.data), "cost": to_fen(form.cost.data),
                "valid_time": form.valid_time.data, "amount": form.amount.data, "sort": form.sort.data or 0,
                "remark": form.remark.data, "content": form.content.data}

    async def create(self, request: web.Request, form: typing.Any) -> int:
        return await products.create_product(request.config_dict, self._values(form))

    async def update(self, request: web.Request, ident: int, form: typing.Any, row: typing.Any) -> None:
        await products.update_product(request.config_dict, ident, self._values(form))

    async def switch_on(self, app: web.Application, ident: int, on: bool) -> None:
        await products.enable_product(app, ident, on)

    async def delete(self, app: web.Application, ident: int) -> None:
        await products.delete_product(app, ident)


section = ProductSection()
section.add_routes(routes)
