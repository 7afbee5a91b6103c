"""Refunds of WeChat Pay payments: asked for in the console, sent with the merchant certificate, completed by
WeChat Pay's refund notification or by refundquery in the order round. Facts: ../shared/reference/wechatpay-refund.md.

Money rules, each held by the database as well as by this code:
- One refund per `out_refund_no` (UNIQUE): a request sent again after a timeout, a double click, the
  round resending a pending refund all carry the refund's own number, and WeChat Pay refunds a number
  only once (§1.1).
- The refunds of an order never exceed its payment: each one reserves its amount on the order row
  (`refund_reserved`, CHECK <= pay_amount) in the transaction that records it, with the row locked, so
  concurrent clicks queue and the one that does not fit is refused. A refund that fails releases it.
- An outcome is applied once: the refund row is locked, and a final refund ignores later reports.

Order status: 3 while a refund is in flight; 4 once refunds returned the whole payment; otherwise back to
1 (paid, partly refunded). A completed refund changes the membership the order paid for as the setting
`refund_membership_rule` says. In dev payment mode a refund completes at once and moves no money.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import logging
import re
import secrets
import typing

import psycopg2
from aiohttp import web

from ..integrations import wechatpay, wechatpay_v3
from ..integrations.wechatpay import PayError
from ..integrations.wechatpay_refund import CHANGE, CLOSED, PROCESSING, SUCCESS, ReqInfoError, query_records
from ..keys import metrics_key, pg_key, settings_key, wechatpay_key
from ..lib import encoding
from ..lib.cleaning import clean_text
from ..lib.logthrottle import JUNK
from ..store import db
from . import audit, notices
from .content_cache import user_changed
from .order_status import PAID, PAID_STATES, REFUNDED, REFUNDING

logger = logging.getLogger(__name__)

# What a refund notification's req_info always carries (§3) and what _apply checks it against: a notification
# without one of them is no notification WeChat sent, whatever else it says.
NOTIFIED_FIELDS = ("out_refund_no", "out_trade_no", "refund_fee", "refund_status")
# Our statuses (sql/009) for WeChat Pay's refund_status (§2, §3).
STATUS_OF = {SUCCESS: "success", CLOSED: "closed", CHANGE: "change"}
FINAL = ("success", "closed", "failed")
IN_FLIGHT = ("pending", "processing", "change")
STATUS_LABELS = {"pending": "待提交", "processing": "退款中", "success": "已退款", "closed": "退款关闭",
                 "change": "退款异常（需到商户平台处理）", "failed": "退款失败"}
# err_codes after which the same out_refund_no must not be sent again: the refund is refused for good
# (§1.5, the "No" rows). Any other failure (SYSTEMERROR, BIZERR_NEED_RETRY, FREQUENCY_LIMITED, NOTENOUGH,
# a timeout, a code we do not know) leaves the refund pending: the round sends it again.
REFUSED_FOR_GOOD = frozenset({
    "TRADE_OVERDUE", "USER_ACCOUNT_ABNORMAL", "INVALID_TRANSACTIONID", "PARAM_ERROR", "APPID_NOT_EXIST",
    "MCHID_NOT_EXIST", "ORDERNOTEXIST", "REQUIRE_POST_METHOD", "SIGNERROR", "XML_FORMAT_ERROR", "NO_CERTIFICATE",
    # API v3 only (v2 says a generic ERROR): a business rule refuses it, e.g. a 51st refund of one order.
    "RULE_LIMIT",
})
# A pending refund is sent again by the round only this long after its last try: WeChat Pay wants refund
# requests of one order at least a minute apart (§1.1).
RESEND_AFTER = dt.timedelta(minutes=1)
REASON_MAX = 80
# §1.1: String(64) of digits, letters and _-|*@ (at least 6 here: ours have 31).
OUT_REFUND_NO = re.compile(r"[0-9A-Za-z_|*@-]{6,64}")
REJECTED_PREFIX = 512


class RefundRefused(ValueError):
    """The refund cannot be made (amount, order state, number reused); the message is for the console."""


@dataclasses.dataclass(frozen=True)
class Outcome:
    """What a refund notification or query answer came to; `ok` answers SUCCESS to WeChat Pay."""

    ok: bool
    message: str


def new_refund_no(tz: dt.tzinfo) -> str:
    """"R", the time in the club's zone and 64 random bits: 31 characters of [0-9A-Z] (§1.1 allows 64)."""
    return "R" + dt.datetime.now(tz).strftime("%Y%m%d%H%M%S") + secrets.token_hex(8).upper()


# -- asking for a refund --------------------------------------------------------------------------

LOCK_ORDER_SQL = """
    SELECT id, user_id, order_no, status, kind, pay_amount, refund_reserved FROM orders WHERE id = %s FOR UPDATE
"""
FIND_SQL = "SELECT id, order_id, amount, status FROM refunds WHERE out_refund_no = %s"
INSERT_SQL = """
    INSERT INTO refunds (out_refund_no, order_id, amount, reason, admin_id)
    VALUES (%(no)s, %(order_id)s, %(amount)s, %(reason)s, %(admin_id)s) RETURNING id
"""
RESERVE_SQL = """
    UPDATE orders SET refund_reserved = refund_reserved + %(amount)s, status = %(refunding)s, updated_at = now()
    WHERE id = %(order_id)s RETURNING refund_reserved
"""


async def request_refund(app: web.Application, actor: audit.Actor, order_id: int, amount: int, reason: str,
                         out_refund_no: str, notify_url: str) -> int:
    """Record a refund of `amount` fen of the order's payment and send it; the refund's id.

    `out_refund_no` comes with the console's form (made when the form was shown), so the same form
    posted twice is the same refund: the second post returns the first one's id. RefundRefused when the
    order is not a paid WeChat Pay order, the amount does not fit in what is left to refund, or the
    number belongs to another refund.
    """
    reason = reason.strip()
    if not 1 <= len(reason) <= REASON_MAX:
        raise RefundRefused(f"退款原因须为 1~{REASON_MAX} 个字")
    if amount <= 0:
        raise RefundRefused("退款金额须大于 0")
    try:
        async with db.transaction(app[pg_key]) as cur:
            await cur.execute(LOCK_ORDER_SQL, (order_id,))
            order = await cur.fetchone()
            if order is None:
                raise RefundRefused("订单不存在")
            await cur.execute(FIND_SQL, (out_refund_no,))
            existing = await cur.fetchone()
            if existing is not None:
                if existing["order_id"] != order_id or existing["amount"] != amount:
                    raise RefundRefused("该退款单号已用于另一笔退款，请刷新页面后重试")
                # The same form again (a double click, a retry): the same refund, nothing new.
                refund_id = existing["id"]
            else:
                if order["kind"] != "wechat" or order["status"] not in PAID_STATES:
                    raise RefundRefused("只有已通过微信支付付款的订单可以退款")
                left = order["pay_amount"] - order["refund_reserved"]
                if amount > left:
                    raise RefundRefused(f"退款金额超过可退金额（还可退 {left / 100:.2f} 元）")
                await cur.execute(INSERT_SQL, {"no": out_refund_no, "order_id": order_id, "amount": amount,
                                               "reason": reason, "admin_id": actor.admin_id})
                refund_id = (await cur.fetchone())["id"]
                await cur.execute(RESERVE_SQL, {"amount": amount, "order_id": order_id, "refunding": REFUNDING})
                reserved = (await cur.fetchone())["refund_reserved"]
                # What staff did: asked for this refund and set its amount aside. Not the order's status:
                # the outcome comes later (at once in dev mode) and is on the order page, not in this entry.
                await audit.record(cur, actor, "refund.create", f"order:{order_id}", reason,
                                   before={"refund_reserved": order["refund_reserved"]},
                                   after={"refund_reserved": reserved,
                                          "refund": {"out_refund_no": out_refund_no, "amount": amount}})
    except psycopg2.errors.CheckViolation:
        # The database's own guard (orders_refund_within_payment) caught what the check above let through.
        raise RefundRefused("退款金额超过可退金额") from None
    except psycopg2.errors.UniqueViolation:
        raise RefundRefused("该退款单号已用于另一笔退款，请刷新页面后重试") from None
    await send(app, refund_id, notify_url)
    return refund_id


SENDABLE_SQL = """
    UPDATE refunds r SET attempts = attempts + 1, sent_at = now(), updated_at = now()
    FROM orders o
    WHERE r.id = %s AND r.status = 'pending' AND o.id = r.order_id
    RETURNING r.id, r.out_refund_no, r.amount, r.reason, o.order_no, o.pay_amount
"""
ACCEPTED_SQL = """
    UPDATE refunds SET status = 'processing', refund_id = %(refund_id)s, last_error = '', updated_at = now()
    WHERE id = %(id)s AND status = 'pending'
"""
LAST_ERROR_SQL = "UPDATE refunds SET last_error = %s, updated_at = now() WHERE id = %s AND status = 'pending'"


async def send(app: web.Application, refund_id: int, notify_url: str) -> None:
    """Send a pending refund to WeChat Pay (again: same number, same amounts, §1.1). Accepted: processing;
    refused for good: failed (its amount released); anything else: still pending, for the round."""
    row = await db.fetchone(app[pg_key], SENDABLE_SQL, (refund_id,))
    if row is None:
        return
    pay = app[wechatpay_key]
    try:
        fields = await pay.refund(
            out_trade_no=row["order_no"], out_refund_no=row["out_refund_no"], total_fee=row["pay_amount"],
            refund_fee=row["amount"], refund_desc=row["reason"], notify_url=notify_url,
        )
    except PayError as error:
        # The client logged it (one line).
        message = f"{error.code}: {error.reason}"
        if error.code in REFUSED_FOR_GOOD:
            await _apply(app, row["out_refund_no"], "failed", {"err_code": error.code}, "refund", message,
                         error=message)
        else:
            await db.execute(app[pg_key], LAST_ERROR_SQL, (clean_text(message, 200), row["id"]))
        return
    if pay.dev:
        await _apply(app, row["out_refund_no"], "success", {**fields, "refund_status": SUCCESS}, "dev",
                     encoding.dumps_str(fields))
        return
    await db.execute(app[pg_key], ACCEPTED_SQL, {"refund_id": clean_text(fields.get("refund_id"), 64),
                                                 "id": row["id"]})


# -- outcomes: notification, refundquery, dev --------------------------------------------------------

LOCK_REFUND_SQL = """
    SELECT r.id, r.order_id, r.amount, r.status, r.refund_id, r.reason, o.order_no, o.user_id, o.pay_amount,
           o.snap_items
    FROM refunds r JOIN orders o ON o.id = r.order_id
    WHERE r.out_refund_no = %s FOR UPDATE OF r, o
"""
SET_STATUS_SQL = """
    UPDATE refunds SET status = %(status)s, refund_id = COALESCE(NULLIF(%(refund_id)s, ''), refund_id),
                       recv_account = %(recv)s, success_time = %(success_time)s, last_error = %(error)s,
                       updated_at = now()
    WHERE id = %(id)s
"""
RELEASE_SQL = "UPDATE orders SET refund_reserved = refund_reserved - %s, updated_at = now() WHERE id = %s"
ORDER_REFUNDS_SQL = """
    SELECT COALESCE(sum(amount) FILTER (WHERE status = 'success'), 0) AS refunded,
           count(*) FILTER (WHERE status IN ('pending', 'processing', 'change')) AS in_flight
    FROM refunds WHERE order_id = %s
"""
ORDER_STATUS_SQL = "UPDATE orders SET status = %s, updated_at = now() WHERE id = %s"
RECORD_SQL = """
    INSERT INTO refund_notifications (refund_id, out_refund_no, source, outcome, fields, raw, raw_sha256, raw_size)
    VALUES (%(refund_id)s, %(no)s, %(source)s, %(outcome)s, %(fields)s::jsonb, %(raw)s, %(sha)s, %(size)s)
"""
# A message that failed our checks is kept only when it names one of our refunds (the order's page shows
# it), in one statement: junk naming none writes nothing and is counted (jiandong_notifications_dropped).
RECORD_REJECTED_SQL = """
    INSERT INTO refund_notifications (refund_id, out_refund_no, source, outcome, fields, raw, raw_sha256, raw_size)
    SELECT id, %(no)s, %(source)s, %(outcome)s, %(fields)s::jsonb, %(raw)s, %(sha)s, %(size)s
    FROM refunds WHERE out_refund_no = %(refund_no)s AND (%(refund_id)s::bigint IS NULL OR id = %(refund_id)s::bigint)
    RETURNING id
"""
# The unused part of the order's membership term, cut in whole (`whole`) or by the refunded share of
# the term; what it cut and whose. A term already used up cuts nothing.
CUT_SQL = """
    WITH e AS (
        SELECT id, user_id,
               LEAST(GREATEST(valid_until - cut - GREATEST(now(), valid_from), interval '0'),
                     CASE WHEN %(whole)s THEN interval '1000 years'
                          ELSE (valid_until - valid_from) * %(share)s END) AS amount
        FROM member_extensions WHERE order_id = %(order_id)s FOR UPDATE
    )
    UPDATE member_extensions m SET cut = m.cut + e.amount, cut_at = now()
    FROM e WHERE m.id = e.id AND e.amount > interval '0'
    RETURNING e.user_id, e.amount
"""
SHORTEN_SQL = """
    UPDATE users SET member_expire_time = GREATEST(member_expire_time - %(cut)s, now()), updated_at = now()
    WHERE id = %(user_id)s AND member_expire_time IS NOT NULL
"""


def _record_args(refund_id: int | None, no: str, source: str, outcome: str, fields: typing.Mapping[str, str],
                 raw: str, keep: int | None = None) -> dict[str, typing.Any]:
    data = raw.encode()
    return {"refund_id": refund_id, "no": clean_text(no, 64), "source": source, "outcome": outcome,
            "fields": encoding.dumps_str({k: clean_text(v, 200) for k, v in fields.items()}),
            "raw": raw if keep is None else clean_text(raw[:keep]),
            "sha": hashlib.sha256(data).hexdigest(), "size": len(data)}


async def _reject(app: web.Application, no: str, source: str, why: str, reason: str, raw: str,
                  fields: typing.Mapping[str, str] | None = None, cur: typing.Any = None,
                  refund_id: int | None = None) -> Outcome:
    """Refuse a message that failed our checks: FAIL. `why` is the reason's kind (a metric label).

    Kept (bounded: anyone may post to the notify URL) only when it names one of our refunds.
    """
    logger.warning("refund %s %s rejected: %s", source, clean_text(no, 64) or "?", reason, extra=JUNK)
    args = {**_record_args(refund_id, no, source, f"rejected: {reason}", fields or {}, raw, keep=REJECTED_PREFIX),
            "refund_no": no}
    if cur is None:
        kept = await db.fetchone(app[pg_key], RECORD_REJECTED_SQL, args)
    else:
        await cur.execute(RECORD_REJECTED_SQL, args)
        kept = await cur.fetchone()
    if kept is None:
        app[metrics_key].notifications_dropped.labels("refund", why).inc()
    return Outcome(False, reason)


async def _apply(app: web.Application, out_refund_no: str, status: str, fields: typing.Mapping[str, str],
                 source: str, raw: str, error: str = "") -> Outcome:
    """Move a refund to `status` (success, closed, change, failed) once, with what follows for its order and
    the membership; a report about a refund already final is recorded as a duplicate and changes nothing."""
    membership_cut = None
    async with db.transaction(app[pg_key]) as cur:
        await cur.execute(LOCK_REFUND_SQL, (out_refund_no,))
        refund = await cur.fetchone()
        if refund is None:
            return await _reject(app, out_refund_no, source, "unknown_refund", "unknown out_refund_no", raw, fields,
                                 cur)
        if fields.get("out_trade_no", refund["order_no"]) != refund["order_no"]:
            return await _reject(app, out_refund_no, source, "out_trade_no", "out_trade_no is not the refund's order",
                                 raw, fields, cur, refund["id"])
        fee = fields.get("refund_fee", str(refund["amount"]))
        if fee != str(refund["amount"]):
            return await _reject(app, out_refund_no, source, "refund_fee",
                                 f"refund_fee {fee[:20]} is not {refund['amount']}", raw, fields, cur, refund["id"])
        if refund["status"] in FINAL or refund["status"] == status:
            await cur.execute(RECORD_SQL, _record_args(refund["id"], out_refund_no, source, "duplicate", fields, raw))
            return Outcome(True, "OK")
        await cur.execute(SET_STATUS_SQL, {
            "status": status, "refund_id": clean_text(fields.get("refund_id"), 64), "id": refund["id"],
            "recv": clean_text(fields.get("refund_recv_accout"), 64),
            "success_time": _wechat_time(fields.get("success_time", "")) if status == "success" else None,
            "error": clean_text(error, 200),
        })
        if status in ("closed", "failed"):
            await cur.execute(RELEASE_SQL, (refund["amount"], refund["order_id"]))
        await cur.execute(ORDER_REFUNDS_SQL, (refund["order_id"],))
        totals = await cur.fetchone()
        full = totals["refunded"] >= refund["pay_amount"]
        order_status = REFUNDING if totals["in_flight"] else REFUNDED if full else PAID
        await cur.execute(ORDER_STATUS_SQL, (order_status, refund["order_id"]))
        if status == "success":
            membership_cut = await _cut_membership(app, cur, refund["order_id"], refund["amount"],
                                                   refund["pay_amount"], full)
            await notices.enqueue(cur, "refund_made", refund["user_id"], f"refund_made:{refund['id']}", {
                "product": notices.product_title(refund["snap_items"]), "amount": refund["amount"],
                "reason": refund["reason"], "order_no": refund["order_no"]})
        await cur.execute(RECORD_SQL, _record_args(refund["id"], out_refund_no, source, status, fields, raw))
    logger.info("refund %s of order %s: %s (%s)%s", out_refund_no, refund["order_no"], status, source,
                f"; membership of user {refund['user_id']} cut by {membership_cut}" if membership_cut else "")
    app[metrics_key].refunds.labels(status).inc()
    if status == "success":
        app[metrics_key].refunded_fen.inc(refund["amount"])
    if membership_cut:
        await user_changed(app, refund["user_id"])
    return Outcome(True, "OK")


async def _cut_membership(app: web.Application, cur: typing.Any, order_id: int, amount: int, paid: int,
                          full: bool) -> dt.timedelta | None:
    """The membership rule of refunds (setting refund_membership_rule), in the refund's transaction."""
    rule = app[settings_key].refund_membership_rule
    if rule == "keep" or (rule == "full-revokes" and not full):
        return None
    await cur.execute(CUT_SQL, {"order_id": order_id, "whole": full, "share": amount / paid if paid else 1.0})
    row = await cur.fetchone()
    if row is None:
        return None
    await cur.execute(SHORTEN_SQL, {"cut": row["amount"], "user_id": row["user_id"]})
    return row["amount"]


def _wechat_time(value: str) -> dt.datetime | None:
    """success_time as WeChat Pay writes it, "2017-12-15 09:46:01" in Beijing time (§3)."""
    try:
        return dt.datetime.strptime(value, "%Y-%m-%d %H:%M:%S").replace(tzinfo=wechatpay.WECHAT_TZ)
    except ValueError:
        return dt.datetime.now(dt.UTC)


async def receive_notification(app: web.Application, body: bytes) -> Outcome:
    """WeChat Pay's refund notification (§3): the outer XML (no signature there), `req_info` decrypted with
    our key, the refund found and its outcome applied. A replay is a duplicate (SUCCESS, nothing changes);
    a `req_info` that does not decrypt is refused (FAIL) and only recorded."""
    raw = body[:wechatpay.MAX_XML_SIZE].decode("utf-8", "replace")
    try:
        outer = wechatpay.parse_xml(body)
    except wechatpay.XmlError as error:
        return await _reject(app, "", "notify", "malformed", f"malformed XML ({error})", raw)
    if outer.get("return_code") != wechatpay.SUCCESS:
        return await _reject(app, "", "notify", "return_code", "return_code is not SUCCESS", raw)
    pay = app[wechatpay_key]
    if outer.get("appid") != pay.appid or outer.get("mch_id") != pay.mch_id:
        return await _reject(app, "", "notify", "appid", "appid or mch_id is not ours", raw)
    try:
        fields = pay.decrypt_refund(outer.get("req_info", ""))
    except ReqInfoError as error:
        return await _reject(app, "", "notify", "req_info", str(error), raw)
    return await _notified(app, fields, raw)


async def receive_v3_notification(app: web.Application, headers: typing.Mapping[str, str], body: bytes) -> Outcome:
    """A v3 refund notification (REFUND.SUCCESS / ABNORMAL / CLOSED, §4 of the v3 reference): its signature
    checked before anything is decrypted, then applied like a v2 one. The decrypted resource is recorded."""
    raw = body[:wechatpay_v3.MAX_BODY].decode("utf-8", "replace")
    pay = app[wechatpay_key]
    try:
        note = wechatpay_v3.open_notification(pay, headers, body, wechatpay_v3.REFUND_EVENTS)
    except wechatpay_v3.NotificationRefused as refused:
        return await _reject(app, "", "notify", refused.why, refused.reason, raw)
    if note.resource.get("mchid") != pay.mch_id:
        # As a v2 notification of another merchant (its outer mch_id): its refund number is not ours to look up.
        return await _reject(app, "", "notify", "mch_id", "mchid is not ours", note.plaintext)
    return await _notified(app, wechatpay_v3.refund_notification_fields(note.resource), note.plaintext)


async def _notified(app: web.Application, fields: typing.Mapping[str, str], raw: str) -> Outcome:
    """A refund notification's decrypted fields (v2's names): checked, then its outcome applied."""
    missing = [name for name in NOTIFIED_FIELDS if not fields.get(name)]
    if missing:
        return await _reject(app, fields.get("out_refund_no", ""), "notify", "missing_field",
                             f"req_info lacks {', '.join(missing)}", raw, fields)
    status = STATUS_OF.get(fields.get("refund_status", ""))
    if status is None:
        return await _reject(app, fields.get("out_refund_no", ""), "notify", "refund_status", "unknown refund_status",
                             raw, fields)
    return await _apply(app, fields.get("out_refund_no", ""), status, fields, "notify", raw)


# -- the round --------------------------------------------------------------------------------------

DUE_PENDING_SQL = """
    SELECT id FROM refunds WHERE status = 'pending' AND COALESCE(sent_at, created_at) <= now() - %s
    ORDER BY id LIMIT %s
"""
PROCESSING_SQL = "SELECT out_refund_no FROM refunds WHERE status = 'processing' ORDER BY id LIMIT %s"


async def query(app: web.Application, out_refund_no: str) -> str | None:
    """Ask refundquery about one refund (§2) and apply a final status; the status WeChat Pay reports.
    PayError when WeChat Pay cannot be asked (the client logged it)."""
    fields = await app[wechatpay_key].refund_query(out_refund_no)
    for record in query_records(fields):
        if record.out_refund_no != out_refund_no:
            continue
        status = STATUS_OF.get(record.refund_status)
        if status is not None:
            await _apply(app, out_refund_no, status, {
                "out_refund_no": out_refund_no, "out_trade_no": fields.get("out_trade_no", ""),
                "refund_id": record.refund_id, "refund_fee": record.refund_fee, "refund_status": record.refund_status,
                "success_time": record.success_time, "refund_recv_accout": record.recv_account,
            }, "refundquery", encoding.dumps_str(fields))
        return record.refund_status
    return None


async def reconcile_refunds(app: web.Application, limit: int, notify_url: str) -> int:
    """The order round's part: send again the refunds still pending (after RESEND_AFTER), ask refundquery
    about those processing; how many became final."""
    pool = app[pg_key]
    settled = 0
    for row in await db.fetchall(pool, DUE_PENDING_SQL, (RESEND_AFTER, limit)):
        try:
            await send(app, row["id"], notify_url)
        except Exception:
            logger.exception("refund %s: could not send it; tried again next round", row["id"])
    for row in await db.fetchall(pool, PROCESSING_SQL, (limit,)):
        try:
            status = await query(app, row["out_refund_no"])
        except PayError:
            continue
        except Exception:
            logger.exception("refund %s: refundquery failed; tried again next round", row["out_refund_no"])
            continue
        if status in STATUS_OF:
            settled += 1
        elif status not in (PROCESSING, None):
            logger.warning("refund %s: refundquery answered status %s", row["out_refund_no"], status)
    return settled


# -- reading ----------------------------------------------------------------------------------------

async def get_refund(pool: typing.Any, refund_id: int) -> db.Row | None:
    return await db.fetchone(pool, "SELECT id, order_id, out_refund_no, amount, status, last_error FROM refunds"
                                   " WHERE id = %s", (refund_id,))


async def order_refunds(pool: typing.Any, order_id: int) -> list[db.Row]:
    rows = await db.fetchall(pool, """
        SELECT r.id, r.out_refund_no, r.amount, r.reason, r.status, r.refund_id, r.last_error, r.recv_account,
               r.success_time, r.attempts, r.created_at, a.username AS admin_name
        FROM refunds r LEFT JOIN admins a ON a.id = r.admin_id WHERE r.order_id = %s ORDER BY r.id""", (order_id,))
    return [{**row, "status_label": STATUS_LABELS[row["status"]]} for row in rows]


async def order_refund_messages(pool: typing.Any, order_id: int) -> list[db.Row]:
    return await db.fetchall(pool, """
        SELECT n.id, n.out_refund_no, n.source, n.outcome, n.fields, n.raw_size, n.received_at
        FROM refund_notifications n JOIN refunds r ON r.id = n.refund_id WHERE r.order_id = %s ORDER BY n.id""",
                             (order_id,))

