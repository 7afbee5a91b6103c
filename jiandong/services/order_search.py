"""Orders as the console finds them: filters, totals, the export's rows and one order with its history."""

from __future__ import annotations

import dataclasses
import datetime as dt
import typing

import aiopg

from ..store import db
from .editing import like_pattern
from .order_status import AWAITING, CANCELLED, CLOSED, PAID, REFUNDED, REFUNDING, TIMED_OUT

STATUS_LABELS = {CLOSED: "已关闭", AWAITING: "待支付", PAID: "已支付", TIMED_OUT: "已超时", REFUNDING: "退款中",
                 REFUNDED: "已退款", CANCELLED: "已取消"}
KIND_LABELS = {"wechat": "微信支付", "manual": "手动开通"}
# An export holds at most this many rows (the newest): far more than the club's orders in years.
EXPORT_MAX = 50_000


@dataclasses.dataclass(frozen=True)
class OrderFilter:
    """What the order list shows: status, creation dates (club's days, inclusive), a user (name, phone,
    openid, or #id), the amount range in fen, the kind."""

    status: int | None = None
    date_from: dt.date | None = None
    date_to: dt.date | None = None
    user: str = ""
    amount_min: int | None = None
    amount_max: int | None = None
    kind: str = ""

    def where(self) -> tuple[str, dict[str, typing.Any]]:
        clauses: list[str] = []
        args: dict[str, typing.Any] = {}
        if self.status is not None:
            clauses.append("o.status = %(status)s")
            args["status"] = self.status
        # Connections run in the club's time zone: a date is the club's day.
        if self.date_from is not None:
            clauses.append("o.create_time >= %(date_from)s::date")
            args["date_from"] = self.date_from
        if self.date_to is not None:
            clauses.append("o.create_time < %(date_to)s::date + 1")
            args["date_to"] = self.date_to
        if self.user:
            if self.user.startswith("#") and self.user[1:].isdigit() and len(self.user) < 19:
                clauses.append("o.user_id = %(user_id)s")
                args["user_id"] = int(self.user[1:])
            else:
                clauses.append("(u.username ILIKE %(user)s OR u.mobile ILIKE %(user)s OR u.openid = %(user_exact)s"
                               " OR o.order_no = %(user_exact)s)")
                args["user"], args["user_exact"] = like_pattern(self.user), self.user
        if self.amount_min is not None:
            clauses.append("o.total_price >= %(amount_min)s")
            args["amount_min"] = self.amount_min
        if self.amount_max is not None:
            clauses.append("o.total_price <= %(amount_max)s")
            args["amount_max"] = self.amount_max
        if self.kind:
            clauses.append("o.kind = %(kind)s")
            args["kind"] = self.kind
        return " AND ".join(clauses) or "true", args


COLUMNS = """o.id, o.order_no, o.user_id, u.username, u.mobile, o.name, o.total_price, o.pay_amount, o.status,
    o.kind, o.create_time, o.pay_time, o.transaction_id, o.remark,
    COALESCE((SELECT sum(r.amount) FROM refunds r WHERE r.order_id = o.id AND r.status = 'success'), 0) AS refunded"""
SOURCE = "orders o JOIN users u ON u.id = o.user_id"


def _labelled(row: db.Row) -> db.Row:
    return {**row, "status_label": STATUS_LABELS.get(row["status"], str(row["status"])),
            "kind_label": KIND_LABELS.get(row["kind"], row["kind"])}


async def search_orders(pool: aiopg.Pool, flt: OrderFilter, page: int, size: int
                        ) -> tuple[list[db.Row], int, db.Row]:
    """A page of the filtered orders (newest first), their number, and totals over all of them:
    `total_price` and `paid` (total_price and pay_amount of paid states: an order awaiting payment or
    cancelled brought in nothing) and `refunded`, in fen."""
    where, args = flt.where()
    rows = await db.fetchall(pool, f"SELECT {COLUMNS} FROM {SOURCE} WHERE {where} ORDER BY o.id DESC"
                                   " LIMIT %(limit)s OFFSET %(offset)s",
                             {**args, "limit": size, "offset": (page - 1) * size})
    totals = await db.fetchone(pool, f"""
        SELECT count(*) AS count, COALESCE(sum(o.total_price) FILTER (WHERE o.status IN (1, 3, 4)), 0) AS total_price,
               COALESCE(sum(o.pay_amount) FILTER (WHERE o.status IN (1, 3, 4)), 0) AS paid,
               COALESCE((SELECT sum(r.amount) FROM refunds r JOIN {SOURCE} ON o.id = r.order_id
                         WHERE r.status = 'success' AND {where}), 0) AS refunded
        FROM {SOURCE} WHERE {where}""", args)
    assert totals is not None
    return [_labelled(r) for r in rows], totals["count"], totals


async def export_rows(pool: aiopg.Pool, flt: OrderFilter) -> list[db.Row]:
    """Every filtered order (up to EXPORT_MAX, newest first), in the list's order."""
    where, args = flt.where()
    rows = await db.fetchall(pool, f"SELECT {COLUMNS} FROM {SOURCE} WHERE {where} ORDER BY o.id DESC"
                                   " LIMIT %(limit)s", {**args, "limit": EXPORT_MAX})
    return [_labelled(r) for r in rows]


async def order_detail(pool: aiopg.Pool, order_id: int) -> db.Row | None:
    row = await db.fetchone(pool, f"""
        SELECT {COLUMNS}, o.snap_items, o.count, o.price, o.pay_way, o.phone, o.prepay_id, o.closed_at,
               o.wechat_closed_at, o.refund_reserved, u.openid
        FROM {SOURCE} WHERE o.id = %(id)s""", {"id": order_id})
    return None if row is None else _labelled(row)


async def order_history(pool: aiopg.Pool, order_id: int) -> dict[str, list[db.Row]]:
    """The payment notifications (and query answers) received for the order, and its membership term."""
    return {
        "notifications": await db.fetchall(pool, """
            SELECT id, source, outcome, transaction_id, raw, raw_size, received_at FROM payment_notifications
            WHERE order_id = %s ORDER BY id""", (order_id,)),
        "extensions": await db.fetchall(pool, """
            SELECT valid_from, valid_until, cut, cut_at FROM member_extensions WHERE order_id = %s""", (order_id,)),
    }


async def user_orders(pool: aiopg.Pool, user_id: int) -> list[db.Row]:
    rows = await db.fetchall(pool, f"SELECT {COLUMNS} FROM {SOURCE} WHERE o.user_id = %s ORDER BY o.id DESC LIMIT 100",
                             (user_id,))
    return [_labelled(r) for r in rows]
