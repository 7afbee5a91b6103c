"""Payments: WeChat Pay's notifications, the one code path that applies a successful payment, and
reconciliation (asking WeChat Pay about orders whose notification may be lost).

A payment that arrives for an order ended meanwhile (cancelled, closed or timed out: money was
taken) is applied all the same: the order becomes paid. Applying is idempotent: a payment already
applied changes nothing, however often and from wherever it is reported again.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import logging
import typing

from aiohttp import web

from ..integrations import wechatpay, wechatpay_v3
from ..integrations.wechatpay import PayError
from ..keys import metrics_key, pg_key, wechatpay_key
from ..lib.cleaning import clean_text
from ..lib.logthrottle import JUNK
from ..store import db
from . import membership, notices
from .content_cache import user_changed
from .order_status import AWAITING, PAID, PAID_STATES

logger = logging.getLogger(__name__)

PAY_WAYS = {"JSAPI": "微信支付", wechatpay.DEV_TRADE_TYPE: "开发模式支付"}
# Of a notification that failed verification, this many characters are kept (with its digest and size).
REJECTED_PREFIX = 512


@dataclasses.dataclass(frozen=True)
class Verdict:
    """What a notification (or a query answer) came to; `ok` answers SUCCESS to WeChat."""

    ok: bool
    message: str
    # True only for the call that marked the order paid (not for a payment applied before it).
    applied: bool = False


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


# A message that failed verification is kept only when it names an order of ours (the order's page shows
# it): in one statement, so junk naming no order writes nothing. Anyone may post to pay/notify, as often as
# they like; what they post about no order is counted (jiandong_notifications_dropped), never stored.
RECORD_REJECTED_SQL = """
    INSERT INTO payment_notifications (order_id, out_trade_no, transaction_id, source, outcome, raw, raw_sha256,
                                       raw_size)
    SELECT id, %(out_trade_no)s, %(transaction_id)s, %(source)s, %(outcome)s, %(raw)s, %(raw_sha256)s, %(raw_size)s
    FROM orders WHERE order_no = %(order_no)s AND (%(order_id)s::bigint IS NULL OR id = %(order_id)s::bigint)
    RETURNING id
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
    app: web.Application, fields: typing.Mapping[str, str], source: str, why: str, reason: str, raw: str,
    cur: typing.Any = None, order_id: int | None = None,
) -> Verdict:
    """Refuse a message that failed verification (inside the caller's transaction, if any): FAIL.

    `why` is the reason's kind (a metric label), `reason` its text (FAIL's return_msg, the kept row).
    Kept only when it names one of our orders, and then bounded: a prefix, the digest and the size.
    """
    # Junk can be posted as fast as the network allows: the log's throttle (logthrottle) keeps this to
    # one line per interval, with a count.
    logger.warning(
        "payment %s rejected (order %s): %s", source, clean_text(fields.get("out_trade_no"), 64) or "?", reason,
        extra=JUNK,
    )
    args = {**_record_args(order_id, fields, source, f"rejected: {reason}", raw, keep=REJECTED_PREFIX),
            "order_no": fields.get("out_trade_no", "")}
    if cur is None:
        kept = await db.fetchone(app[pg_key], RECORD_REJECTED_SQL, args)
    else:
        await cur.execute(RECORD_REJECTED_SQL, args)
        kept = await cur.fetchone()
    if kept is None:
        app[metrics_key].notifications_dropped.labels("payment", why).inc()
    return Verdict(False, reason)


async def receive_notification(app: web.Application, body: bytes, source: str = "notify") -> Verdict:
    """A payment notification as WeChat posts it: parsed safely, its signature checked, then settled."""
    raw = body[:wechatpay.MAX_XML_SIZE].decode("utf-8", "replace")
    try:
        fields = wechatpay.parse_xml(body)
    except wechatpay.XmlError as error:
        return await _reject(app, {}, source, "malformed", f"malformed XML ({error})", raw)
    if fields.get("return_code") != wechatpay.SUCCESS:
        return await _reject(app, fields, source, "return_code", "return_code is not SUCCESS", raw)
    if not app[wechatpay_key].verify(fields):
        return await _reject(app, fields, source, "signature", "bad signature", raw)
    return await settle(app, fields, raw, source)


async def receive_v3_notification(app: web.Application, headers: typing.Mapping[str, str], body: bytes) -> Verdict:
    """A v3 payment notification (TRANSACTION.SUCCESS, §4 of the v3 reference): its signature checked before
    anything is decrypted, then settled like a v2 one. The decrypted transaction is what is recorded."""
    raw = body[:wechatpay_v3.MAX_BODY].decode("utf-8", "replace")
    try:
        note = wechatpay_v3.open_notification(app[wechatpay_key], headers, body, wechatpay_v3.PAYMENT_EVENTS)
    except wechatpay_v3.NotificationRefused as refused:
        return await _reject(app, {}, "notify", refused.why, refused.reason, raw)
    return await settle(app, wechatpay_v3.transaction_fields(note.resource), note.plaintext, "notify")


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
        return await _reject(app, fields, source, "appid", "appid is not ours", raw)
    if fields.get("mch_id") != pay.mch_id:
        return await _reject(app, fields, source, "mch_id", "mch_id is not ours", raw)
    if fields.get("result_code") != wechatpay.SUCCESS:
        return await _reject(app, fields, source, "result_code", "result_code is not SUCCESS", raw)
    transaction_id = fields.get("transaction_id", "")
    total_fee = fields.get("total_fee", "")
    if not transaction_id or len(transaction_id) > 64:
        return await _reject(app, fields, source, "transaction_id", "no valid transaction_id", raw)
    if not total_fee.isdigit() or not total_fee.isascii():
        return await _reject(app, fields, source, "total_fee", "no valid total_fee", raw)
    if fields.get("fee_type", "CNY") != "CNY":
        return await _reject(app, fields, source, "fee_type", "fee_type is not CNY", raw)
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
            return await _reject(app, fields, source, "unknown_order", "unknown order", raw, cur)
        if int(total_fee) != order["total_price"]:
            return await _reject(
                app, fields, source, "total_fee",
                f"total_fee {int(total_fee)} is not the order's {order['total_price']}", raw, cur, order["id"],
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
            return await _reject(app, fields, source, "transaction_id", "transaction_id belongs to another order",
                                 raw, cur, order["id"])
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
        await notices.enqueue(cur, "payment_received", order["user_id"], f"payment_received:{order['id']}", {
            "product": notices.product_title(order["snap_items"]), "amount": int(total_fee), "until": valid_until,
            "order_no": out_trade_no})
        await _record(cur, order["id"], fields, source, outcome, raw)
    logger.info(
        "order %s paid (%s, transaction %s): membership of user %s %s .. %s",
        out_trade_no, source, transaction_id, order["user_id"], valid_from.isoformat(), valid_until.isoformat(),
    )
    app[metrics_key].order_transition(order["status"], PAID)
    await user_changed(app, order["user_id"])
    return Verdict(True, "OK", applied=True)


# -- reconciliation -----------------------------------------------------------------------------

AWAITING_PREPAID_SQL = "SELECT order_no FROM orders WHERE status = 0 AND prepay_id IS NOT NULL ORDER BY id LIMIT %s"


async def reconcile_order(app: web.Application, order_no: str) -> Verdict | None:
    """Ask WeChat about one order (orderquery, reference §3.5) and apply a SUCCESS answer like a notification.

    None when WeChat does not say it is paid; else the verdict, whose `applied` tells whether this
    answer (and not a notification before it) marked the order paid. PayError when WeChat cannot be asked.
    """
    fields, raw = await app[wechatpay_key].order_query(order_no)
    if fields.get("trade_state") != wechatpay.SUCCESS:
        return None
    if fields.get("out_trade_no") != order_no:
        logger.error("orderquery for %s answered about %r", order_no, fields.get("out_trade_no"))
        return None
    return await settle(app, fields, raw, "orderquery")


async def reconcile_awaiting(app: web.Application, limit: int) -> int:
    """Query WeChat for up to `limit` orders awaiting payment that have a prepay id; how many this
    found paid (their notification had not come)."""
    if app[wechatpay_key].dev:
        return 0
    found = 0
    for row in await db.fetchall(app[pg_key], AWAITING_PREPAID_SQL, (limit,)):
        try:
            verdict = await reconcile_order(app, row["order_no"])
        except PayError:
            # Expected now and then (SYSTEMERROR, a timeout): the client logged it in one line.
            continue
        except Exception:
            logger.exception("order %s: reconciliation failed; retried next round", row["order_no"])
            continue
        # A notification applied while the query was in flight leaves nothing to report.
        if verdict is not None and verdict.applied:
            found += 1
            logger.warning("order %s was found paid by reconciliation (its notification is missing)",
                           row["order_no"])
    return found
