"""Membership orders: commit, read, pay (the prepay at WeChat Pay) and end (cancel, close, time out).

Statuses are in order_status.py. A buyer's cancel or close ends the order here at once. WeChat Pay
refuses closeorder in the first 5 minutes after the order's creation there (reference §3.5), so an
order with a prepay is closed there when WeChat allows it: at once, or later by the order round
(`close_ended_at_wechat`); until then it may still be paid there. A time-out, which nobody waits
for, ends the order only once WeChat Pay closed it. A payment that still arrives for an ended order
is applied all the same (payments.py): no money is lost.
"""

from __future__ import annotations

import datetime as dt
import enum
import logging
import secrets
import typing

from aiohttp import web

from ..errors import (
    ApiError,
    BusinessNotFound,
    OrderAlreadyPaid,
    OrderNotFound,
    OrderNotOwned,
    OrderNotPayable,
    PhoneNotBound,
    WeChatUnavailable,
)
from ..integrations import wechatpay
from ..integrations.wechatpay import PayError
from ..keys import metrics_key, pg_key, settings_key, wechatpay_key
from ..lib import encoding, formats
from ..store import db
from .order_status import AWAITING, ENDED_SQL, PAID_STATES, TIMED_OUT
from .payments import Verdict, receive_notification, reconcile_order
from .standing import Action, check_standing

logger = logging.getLogger(__name__)

# A prepay_id is valid 2 hours (reference §3.1).
PREPAY_TTL = dt.timedelta(hours=2)
# A stored prepay id is reused only while the payer still has this long to finish paying.
PREPAY_MARGIN_MINUTES = 10
# Added to WeChat Pay's 5-minute rules below, for the clocks of WeChat and of our database to differ
# and for a request to travel: our own margin, not the reference's.
CLOCK_MARGIN = dt.timedelta(minutes=1)
# closeorder only this long after the order's first accepted unifiedorder (§3.5).
CLOSE_WAIT = wechatpay.CLOSE_ORDER_DELAY + CLOCK_MARGIN
# A new prepay only while the order has this long left: its time_expire (the order's time-out) must
# lie more than 5 minutes ahead (§3.1). It also makes a timed-out order closable at WeChat.
PREPAY_LEAD = wechatpay.MIN_TIME_EXPIRE_AHEAD + CLOCK_MARGIN
# closeorder answers that mean: nobody can pay this order any more.
CLOSED_AT_WECHAT = ("ORDERCLOSED", "ORDERNOTEXIST")
ORDER_COUNT = 1


def new_order_no(tz: dt.tzinfo, at: dt.datetime | None = None) -> str:
    """Time prefix (sortable, readable in the merchant console) and 64 random bits: 30 URL-safe chars.

    The time is the order's creation (`at`, default now) in the club's time zone `tz`.
    """
    return (at or dt.datetime.now(tz)).astimezone(tz).strftime("%Y%m%d%H%M%S") + secrets.token_hex(8).upper()


def product_view(row: db.Row) -> dict[str, typing.Any]:
    """A product as the API shows it (business/joinus) and as an order's snapshot keeps it."""
    return {
        "id": row["id"],
        "s_id": row["s_id"] or 0,
        "title": row["title"],
        "cost": formats.fmt_money(row["cost"]),
        "price": formats.fmt_money(row["price"]),
        "content": row["content"],
        "remark": row["remark"],
        "num": row["num"],
        "valid_time": row["valid_time"],
        "amount": row["amount"],
        "specs": row["specs"],
        "people": row["people"],
        "audit_time": formats.fmt_time(row["audit_time"]),
        "istui": row["istui"],
    }


# -- commit -------------------------------------------------------------------------------------

# Serialises one user's commits, so a double click finds the order the first click made.
LOCK_BUYER_SQL = "SELECT mobile, is_disabled, member_status FROM users WHERE id = %s FOR NO KEY UPDATE"
# An order too close to its time-out for a new prepay (PREPAY_LEAD) is left to time out: a new one is made.
PENDING_ORDER_SQL = """
    SELECT id, order_no, total_price, name, create_time FROM orders
    WHERE user_id = %(user_id)s AND business_id = %(business_id)s AND status = 0
      AND create_time + make_interval(mins => %(expire)s) > now() + %(lead)s
    ORDER BY id DESC LIMIT 1
"""
# Stock is taken by one conditional statement: concurrent buyers of the last item queue on the row
# and only the first finds amount > 0.
TAKE_STOCK_SQL = """
    UPDATE businesses SET amount = amount - %(count)s, updated_at = now()
    WHERE id = %(id)s AND status = 1 AND amount >= %(count)s
    RETURNING id, s_id, title, cost, price, content, remark, num, valid_time, amount, specs, people, audit_time, istui
"""
PRODUCT_STATE_SQL = "SELECT status FROM businesses WHERE id = %s"
INSERT_ORDER_SQL = """
    INSERT INTO orders (order_no, user_id, business_id, name, count, price, total_price, phone, snap_items)
    VALUES (%(order_no)s, %(user_id)s, %(business_id)s, %(name)s, %(count)s, %(price)s, %(total_price)s,
            %(phone)s, %(snap_items)s::jsonb)
    RETURNING id, order_no, total_price, name, create_time
"""
RESTORE_STOCK_SQL = "UPDATE businesses SET amount = amount + %s, updated_at = now() WHERE id = %s"


async def commit(app: web.Application, user_id: int, business_id: int, name: str) -> db.Row:
    """Create an order for one unit of the product (price from the product), or return the
    user's order for it that still awaits payment."""
    settings = app[settings_key]
    async with db.transaction(app[pg_key]) as cur:
        await cur.execute(LOCK_BUYER_SQL, (user_id,))
        buyer = await cur.fetchone()
        check_standing(buyer, Action.BUY)
        if not buyer["mobile"]:
            raise PhoneNotBound()
        await cur.execute(PENDING_ORDER_SQL, {
            "user_id": user_id, "business_id": business_id, "expire": settings.order_expire_minutes,
            "lead": PREPAY_LEAD,
        })
        pending = await cur.fetchone()
        if pending is not None:
            return pending
        await cur.execute(TAKE_STOCK_SQL, {"id": business_id, "count": ORDER_COUNT})
        product = await cur.fetchone()
        if product is None:
            await cur.execute(PRODUCT_STATE_SQL, (business_id,))
            state = await cur.fetchone()
            if state is None or state["status"] != 1:
                raise BusinessNotFound()
            # 20000 as well: to the buyer a sold-out product is one that cannot be had now.
            raise BusinessNotFound("业务库存不足")
        snapshot = {**product_view(product), "count": ORDER_COUNT,
                    "total_price": formats.fmt_money(product["price"] * ORDER_COUNT)}
        # The stock after this order is no part of what was bought.
        del snapshot["amount"]
        await cur.execute(INSERT_ORDER_SQL, {
            "order_no": new_order_no(settings.tz),
            "user_id": user_id,
            "business_id": business_id,
            "name": name or product["title"],
            "count": ORDER_COUNT,
            "price": product["price"],
            "total_price": product["price"] * ORDER_COUNT,
            "phone": buyer["mobile"],
            "snap_items": encoding.dumps_str([snapshot]),
        })
        return await cur.fetchone()


# -- reading ------------------------------------------------------------------------------------

ORDER_COLUMNS = """id, user_id, order_no, count, price, total_price, business_id, name, pay_amount, pay_time,
    pay_way, remark, status, coupon, phone, discounts, snap_items, create_time"""


async def owned_order(app: web.Application, user_id: int, order_id: int) -> db.Row:
    """The order, if it is the user's: 60000 when there is none, 10005 when it is someone else's."""
    row = await db.fetchone(app[pg_key], f"SELECT {ORDER_COLUMNS} FROM orders WHERE id = %s", (order_id,))
    if row is None:
        raise OrderNotFound()
    if row["user_id"] != user_id:
        raise OrderNotOwned()
    return row


async def user_orders(app: web.Application, user_id: int, page: int, size: int) -> tuple[list[db.Row], int]:
    pool = app[pg_key]
    rows = await db.fetchall(
        pool,
        f"SELECT {ORDER_COLUMNS} FROM orders WHERE user_id = %s ORDER BY id DESC LIMIT %s OFFSET %s",
        (user_id, size, (page - 1) * size),
    )
    total = await db.fetchval(pool, "SELECT count(*) FROM orders WHERE user_id = %s", (user_id,))
    return rows, total


# -- ending an order: cancel, close, expiry; closing it at WeChat Pay ----------------------------

class AtWeChat(enum.Enum):
    """Where an order being ended stands at WeChat Pay."""

    # Nobody can pay it there any more (or it was never there).
    CLOSED = "closed"
    # Paid there: its payment is applied now if orderquery answered, else by its notification or the round.
    PAID = "paid"
    # It may still be paid there: closeorder is not allowed yet, or WeChat could not be asked.
    OPEN = "open"


# Compare-and-set on the prepay id too: a prepay made after the caller looked (and so not asked
# about at WeChat by it) sends the caller round again.
END_ORDER_SQL = """
    UPDATE orders SET status = %(status)s, closed_at = now(), updated_at = now(),
                      wechat_closed_at = CASE WHEN %(closed_at_wechat)s THEN now() END
    WHERE id = %(id)s AND status = 0 AND prepay_id IS NOT DISTINCT FROM %(prepay_id)s
    RETURNING business_id, count
"""
# `closable`: WeChat Pay accepts closeorder for the order by now.
ORDER_STATE_SQL = """
    SELECT id, user_id, status, order_no, prepay_id, prepaid_at <= now() - %(wait)s AS closable
    FROM orders WHERE id = %(id)s
"""
END_ATTEMPTS = 3


async def _close_at_wechat(app: web.Application, order_no: str) -> AtWeChat:
    """closeorder (§3.5), for an order `closable` by now. ORDERPAID means paid (§3.5): the payment
    is applied from orderquery if WeChat answers it. Any other failure leaves the order OPEN there;
    the client has logged it, in one line."""
    try:
        await app[wechatpay_key].close_order(order_no)
    except PayError as error:
        if error.code in CLOSED_AT_WECHAT:
            return AtWeChat.CLOSED
        if error.code != "ORDERPAID":
            return AtWeChat.OPEN
        await _apply_if_paid(app, order_no)
        return AtWeChat.PAID
    return AtWeChat.CLOSED


async def _apply_if_paid(app: web.Application, order_no: str) -> bool:
    """Ask orderquery and apply the payment it reports; whether it reports one. False as well when
    WeChat cannot be asked (the client has logged why): the notification or the round applies it then."""
    try:
        verdict = await reconcile_order(app, order_no)
    except PayError:
        return False
    return verdict is not None and verdict.ok


async def _end(cur: typing.Any, order_id: int, prepay_id: str | None, status: int, closed_at_wechat: bool) -> bool:
    """Move an awaiting order to `status` and give its stock back, in the caller's transaction."""
    await cur.execute(END_ORDER_SQL, {
        "status": status, "id": order_id, "prepay_id": prepay_id, "closed_at_wechat": closed_at_wechat,
    })
    row = await cur.fetchone()
    if row is None:
        return False
    await cur.execute(RESTORE_STOCK_SQL, (row["count"], row["business_id"]))
    return True


async def end_by_user(
    app: web.Application, user_id: int, order_id: int, status: int, refused: type[ApiError]
) -> None:
    """Cancel (status 5) or close (-1) the user's order awaiting payment, here at once.

    An order with a prepay is closed at WeChat Pay too when WeChat allows it (CLOSE_WAIT), else by the
    order round later; until it may be closed it is asked whether it is paid. An order paid at WeChat
    is refused (`refused`, "...: 订单已经支付过") and stays as it is for its payment to be applied.
    """
    pool = app[pg_key]
    for _ in range(END_ATTEMPTS):
        order = await db.fetchone(pool, ORDER_STATE_SQL, {"id": order_id, "wait": CLOSE_WAIT})
        if order is None:
            raise OrderNotFound()
        if order["user_id"] != user_id:
            raise OrderNotOwned()
        if order["status"] != AWAITING:
            raise refused()
        at_wechat = AtWeChat.OPEN
        if order["prepay_id"]:
            if order["closable"]:
                at_wechat = await _close_at_wechat(app, order["order_no"])
            elif await _apply_if_paid(app, order["order_no"]):
                at_wechat = AtWeChat.PAID
            if at_wechat is AtWeChat.PAID:
                raise refused(f"{refused.msg}: 订单已经支付过")
        async with db.transaction(pool) as cur:
            if await _end(cur, order_id, order["prepay_id"], status, at_wechat is AtWeChat.CLOSED):
                app[metrics_key].order_transition(AWAITING, status)
                return
    raise refused()


DUE_SQL = """
    SELECT id, order_no, prepay_id, prepaid_at <= now() - %(wait)s AS closable FROM orders
    WHERE status = 0 AND create_time <= now() - make_interval(mins => %(expire)s)
    ORDER BY create_time LIMIT %(limit)s
"""


async def expire_due(app: web.Application, limit: int) -> int:
    """Time out up to `limit` orders that awaited payment too long; how many.

    One with a prepay is timed out only once closed at WeChat Pay (so nobody pays it after its time-out):
    until then it stays awaiting payment and is tried again next round.
    """
    pool = app[pg_key]
    due = await db.fetchall(pool, DUE_SQL, {
        "wait": CLOSE_WAIT, "expire": app[settings_key].order_expire_minutes, "limit": limit,
    })
    expired = 0
    for order in due:
        try:
            # PREPAY_LEAD makes an order closable by its time-out, give or take a request's time.
            if order["prepay_id"] and (
                not order["closable"] or await _close_at_wechat(app, order["order_no"]) is not AtWeChat.CLOSED
            ):
                continue
            async with db.transaction(pool) as cur:
                if await _end(cur, order["id"], order["prepay_id"], TIMED_OUT, order["prepay_id"] is not None):
                    expired += 1
                    app[metrics_key].order_transition(AWAITING, TIMED_OUT)
        except Exception:
            logger.exception("order %s: could not time it out; tried again next round", order["order_no"])
    if expired:
        logger.info("timed out %d unpaid orders", expired)
    return expired


OPEN_AT_WECHAT_SQL = f"""
    SELECT order_no FROM orders
    WHERE status IN ({ENDED_SQL}) AND prepay_id IS NOT NULL AND wechat_closed_at IS NULL
      AND prepaid_at <= now() - %(wait)s
    ORDER BY prepaid_at LIMIT %(limit)s
"""
CLOSED_AT_WECHAT_SQL = f"""
    UPDATE orders SET wechat_closed_at = now(), updated_at = now()
    WHERE order_no = %s AND status IN ({ENDED_SQL}) AND wechat_closed_at IS NULL
"""


async def close_ended_at_wechat(app: web.Application, limit: int) -> int:
    """Close at WeChat Pay up to `limit` orders ended here that may still be paid there, once WeChat
    allows it (CLOSE_WAIT); how many it closed. One found paid there is applied: paid after all."""
    pool = app[pg_key]
    closed = 0
    for row in await db.fetchall(pool, OPEN_AT_WECHAT_SQL, {"wait": CLOSE_WAIT, "limit": limit}):
        try:
            if await _close_at_wechat(app, row["order_no"]) is AtWeChat.CLOSED:
                closed += await db.execute(pool, CLOSED_AT_WECHAT_SQL, (row["order_no"],))
        except Exception:
            logger.exception("order %s: could not close it at WeChat Pay; tried again next round", row["order_no"])
    if closed:
        logger.info("closed %d ended orders at WeChat Pay", closed)
    return closed


# -- paying -------------------------------------------------------------------------------------

PAYABLE_SQL = """
    SELECT o.id, o.user_id, o.status, o.order_no, o.name, o.total_price, o.create_time, o.prepay_id,
           o.create_time + make_interval(mins => %(expire)s) AS expires_at,
           o.create_time + make_interval(mins => %(expire)s) <= now() AS expired,
           o.create_time + make_interval(mins => %(expire)s) <= now() + %(lead)s AS too_late_to_prepay,
           o.prepay_id IS NOT NULL AND o.prepay_expires_at > now() + make_interval(mins => %(margin)s)
               AS prepay_usable,
           u.openid, u.is_disabled, u.member_status
    FROM orders o JOIN users u ON u.id = o.user_id
    WHERE o.id = %(id)s
"""
# Kept on an order ended meanwhile as well, unless WeChat Pay closed it already: the order round then
# closes the order at WeChat once allowed, since it may be paid there until then.
STORE_PREPAY_SQL = f"""
    UPDATE orders SET prepay_id = %(prepay_id)s, prepay_expires_at = now() + %(ttl)s,
                      prepaid_at = COALESCE(prepaid_at, now()), updated_at = now()
    WHERE id = %(id)s AND (status = 0 OR (status IN ({ENDED_SQL}) AND wechat_closed_at IS NULL))
    RETURNING status
"""


async def payable_order(app: web.Application, user_id: int, order_id: int) -> db.Row:
    """The user's order, if it may be paid now."""
    order = await db.fetchone(app[pg_key], PAYABLE_SQL, {
        "id": order_id, "expire": app[settings_key].order_expire_minutes, "margin": PREPAY_MARGIN_MINUTES,
        "lead": PREPAY_LEAD,
    })
    if order is None:
        raise OrderNotFound()
    if order["user_id"] != user_id:
        raise OrderNotOwned()
    if order["status"] in PAID_STATES:
        raise OrderAlreadyPaid()
    if order["status"] != AWAITING:
        raise OrderNotPayable("订单已关闭、取消或超时，不能支付")
    if order["expired"]:
        raise OrderNotPayable("订单已超时，请重新下单")
    check_standing(order, Action.BUY)
    return order


async def pre_order(
    app: web.Application, user_id: int, order_id: int, client_ip: str, notify_url: str
) -> dict[str, str]:
    """The JSAPI parameters to pay the order, with a prepay id from WeChat (reused while valid).

    A new prepay is refused (60005) when the order times out within PREPAY_LEAD: WeChat refuses a
    time_expire less than 5 minutes ahead (§3.1), and the order's is fixed (a repeated unifiedorder
    must carry the same parameters as the first).
    """
    order = await payable_order(app, user_id, order_id)
    pay = app[wechatpay_key]
    if order["prepay_usable"]:
        return pay.jsapi_params(order["prepay_id"])
    if order["too_late_to_prepay"]:
        raise OrderNotPayable("订单即将超时，请重新下单")
    try:
        prepay_id = await pay.unified_order(
            out_trade_no=order["order_no"],
            total_fee=order["total_price"],
            body=order["name"],
            openid=order["openid"],
            client_ip=client_ip,
            notify_url=notify_url,
            time_start=order["create_time"],
            time_expire=order["expires_at"],
        )
    except PayError as error:
        if error.code == "ORDERPAID":
            await _apply_if_paid(app, order["order_no"])
            raise OrderAlreadyPaid() from None
        if error.code == "ORDERCLOSED":
            raise OrderNotPayable("订单已在微信支付关闭，请重新下单") from None
        raise WeChatUnavailable(f"微信支付下单失败: {error.reason}") from None
    stored = await db.fetchone(app[pg_key], STORE_PREPAY_SQL, {"prepay_id": prepay_id, "ttl": PREPAY_TTL,
                                                            "id": order["id"]})
    if stored is None or stored["status"] != AWAITING:
        # Ended (or paid) while we asked WeChat: the new prepay must not be handed out.
        raise OrderNotPayable("订单已关闭、取消或超时，不能支付")
    return pay.jsapi_params(prepay_id)


async def dev_complete(app: web.Application, user_id: int, order_id: int) -> Verdict:
    """Pay an order with the dev provider: its notification goes through the notification path."""
    pay = app[wechatpay_key]
    assert isinstance(pay, wechatpay.DevWeChatPay)
    order = await payable_order(app, user_id, order_id)
    if not order["prepay_id"]:
        raise OrderNotPayable("请先调用 pay/pre_order 发起支付")
    body = pay.notification(out_trade_no=order["order_no"], total_fee=order["total_price"], openid=order["openid"])
    logger.warning("DEV PAYMENT: order %s marked paid without money", order["order_no"])
    return await receive_notification(app, body, source="dev")
