"""订单: the filtered list with totals and its CSV / XLSX export, one order with its payment notifications,
reconciliation queries and refunds; ask WeChat Pay now, close an unpaid order, refund (owners only)."""

from __future__ import annotations

import math
import typing
from urllib.parse import urlencode

from aiohttp import web
from aiohttp_session import get_session

from ..errors import ApiError, OrderNotPayable
from ..integrations.wechatpay import PayError
from ..keys import admin_key, pg_key, settings_key
from ..lib import formats
from ..services import audit, order_search, orders, payments, refunds
from ..services.admins import EDITOR, OWNER
from ..services.order_search import KIND_LABELS, STATUS_LABELS, OrderFilter
from ..services.order_status import AWAITING, CLOSED
from ..web.public_urls import refund_notify_url
from .errors import PageError
from .exports import Fen, sheet_download, table
from .forms import keep_typed, read_form, take_typed
from .inputs import parse_yuan, path_id, query_date
from .render import PAGE_SIZE, flash, render
from .security import actor, requires

routes = web.RouteTableDef()
BASE = "/admin/orders"


def order_filter(query: typing.Mapping[str, str]) -> OrderFilter:
    """The list's filter from the query string; anything malformed is left out."""
    status = query.get("status", "")
    kind = query.get("kind", "")
    return OrderFilter(
        status=int(status) if status.lstrip("-").isdigit() and int(status) in STATUS_LABELS else None,
        date_from=query_date(query, "from", "开始日期"), date_to=query_date(query, "to", "结束日期"),
        user=query.get("user", "").strip()[:100],
        amount_min=parse_yuan(query.get("min", "")), amount_max=parse_yuan(query.get("max", "")),
        kind=kind if kind in KIND_LABELS else "",
    )


def filter_params(query: typing.Mapping[str, str]) -> dict[str, str]:
    return {k: query[k] for k in ("status", "from", "to", "user", "min", "max", "kind") if query.get(k)}


@routes.get("/orders")
@requires(EDITOR)
async def list_orders(request: web.Request) -> web.Response:
    flt = order_filter(request.query)
    raw_page = request.query.get("page", "1")
    page = int(raw_page) if raw_page.isdigit() and 0 < int(raw_page) < 100_000 else 1
    rows, count, totals = await order_search.search_orders(request.config_dict[pg_key], flt, page, PAGE_SIZE)
    params = filter_params(request.query)
    return await render(request, "admin/orders.html", {
        "rows": rows, "count": count, "totals": totals, "page": page,
        "last_page": max(1, math.ceil(count / PAGE_SIZE)), "q": request.query, "params": params,
        "qs": urlencode(params), "statuses": STATUS_LABELS, "kinds": KIND_LABELS,
    })


EXPORT_COLUMNS = [
    ("订单号", lambda r: r["order_no"]),
    ("用户ID", lambda r: r["user_id"]),
    ("用户名", lambda r: r["username"]),
    ("手机", lambda r: r["mobile"] or ""),
    ("商品", lambda r: r["name"]),
    ("金额（元）", lambda r: Fen(r["total_price"] or 0)),
    ("实付（元）", lambda r: Fen(r["pay_amount"] or 0)),
    ("已退款（元）", lambda r: Fen(r["refunded"] or 0)),
    ("状态", lambda r: r["status_label"]),
    ("类型", lambda r: r["kind_label"]),
    ("下单时间", lambda r: r["create_time"]),
    ("支付时间", lambda r: r["pay_time"]),
    ("微信支付交易号", lambda r: r["transaction_id"] or ""),
    ("备注", lambda r: r["remark"]),
]


@routes.get(r"/orders/export.{fmt:(csv|xlsx)}")
@requires(EDITOR)
async def export_orders(request: web.Request) -> web.Response:
    """The filtered list, every row of it (not one page), as CSV or XLSX."""
    rows = await order_search.export_rows(request.config_dict[pg_key], order_filter(request.query))
    return sheet_download(request.match_info["fmt"], table(EXPORT_COLUMNS, rows), "订单", "订单",
                          request.config_dict[settings_key].tz)


async def _load(request: web.Request) -> typing.Any:
    order = await order_search.order_detail(request.config_dict[pg_key], path_id(request, missing="订单不存在"))
    if order is None:
        raise PageError(404, "订单不存在")
    return order


@routes.get(r"/orders/{id:[0-9]+}")
@requires(EDITOR)
async def order_page(request: web.Request) -> web.Response:
    order = await _load(request)
    pool = request.config_dict[pg_key]
    settings = request.config_dict[settings_key]
    history = await order_search.order_history(pool, order["id"])
    # A refused refund's amount and reason, shown once in the form to correct (never a refund made: the form
    # starts empty after one, so a second click cannot repeat it unseen).
    typed = take_typed(await get_session(request), f"{BASE}/{order['id']}")
    return await render(request, "admin/order.html", {
        "order": order, **history,
        "refunds": await refunds.order_refunds(pool, order["id"]),
        "refund_messages": await refunds.order_refund_messages(pool, order["id"]),
        "audit": await audit.for_target(pool, f"order:{order['id']}"),
        "refundable": order["pay_amount"] - order["refund_reserved"],
        "new_refund_no": refunds.new_refund_no(settings.tz),
        "can_refund": request[admin_key].role == OWNER,
        "refund_typed": {"amount": str(typed.get("amount", "")), "reason": str(typed.get("reason", ""))},
    })


@routes.post(r"/orders/{id:[0-9]+}/query")
@requires(EDITOR)
async def query_order(request: web.Request) -> web.Response:
    """Ask WeChat Pay now (orderquery): a payment it reports is applied like its notification."""
    order = await _load(request)
    session = await get_session(request)
    try:
        verdict = await payments.reconcile_order(request.config_dict, order["order_no"])
    except PayError as error:
        message, refused = f"微信支付查询失败：{error.reason}", True
    else:
        message, refused = ("微信支付确认已支付，订单已更新" if verdict and verdict.applied
                            else "微信支付确认已支付（此前已处理）" if verdict and verdict.ok
                            else "微信支付未报告支付成功"), False
    await audit.record_now(request.config_dict[pg_key], actor(request), "order.query", f"order:{order['id']}",
                           message)
    flash(session, message, refused=refused, todo="请稍后再查询一次。" if refused else "")
    raise web.HTTPFound(f"{BASE}/{order['id']}")


@routes.post(r"/orders/{id:[0-9]+}/close")
@requires(EDITOR)
async def close_order(request: web.Request) -> web.Response:
    """Close an order awaiting payment, as its buyer's close does (and at WeChat Pay when it allows)."""
    order = await _load(request)
    if order["status"] != AWAITING:
        raise PageError(409, "只能关闭待支付的订单")
    try:
        await orders.end_by_user(request.config_dict, order["user_id"], order["id"], CLOSED, OrderNotPayable)
    except ApiError as exc:
        flash(await get_session(request), f"未能关闭：{exc.msg}", refused=True,
              todo="请先查询支付状态，稍后再试。")
    else:
        await audit.record_now(request.config_dict[pg_key], actor(request), "order.close", f"order:{order['id']}",
                               "", before={"status": order["status"]}, after={"status": CLOSED})
        flash(await get_session(request), "订单已关闭")
    raise web.HTTPFound(f"{BASE}/{order['id']}")


@routes.post(r"/orders/{id:[0-9]+}/refund")
@requires(OWNER)
async def refund_order(request: web.Request) -> web.Response:
    """A refund of all or part of the payment (owners only). The form's out_refund_no makes a second post
    of the same form the same refund."""
    order = await _load(request)
    form = await read_form(request)
    amount = parse_yuan(form.get("amount"))
    session = await get_session(request)
    out_refund_no = form.get("out_refund_no").strip()
    if amount is None or amount <= 0:
        flash(session, "退款金额无效。", refused=True, todo="请填写大于 0 的金额（元，最多两位小数）。")
    elif not refunds.OUT_REFUND_NO.fullmatch(out_refund_no):
        flash(session, "退款单号无效。", refused=True, todo="请刷新页面后重试。")
    else:
        try:
            refund_id = await refunds.request_refund(request.config_dict, actor(request), order["id"], amount,
                                                     form.get("reason"), out_refund_no,
                                                     refund_notify_url(request.config_dict[settings_key]))
        except refunds.RefundRefused as exc:
            flash(session, f"不能退款：{exc}", refused=True, todo="请核对可退金额后重新填写；未退任何款项。")
        else:
            flash(session, await _refund_state(request, refund_id))
            raise web.HTTPFound(f"{BASE}/{order['id']}")
    keep_typed(session, f"{BASE}/{order['id']}", {"amount": form.get("amount")[:20], "reason": form.get("reason")[:80]})
    raise web.HTTPFound(f"{BASE}/{order['id']}#refund")


async def _refund_state(request: web.Request, refund_id: int) -> str:
    row = await refunds.get_refund(request.config_dict[pg_key], refund_id)
    label = refunds.STATUS_LABELS[row["status"]]
    tail = f"（{row['last_error']}，将自动重试）" if row["status"] == "pending" and row["last_error"] else ""
    return f"退款 {row['out_refund_no']}（{formats.fmt_money(row['amount'])} 元）：{label}{tail}"


@routes.post(r"/orders/{id:[0-9]+}/refunds/{refund:[0-9]+}/check")
@requires(OWNER)
async def check_refund(request: web.Request) -> web.Response:
    """Send a pending refund again (same number) or ask refundquery about one in progress, now."""
    order = await _load(request)
    row = await refunds.get_refund(request.config_dict[pg_key], path_id(request, "refund", "退款不存在"))
    if row is None or row["order_id"] != order["id"]:
        raise PageError(404, "退款不存在")
    if row["status"] == "pending":
        await refunds.send(request.config_dict, row["id"], refund_notify_url(request.config_dict[settings_key]))
    elif row["status"] in ("processing", "change"):
        try:
            await refunds.query(request.config_dict, row["out_refund_no"])
        except PayError as error:
            flash(await get_session(request), f"退款查询失败：{error.reason}", refused=True,
                  todo="请稍后再查询一次。")
    await audit.record_now(request.config_dict[pg_key], actor(request), "refund.check", f"order:{order['id']}",
                           row["out_refund_no"])
    flash(await get_session(request), await _refund_state(request, row["id"]))
    raise web.HTTPFound(f"{BASE}/{order['id']}")
