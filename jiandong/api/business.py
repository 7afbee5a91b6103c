"""Endpoint 8: the membership product on sale (business/joinus)."""

from __future__ import annotations

from aiohttp import web

from ..errors import BusinessNotFound
from ..keys import pg_key
from ..services.orders import product_view
from ..store import db
from ..web.openapi import describe, integer, obj, string
from ..web.responses import json_response

routes = web.RouteTableDef()

PRODUCT = obj(
    "会员业务",
    id=integer("业务ID"),
    s_id=integer("业务分类ID，无分类为 0"),
    title=string("业务标题"),
    cost=string("原价（元，两位小数）", examples=["299.00"]),
    price=string("现价（元，两位小数）", examples=["199.00"]),
    content=string("内容（HTML）"),
    remark=string("备注"),
    num=string("编号"),
    valid_time=integer("有效期（年）"),
    amount=integer("库存数"),
    specs=string("规格"),
    people=integer("享有人数"),
    audit_time=string("审核时间，无则为空字符串"),
    istui=integer("是否热销业务 0/1"),
)

# The admin's order decides which product the page shows when several are on sale.
JOINUS_SQL = """
    SELECT id, s_id, title, cost, price, content, remark, num, valid_time, amount, specs, people, audit_time, istui
    FROM businesses WHERE status = 1
    ORDER BY sort, id LIMIT 1
"""


@routes.get("/api/v1/business/joinus")
@describe(
    "加入会员业务介绍",
    tag="会员订单",
    response=PRODUCT,
    errors=[BusinessNotFound],
    description="在售的会员业务（多个在售时取排序最前的一个）。售罄时照常返回，amount 为 0，下单返回 20000。",
)
async def get_joinus(request: web.Request) -> web.Response:
    row = await db.fetchone(request.config_dict[pg_key], JOINUS_SQL)
    if row is None:
        raise BusinessNotFound("当前没有在售的会员业务")
    return json_response(product_view(row))
