"""Membership orders: the state machine, and the one code path that applies a successful payment.

Status: -1 closed, 0 awaiting payment, 1 paid, 2 timed out, 3 refunding, 4 refunded, 5 cancelled.
An order leaves "awaiting payment" for a closed state only after WeChat Pay confirmed it can no
longer be paid, so reconciliation need only look at orders awaiting payment. A payment that still
arrives for a closed order (money was taken) is applied all the same: the order becomes paid.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import logging
import secrets
import typing

from aiohttp import web

from .. import db, encoding, formats
from ..cleaning import clean_text
from ..errors import (
    ApiError,
    BusinessNotFound,
    Forbidden,
    OrderAlreadyPaid,
    OrderNotFound,
    OrderNotOwned,
    OrderNotPayable,
    PhoneNotBound,
    UserNotFound,
    WeChatUnavailable,
)
from ..integrations import wechatpay
from ..integrations.wechatpay import PayError
from ..keys import pg_key, settings_key, wechatpay_key
from . import membership
from .content_cache import user_changed

logger = logging.getLogger(__name__)

CLOSED, AWAITING, PAID, TIMED_OUT, REFUNDING, REFUNDED, CANCELLED = -1, 0, 1, 2, 3, 4, 5
# Money was received for these.
PAID_STATES = (PAID, REFUNDING, REFUNDED)

PREPAY_TTL = dt.timedelta(hours=2)
# A stored prepay id is reused only while the payer still has this long to finish paying.
PREPAY_MARGIN_MINUTES = 10
# closeorder answers that mean: nobody can pay this order any more.
CLOSED_AT_WECHAT = ("ORDERCLOSED", "ORDERNOTEXIST")
PAY_WAYS = {"JSAPI": "微信支付", wechatpay.DEV_TRADE_TYPE: "开发模式支付"}
ORDER_COUNT = 1
# Orders handled per background round; the rest wait for the next round.
BATCH = 500
# Of a notification that failed verification, this many characters are kept (with its digest and size).
REJECTED_PREFIX = 512


def new_order_no(tz: dt.tzinfo) -> str:
    """Time prefix (sortable, readable in the merchant console) and 64 random bits: 30 URL-safe chars."""
    return dt.datetime.now(tz).strftime("%Y%m%d%H%M%S") + secrets.token_hex(8).upper()


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
PENDING_ORDER_SQL = """
    SELECT id, order_no, total_price, name, create_time FROM orders
    WHERE user_id = %s AND business_id = %s AND status = 0 AND create_time > now() - make_interval(mins => %s)
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


def check_buyer(row: db.Row | None) -> None:
    """Who may buy: an enabled user whose membership an admin has not disabled."""
    if row is None or row["is_disabled"]:
        raise UserNotFound()
    if row["member_status"] == membership.DISABLED:
        raise Forbidden("权限不够: 会员资格已被禁用，不能购买")


async def commit(app: web.Application, user_id: int, business_id: int, name: str) -> db.Row:
    """Create an order for one unit of the product (price from the product), or return the
    user's order for it that still awaits payment."""
    settings = app[settings_key]
    async with db.transaction(app[pg_key]) as cur:
        await cur.execute(LOCK_BUYER_SQL, (user_id,))
        buyer = await cur.fetchone()
        check_buyer(buyer)
        if not buyer["mobile"]:
            raise PhoneNotBound()
        await cur.execute(PENDING_ORDER_SQL, (user_id, business_id, settings.order_expire_minutes))
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


# -- ending an order: cancel, close, expiry ----------------------------------------------------

# Compare-and-set on the prepay id too: a prepay made after the caller looked (and so not closed
# at WeChat by it) sends the caller round again.
END_ORDER_SQL = """
    UPDATE orders SET status = %(status)s, closed_at = now(), updated_at = now()
    WHERE id = %(id)s AND status = 0 AND prepay_id IS NOT DISTINCT FROM %(prepay_id)s
    RETURNING business_id, count
"""
ORDER_STATE_SQL = "SELECT id, user_id, status, order_no, prepay_id FROM orders WHERE id = %s"
END_ATTEMPTS = 3


async def _close_at_wechat(app: web.Application, order_no: str) -> bool:
    """Close the order at WeChat. False when WeChat says it is paid (the payment is applied then)."""
    try:
        await app[wechatpay_key].close_order(order_no)
    except PayError as error:
        if error.code in CLOSED_AT_WECHAT:
            return True
        if error.code != "ORDERPAID":
            raise
        logger.warning("order %s: WeChat Pay says it is paid; applying the payment", order_no)
        await reconcile_order(app, order_no)
        return False
    return True


async def _end(cur: typing.Any, order_id: int, prepay_id: str | None, status: int) -> bool:
    """Move an awaiting order to `status` and give its stock back, in the caller's transaction."""
    await cur.execute(END_ORDER_SQL, {"status": status, "id": order_id, "prepay_id": prepay_id})
    row = await cur.fetchone()
    if row is None:
        return False
    await cur.execute(RESTORE_STOCK_SQL, (row["count"], row["business_id"]))
    return True


async def end_by_user(
    app: web.Application, user_id: int, order_id: int, status: int, refused: type[ApiError]
) -> None:
    """Cancel (status 5) or close (-1) the user's order awaiting payment, at WeChat first."""
    pool = app[pg_key]
    for _ in range(END_ATTEMPTS):
        order = await db.fetchone(pool, ORDER_STATE_SQL, (order_id,))
        if order is None:
            raise OrderNotFound()
        if order["user_id"] != user_id:
            raise OrderNotOwned()
        if order["status"] != AWAITING:
            raise refused()
        if order["prepay_id"]:
            try:
                closed = await _close_at_wechat(app, order["order_no"])
            except PayError as error:
                raise WeChatUnavailable(f"微信支付关单失败: {error.reason}") from None
            if not closed:
                raise refused(f"{refused.msg}: 订单已经支付过")
        async with db.transaction(pool) as cur:
            if await _end(cur, order_id, order["prepay_id"], status):
                return
    raise refused()


DUE_SQL = """
    SELECT id, order_no, prepay_id FROM orders
    WHERE status = 0 AND create_time <= now() - make_interval(mins => %s)
    ORDER BY create_time LIMIT %s
"""


async def expire_due(app: web.Application) -> int:
    """Time out the orders that awaited payment too long (closed at WeChat first); how many."""
    pool = app[pg_key]
    due = await db.fetchall(pool, DUE_SQL, (app[settings_key].order_expire_minutes, BATCH))
    expired = 0
    for order in due:
        try:
            if order["prepay_id"] and not await _close_at_wechat(app, order["order_no"]):
                continue
            async with db.transaction(pool) as cur:
                if await _end(cur, order["id"], order["prepay_id"], TIMED_OUT):
                    expired += 1
        except Exception:
            # The order stays awaiting payment and is tried again next round.
            logger.warning("order %s: could not time it out yet", order["order_no"], exc_info=True)
    if expired:
        logger.info("timed out %d unpaid orders", expired)
    return expired


# -- paying -------------------------------------------------------------------------------------

PAYABLE_SQL = """
    SELECT o.id, o.user_id, o.status, o.order_no, o.name, o.total_price, o.create_time, o.prepay_id,
           o.create_time + make_interval(mins => %(expire)s) AS expires_at,
           o.create_time + make_interval(mins => %(expire)s) <= now() AS expired,
           o.prepay_id IS NOT NULL AND o.prepay_expires_at > now() + make_interval(mins => %(margin)s)
               AS prepay_usable,
           u.openid, u.is_disabled, u.member_status
    FROM orders o JOIN users u ON u.id = o.user_id
    WHERE o.id = %(id)s
"""
STORE_PREPAY_SQL = """
    UPDATE orders SET prepay_id = %s, prepay_expires_at = now() + %s, updated_at = now()
    WHERE id = %s AND status = 0
"""


async def payable_order(app: web.Application, user_id: int, order_id: int) -> db.Row:
    """The user's order, if it may be paid now."""
    order = await db.fetchone(app[pg_key], PAYABLE_SQL, {
        "id": order_id, "expire": app[settings_key].order_expire_minutes, "margin": PREPAY_MARGIN_MINUTES,
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
    check_buyer(order)
    return order


async def pre_order(
    app: web.Application, user_id: int, order_id: int, client_ip: str, notify_url: str
) -> dict[str, str]:
    """The JSAPI parameters to pay the order, with a prepay id from WeChat (reused while valid)."""
    order = await payable_order(app, user_id, order_id)
    pay = app[wechatpay_key]
    if order["prepay_usable"]:
        return pay.jsapi_params(order["prepay_id"])
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
            await _reconcile_quietly(app, order["order_no"])
            raise OrderAlreadyPaid() from None
        if error.code == "ORDERCLOSED":
            raise OrderNotPayable("订单已在微信支付关闭，请重新下单") from None
        raise WeChatUnavailable(f"微信支付下单失败: {error.reason}") from None
    stored = await db.execute(app[pg_key], STORE_PREPAY_SQL, (prepay_id, PREPAY_TTL, order["id"]))
    if not stored:
        # Cancelled or closed while we asked WeChat: the new prepay must not stay payable.
        try:
            await _close_at_wechat(app, order["order_no"])
        except PayError:
            logger.warning("order %s: could not close a prepay made while it was ended", order["order_no"])
        raise OrderNotPayable("订单已关闭、取消或超时，不能支付")
    return pay.jsapi_params(prepay_id)


async def _reconcile_quietly(app: web.Application, order_no: str) -> None:
    try:
        await reconcile_order(app, order_no)
    except PayError as error:
        logger.warning("order %s: orderquery failed: %s", order_no, error)


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


@dataclasses.dataclass(frozen=True)
class Verdict:
    """What a notification (or a query answer) came to; `ok` answers SUCCESS to WeChat."""

    ok: bool
    message: str


RECORD_SQL = """
    INSERT INTO payment_notifications (order_id, out_trade_no, transaction_id, source, outcome, raw, raw_sha256,
                                       raw_size)
    VALUES (%(order_id)s, %(out_trade_no)s, %(transaction_id)s, %(source)s, %(outcome)s, %(raw)s, %(raw_sha256)s,
            %(raw_size)s)
"""
# A retry of a payment already applied, recorded as such in one statement, or nothing when it is not one.
RECORD_RETRY_SQL = """
    INSERT INTO payment_notifications (order_id, out_trade_no, transaction_id, source, outcome, raw, raw_sha256,
                                       raw_size)
    SELECT id, order_no, transaction_id, %(source)s, 'duplicate', %(raw)s, %(raw_sha256)s, %(raw_size)s FROM orders
    WHERE order_no = %(out_trade_no)s AND transaction_id = %(transaction_id)s AND total_price = %(total_fee)s
      AND status = ANY(%(paid_states)s)
    RETURNING order_id
"""


def _record_args(
    order_id: int | None, fields: typing.Mapping[str, str], source: str, outcome: str, raw: str,
    *, keep: int | None = None,
) -> dict[str, typing.Any]:
    """The row of a received message: `raw` whole, or its first `keep` characters (cleaned) and its digest."""
    data = raw.encode()
    return {
        "order_id": order_id,
        "out_trade_no": clean_text(fields.get("out_trade_no"), 64),
        "transaction_id": clean_text(fields.get("transaction_id"), 64),
        "source": source,
        "outcome": outcome,
        "raw": raw if keep is None else clean_text(raw[:keep]),
        "raw_sha256": hashlib.sha256(data).hexdigest(),
        "raw_size": len(data),
    }


async def _record(
    cur: typing.Any, order_id: int | None, fields: typing.Mapping[str, str], source: str, outcome: str, raw: str
) -> None:
    await cur.execute(RECORD_SQL, _record_args(order_id, fields, source, outcome, raw))


async def _reject(
    app: web.Application, fields: typing.Mapping[str, str], source: str, reason: str, raw: str,
    cur: typing.Any = None, order_id: int | None = None,
) -> Verdict:
    """Record a message that failed verification (inside the caller's transaction, if any): FAIL.

    Anyone may post to pay/notify, so what is kept of it is bounded: a prefix, the digest and the size.
    """
    # Junk can be posted as fast as the network allows: the log's throttle (logthrottle) keeps this to
    # one line per interval, with a count.
    logger.warning(
        "payment %s rejected (order %s): %s", source, clean_text(fields.get("out_trade_no"), 64) or "?", reason
    )
    args = _record_args(order_id, fields, source, f"rejected: {reason}", raw, keep=REJECTED_PREFIX)
    if cur is None:
        await db.execute(app[pg_key], RECORD_SQL, args)
    else:
        await cur.execute(RECORD_SQL, args)
    return Verdict(False, reason)


async def receive_notification(app: web.Application, body: bytes, source: str = "notify") -> Verdict:
    """A payment notification as WeChat posts it: parsed safely, its signature checked, then settled."""
    raw = body[:wechatpay.MAX_XML_SIZE].decode("utf-8", "replace")
    try:
        fields = wechatpay.parse_xml(body)
    except wechatpay.XmlError as error:
        return await _reject(app, {}, source, f"malformed XML ({error})", raw)
    if fields.get("return_code") != wechatpay.SUCCESS:
        return await _reject(app, fields, source, "return_code is not SUCCESS", raw)
    if not app[wechatpay_key].verify(fields):
        return await _reject(app, fields, source, "bad signature", raw)
    return await settle(app, fields, raw, source)


# NO KEY UPDATE, not UPDATE: the id never changes, and rows that only reference the order (a retry's
# record) must not wait for the lock.
LOCK_ORDER_SQL = """
    SELECT id, user_id, status, total_price, business_id, count, transaction_id, snap_items
    FROM orders WHERE order_no = %s FOR NO KEY UPDATE
"""
TRANSACTION_TAKEN_SQL = "SELECT id FROM orders WHERE transaction_id = %s AND id <> %s"
MARK_PAID_SQL = """
    UPDATE orders SET status = 1, pay_time = %(pay_time)s, pay_amount = %(pay_amount)s, pay_way = %(pay_way)s,
                      transaction_id = %(transaction_id)s, updated_at = now()
    WHERE id = %(id)s
"""
# The order had given its stock back when it was ended; it is sold after all.
RETAKE_STOCK_SQL = "UPDATE businesses SET amount = GREATEST(amount - %s, 0), updated_at = now() WHERE id = %s"


def _valid_years(snap_items: typing.Any) -> int:
    # The term bought is the one in the snapshot, whatever the product says today.
    try:
        return int(snap_items[0]["valid_time"])
    except (LookupError, TypeError, ValueError):
        raise ValueError("order snapshot has no valid_time") from None


async def settle(app: web.Application, fields: typing.Mapping[str, str], raw: str, source: str) -> Verdict:
    """Apply a verified successful payment (a notification, an orderquery answer or a dev payment).

    One transaction: lock the order row, check it, mark it paid, extend the membership and record
    the message. A payment already applied changes nothing and is answered SUCCESS.
    """
    pay = app[wechatpay_key]
    if fields.get("appid") != pay.appid:
        return await _reject(app, fields, source, "appid is not ours", raw)
    if fields.get("mch_id") != pay.mch_id:
        return await _reject(app, fields, source, "mch_id is not ours", raw)
    if fields.get("result_code") != wechatpay.SUCCESS:
        return await _reject(app, fields, source, "result_code is not SUCCESS", raw)
    transaction_id = fields.get("transaction_id", "")
    total_fee = fields.get("total_fee", "")
    if not transaction_id or len(transaction_id) > 64:
        return await _reject(app, fields, source, "no valid transaction_id", raw)
    if not total_fee.isdigit() or not total_fee.isascii():
        return await _reject(app, fields, source, "no valid total_fee", raw)
    if fields.get("fee_type", "CNY") != "CNY":
        return await _reject(app, fields, source, "fee_type is not CNY", raw)
    out_trade_no = fields.get("out_trade_no", "")
    # WeChat retries a notification until it hears SUCCESS, and a retry of a payment already applied
    # is the usual case: it is recorded without the row lock, so retries never queue on one another.
    # Anything else (including a retry that disagrees with the order) takes the locked path below.
    retry = {**_record_args(None, fields, source, "duplicate", raw), "out_trade_no": out_trade_no,
             "transaction_id": transaction_id, "total_fee": int(total_fee), "paid_states": list(PAID_STATES)}
    if await db.fetchone(app[pg_key], RECORD_RETRY_SQL, retry) is not None:
        return Verdict(True, "OK")
    pay_time = wechatpay.parse_wechat_time(fields.get("time_end", "")) or dt.datetime.now(dt.UTC)
    async with db.transaction(app[pg_key]) as cur:
        await cur.execute(LOCK_ORDER_SQL, (out_trade_no,))
        order = await cur.fetchone()
        if order is None:
            return await _reject(app, fields, source, "unknown order", raw, cur)
        if int(total_fee) != order["total_price"]:
            return await _reject(
                app, fields, source, f"total_fee {int(total_fee)} is not the order's {order['total_price']}", raw,
                cur, order["id"],
            )
        if order["status"] in PAID_STATES:
            if order["transaction_id"] != transaction_id:
                logger.error(
                    "order %s was paid by transaction %s and now reports transaction %s: check the merchant account",
                    out_trade_no, order["transaction_id"], transaction_id,
                )
                await _record(cur, order["id"], fields, source, "duplicate: another transaction_id", raw)
            else:
                await _record(cur, order["id"], fields, source, "duplicate", raw)
            return Verdict(True, "OK")
        await cur.execute(TRANSACTION_TAKEN_SQL, (transaction_id, order["id"]))
        if await cur.fetchone() is not None:
            return await _reject(app, fields, source, "transaction_id belongs to another order", raw, cur, order["id"])
        outcome = "paid"
        if order["status"] != AWAITING:
            # Money was taken: the order is paid even though it had been ended meanwhile.
            logger.error(
                "PAYMENT FOR AN ENDED ORDER: order %s (status %s) paid by transaction %s; "
                "marked paid, membership extended",
                out_trade_no, order["status"], transaction_id,
            )
            outcome = f"paid: order had status {order['status']}"
            await cur.execute(RETAKE_STOCK_SQL, (order["count"], order["business_id"]))
        await cur.execute(MARK_PAID_SQL, {
            "id": order["id"],
            "pay_time": pay_time,
            "pay_amount": int(total_fee),
            "pay_way": PAY_WAYS.get(fields.get("trade_type", ""), "微信支付"),
            "transaction_id": transaction_id,
        })
        valid_from, valid_until = await membership.extend_membership(
            cur, order["user_id"], order["id"], _valid_years(order["snap_items"])
        )
        await _record(cur, order["id"], fields, source, outcome, raw)
    logger.info(
        "order %s paid (%s, transaction %s): membership of user %s %s .. %s",
        out_trade_no, source, transaction_id, order["user_id"], valid_from.isoformat(), valid_until.isoformat(),
    )
    await user_changed(app, order["user_id"])
    return Verdict(True, "OK")


# -- reconciliation -----------------------------------------------------------------------------

AWAITING_PREPAID_SQL = "SELECT order_no FROM orders WHERE status = 0 AND prepay_id IS NOT NULL ORDER BY id LIMIT %s"


async def reconcile_order(app: web.Application, order_no: str) -> bool:
    """Ask WeChat about one order and apply a SUCCESS answer like a notification; whether it is paid."""
    fields, raw = await app[wechatpay_key].order_query(order_no)
    if fields.get("trade_state") != wechatpay.SUCCESS:
        return False
    if fields.get("out_trade_no") != order_no:
        logger.error("orderquery for %s answered about %r", order_no, fields.get("out_trade_no"))
        return False
    return (await settle(app, fields, raw, "orderquery")).ok


async def reconcile_awaiting(app: web.Application) -> int:
    """Query WeChat for every order awaiting payment that has a prepay id; how many were found paid."""
    if app[wechatpay_key].dev:
        return 0
    found = 0
    for row in await db.fetchall(app[pg_key], AWAITING_PREPAID_SQL, (BATCH,)):
        try:
            if await reconcile_order(app, row["order_no"]):
                found += 1
                logger.warning("order %s was found paid by reconciliation (its notification is missing)",
                               row["order_no"])
        except Exception:
            logger.warning("order %s: reconciliation failed; retried next round", row["order_no"], exc_info=True)
    return found
