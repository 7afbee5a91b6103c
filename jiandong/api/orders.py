"""Endpoints 9-13: commit, cancel, read, close and list the user's membership orders."""

from __future__ import annotations

import typing

from aiohttp import web

from ..errors import (
    BusinessNotFound,
    Forbidden,
    OrderNotCancellable,
    OrderNotClosable,
    OrderNotFound,
    OrderNotOwned,
    ParameterError,
    PhoneNotBound,
    UserNotFound,
)
from ..lib import formats
from ..services import orders
from ..services.order_status import CANCELLED, CLOSED
from ..store import db
from ..web.auth import current_user_id
from ..web.fields import Int, Paged, PathId, Spec, Text
from ..web.openapi import array, describe, integer, obj, page_of, string
from ..web.params import MAX_ID
from ..web.responses import json_response, operation_result, page_body
from .order_id import OrderRef

routes = web.RouteTableDef()

NAME_MAX = 64
STATUS_TEXT = "订单状态：-1 已关闭，0 待支付，1 已支付，2 已超时，3 退款中，4 已退款，5 已取消"
# How cancel and close treat an order with a prepay (services/orders.py end_by_user).
END_AT_WECHAT = (
    "已发起支付（调用过 pay/pre_order）的订单：微信支付在下单 5 分钟内不允许关单，此时先向微信支付查询是否已支付，"
    "之后由后台任务在微信支付关单；超过 5 分钟则立即在微信支付关单，微信支付暂时无法关单时同样由后台任务稍后关单。"
    "微信支付表示订单已支付时返回冲突错误（msg 为“...: 订单已经支付过”），订单不变，付款随后入账。"
    "订单结束后仍到达的付款照常入账（订单变为已支付），不会丢失。"
)

ORDER_FIELDS: dict[str, typing.Any] = {
    "id": integer("订单ID"),
    "order_no": string("订单号"),
    "count": integer("业务数量"),
    "price": string("业务单价（元）", examples=["199.00"]),
    "total_price": string("应付金额（元）"),
    "business_id": integer("业务ID"),
    "name": string("订单标题"),
    "pay_amount": string("订单支付金额（元），未支付为 0.00"),
    "pay_time": string("支付时间，未支付为空字符串"),
    "pay_way": string("支付方式，未支付为空字符串"),
    "remark": string("备注"),
    "status": integer(STATUS_TEXT, enum=[-1, 0, 1, 2, 3, 4, 5]),
    "coupon": string("优惠券"),
    "phone": string("预留手机号码"),
    "discounts": string("优惠金额（元）"),
    "create_time": string("提交订单时间"),
}
SNAPSHOT_ITEM = obj(
    "下单时的业务",
    id=integer("业务ID"),
    s_id=integer("业务分类ID"),
    title=string("业务标题"),
    cost=string("原价（元）"),
    price=string("现价（元）"),
    content=string("内容"),
    remark=string("备注"),
    num=string("编号"),
    valid_time=integer("有效期（年）"),
    specs=string("规格"),
    people=integer("享有人数"),
    audit_time=string("审核时间"),
    istui=integer("是否热销业务"),
    count=integer("数量"),
    total_price=string("小计（元）"),
)
ORDER_LIST_ITEM = obj("订单", **ORDER_FIELDS)
ORDER_DETAIL = obj("订单详情", **ORDER_FIELDS, snap_items=array(SNAPSHOT_ITEM, "业务快照"))


def order_body(row: db.Row, *, detail: bool = False) -> dict[str, typing.Any]:
    body = {
        "id": row["id"],
        "order_no": row["order_no"],
        "count": row["count"],
        "price": formats.fmt_money(row["price"]),
        "total_price": formats.fmt_money(row["total_price"]),
        # 0: a membership granted by staff (kind manual) may have no product.
        "business_id": row["business_id"] or 0,
        "name": row["name"],
        "pay_amount": formats.fmt_money(row["pay_amount"]),
        "pay_time": formats.fmt_time(row["pay_time"]),
        "pay_way": row["pay_way"],
        "remark": row["remark"],
        "status": row["status"],
        "coupon": row["coupon"],
        "phone": row["phone"],
        "discounts": formats.fmt_money(row["discounts"]),
        "create_time": formats.fmt_time(row["create_time"]),
    }
    if detail:
        body["snap_items"] = row["snap_items"]
    return body


class CommitParams(Spec):
    business_id = Int("业务ID", minimum=1, maximum=MAX_ID)
    name = Text(f"订单标题（非必要，默认为业务标题，最多 {NAME_MAX} 个字符）", max_length=NAME_MAX)


@routes.post("/api/v1/order/commit")
@describe(
    "提交订单",
    tag="会员订单",
    params=CommitParams,
    response=obj(
        "新订单",
        id=integer("订单ID"),
        order_no=string("订单号"),
        total_price=string("应付金额（元）", examples=["199.00"]),
        name=string("订单标题"),
        create_time=string("订单提交时间"),
    ),
    errors=[ParameterError, UserNotFound, Forbidden, PhoneNotBound, BusinessNotFound],
    description=(
        "为一份业务下单：价格取自业务，库存减一（并发下不会超卖），订单保存业务快照。"
        "同一用户对同一业务已有待支付的订单时返回该订单（重复点击不会重复下单）。"
        "未绑定手机号返回 10011；会员资格被禁用返回 10001；业务不存在、已下架或库存不足返回 20000（msg 说明是哪一种）。"
        "待支付订单超过配置的时间（默认 30 分钟）未支付即超时（状态 2），库存归还；"
        "离超时已不足 6 分钟（来不及向微信支付下单）的待支付订单不再返回，而是新建订单。"
    ),
)
async def commit_order(request: web.Request) -> web.Response:
    p = await CommitParams.read(request)
    row = await orders.commit(request.app, current_user_id(request), p.business_id, p.name)
    return json_response({
        "id": row["id"],
        "order_no": row["order_no"],
        "total_price": formats.fmt_money(row["total_price"]),
        "name": row["name"],
        "create_time": formats.fmt_time(row["create_time"]),
    })


@routes.post("/api/v1/order/cancel")
@describe(
    "订单取消",
    tag="会员订单",
    params=OrderRef,
    errors=[ParameterError, OrderNotFound, OrderNotOwned, OrderNotCancellable],
    description=(
        "取消本人待支付的订单（状态 5），立即生效，库存归还。" + END_AT_WECHAT
    ),
)
async def cancel_order(request: web.Request) -> web.Response:
    p = await OrderRef.read(request)
    await orders.end_by_user(
        request.app, current_user_id(request), p.id, CANCELLED, OrderNotCancellable
    )
    return operation_result(request)


@routes.post("/api/v1/order/close")
@describe(
    "关闭订单",
    tag="会员订单",
    params=OrderRef,
    errors=[ParameterError, OrderNotFound, OrderNotOwned, OrderNotClosable],
    description=(
        "关闭本人待支付的订单（状态 -1），立即生效，库存归还。" + END_AT_WECHAT
    ),
)
async def close_order(request: web.Request) -> web.Response:
    p = await OrderRef.read(request)
    await orders.end_by_user(request.app, current_user_id(request), p.id, CLOSED, OrderNotClosable)
    return operation_result(request)


@routes.get("/api/v1/order/by_user")
@describe(
    "获取当前用户所有订单",
    tag="会员订单",
    params=Paged,
    response=page_of(ORDER_LIST_ITEM),
    errors=[ParameterError],
    description="本人的订单，新的在前，分页。",
)
async def list_user_orders(request: web.Request) -> web.Response:
    p = await Paged.read(request)
    page, size = p.page, p.size
    rows, total = await orders.user_orders(request.app, current_user_id(request), page, size)
    return json_response(page_body([order_body(row) for row in rows], total, page, size))


class OrderPath(Spec):
    id = PathId("订单ID")


@routes.get(r"/api/v1/order/{id:[0-9]+}")
@describe(
    "订单详情",
    tag="会员订单",
    params=OrderPath,
    response=ORDER_DETAIL,
    errors=[OrderNotFound, OrderNotOwned],
)
async def get_order(request: web.Request) -> web.Response:
    order_id = (await OrderPath.read(request)).id
    if order_id > 2**62:
        raise OrderNotFound()
    row = await orders.owned_order(request.app, current_user_id(request), order_id)
    return json_response(order_body(row, detail=True))
