"""Users and members as the staff manage them: search, one user's record, memberships granted by hand (recorded
as paid orders of kind "manual"), and disabling a membership (member status 2) or enabling it again."""

from __future__ import annotations

import datetime as dt
import typing

from aiohttp import web

from ..keys import pg_key, settings_key
from ..lib import encoding, formats
from ..store import db
from . import audit, membership
from .content_cache import user_changed
from .editing import ListQuery, fetch_page, like_pattern
from .order_status import PAID
from .orders import new_order_no, product_view

STATUS_LABELS = {membership.NONE: "非会员", membership.ACTIVE: "正常", membership.DISABLED: "已禁用",
                 membership.EXPIRED: "已过期"}
REASON_MAX = 200
YEARS_MAX = 10
MANUAL_PAY_WAY = "线下（手动开通）"
COLUMNS = f"""u.id, u.username, u.mobile, u.openid, u.head_img, u.register_time, u.last_login_time, u.is_disabled,
    u.member_expire_time, u.member_note, {membership.MEMBER_STATUS_SQL} AS member_status"""


class MemberError(ValueError):
    """A membership change the rules refuse; the message is for the console."""


def _labelled(row: db.Row) -> db.Row:
    return {**row, "status_label": STATUS_LABELS.get(row["member_status"], str(row["member_status"]))}


def _user_filter(query: ListQuery, status: int | None, expiring_days: int | None
                 ) -> tuple[str, dict[str, typing.Any]]:
    clauses: list[str] = []
    args: dict[str, typing.Any] = {}
    term = query.search
    if term.startswith("#") and term[1:].isdigit() and len(term) < 19:
        clauses.append("u.id = %(id)s")
        args["id"] = int(term[1:])
    elif term:
        clauses.append("(u.username ILIKE %(s)s OR u.mobile ILIKE %(s)s OR u.openid = %(exact)s)")
        args["s"], args["exact"] = like_pattern(term), term
    if status is not None:
        clauses.append(f"{membership.MEMBER_STATUS_SQL} = %(status)s")
        args["status"] = status
    if expiring_days is not None:
        # Active members whose term ends within the days: whom to remind to renew.
        clauses.append(f"{membership.MEMBER_STATUS_SQL} = {membership.ACTIVE}"
                       " AND u.member_expire_time < now() + make_interval(days => %(days)s)")
        args["days"] = expiring_days
    return " AND ".join(clauses), args


async def search_users(pool: typing.Any, query: ListQuery, status: int | None = None,
                       expiring_days: int | None = None) -> tuple[list[db.Row], int]:
    """Users by name, phone or openid (or #id), optionally of one member status (0-3, as read) or active and
    ending within `expiring_days` (then soonest end first), else newest first."""
    where, args = _user_filter(query, status, expiring_days)
    order = "u.member_expire_time, u.id" if expiring_days is not None else "u.id DESC"
    rows, total = await fetch_page(pool, COLUMNS, "users u", where, args, order, query)
    return [_labelled(r) for r in rows], total


async def export_users(pool: typing.Any, query: ListQuery, status: int | None = None,
                       expiring_days: int | None = None, limit: int = 100_000) -> list[db.Row]:
    """Every user of the list's filter (not one page), in the list's order."""
    where, args = _user_filter(query, status, expiring_days)
    order = "u.member_expire_time, u.id" if expiring_days is not None else "u.id DESC"
    rows = await db.fetchall(pool, f"SELECT {COLUMNS} FROM users u {where and 'WHERE ' + where} ORDER BY {order}"
                                   " LIMIT %(limit)s", {**args, "limit": limit})
    return [_labelled(r) for r in rows]


async def get_user(pool: typing.Any, user_id: int) -> db.Row | None:
    row = await db.fetchone(pool, f"SELECT {COLUMNS} FROM users u WHERE u.id = %s", (user_id,))
    return None if row is None else _labelled(row)


async def below_list_price_grants(pool: typing.Any, days: int = 30) -> list[db.Row]:
    """Grants by hand of the last `days` days below the list price (free, discounted or to a date), newest
    first: id, order_no, name, pay_amount and list_price (fen; list_price None when there is none), remark,
    pay_time, user_id, username."""
    return await db.fetchall(pool, """
        SELECT o.id, o.order_no, o.name, o.pay_amount, o.remark, o.pay_time, o.user_id, u.username,
               b.price * NULLIF((o.snap_items->0->>'valid_time')::int, 0) AS list_price
        FROM orders o JOIN users u ON u.id = o.user_id LEFT JOIN businesses b ON b.id = o.business_id
        WHERE o.kind = 'manual' AND o.pay_time > now() - make_interval(days => %s)
          AND (b.id IS NULL OR COALESCE((o.snap_items->0->>'valid_time')::int, 0) = 0
               OR o.pay_amount < b.price * (o.snap_items->0->>'valid_time')::int)
        ORDER BY o.pay_time DESC LIMIT 50""", (days,))


def _check_list_price(product: db.Row | None, years: int | None, amount: int) -> None:
    """MemberError unless `amount` (fen) is the list price of `years` of the product: a free or discounted
    grant, or one to a date (no list price), is for an owner."""
    per_year = product["price"] // max(product["valid_time"] or 1, 1) if product else None
    if years is None or per_year is None or amount < per_year * years:
        price = f"（标价 {formats.fmt_money(per_year * years)} 元）" if years and per_year is not None else ""
        raise MemberError(f"免费、低于标价{price}或开通到指定日期须由所有者办理；请按标价收款，或请所有者开通")


def _reason(reason: str) -> str:
    reason = reason.strip()
    if not 1 <= len(reason) <= REASON_MAX:
        raise MemberError(f"原因必填（不超过 {REASON_MAX} 个字）")
    return reason


LOCK_USER_SQL = f"SELECT {COLUMNS} FROM users u WHERE u.id = %s FOR NO KEY UPDATE"
PRODUCT_SQL = """
    SELECT id, s_id, title, cost, price, content, remark, num, valid_time, amount, specs, people, audit_time, istui
    FROM businesses WHERE status = 1 ORDER BY sort DESC, id LIMIT 1
"""
INSERT_MANUAL_SQL = """
    INSERT INTO orders (order_no, user_id, business_id, name, count, price, total_price, pay_amount, pay_time, pay_way,
                        remark, status, phone, snap_items, kind)
    VALUES (%(order_no)s, %(user_id)s, %(business_id)s, %(name)s, 1, %(amount)s, %(amount)s, %(amount)s, now(),
            %(pay_way)s, %(reason)s, %(status)s, %(phone)s, %(snap)s::jsonb, 'manual')
    RETURNING id, order_no
"""


async def grant_membership(app: web.Application, actor: audit.Actor, user_id: int, *, reason: str,
                           years: int | None = None, until: dt.date | None = None, amount: int = 0,
                           below_list_price: bool = True) -> int:
    """Grant or extend a membership by `years` or to the end of the day `until` (club's time zone), as a paid
    order of kind "manual" of `amount` fen (cash received; 0 for a goodwill extension); the order's id.

    One transaction: the order, the membership's new end (membership.py's rules, a player card for a
    new member) and the audit entry. MemberError for a missing reason, no term, or an end not after the
    current one.
    """
    reason = _reason(reason)
    if (years is None) == (until is None):
        raise MemberError("请填写年数或结束日期（二选一）")
    if years is not None and not 1 <= years <= YEARS_MAX:
        raise MemberError(f"年数须为 1~{YEARS_MAX}")
    if not 0 <= amount <= 100_000_000:
        raise MemberError("金额无效")
    settings = app[settings_key]
    async with db.transaction(app[pg_key]) as cur:
        await cur.execute(LOCK_USER_SQL, (user_id,))
        user = await cur.fetchone()
        if user is None:
            raise MemberError("用户不存在")
        await cur.execute(PRODUCT_SQL)
        product = await cur.fetchone()
        if not below_list_price:
            _check_list_price(product, years, amount)
        term = f"{years} 年" if until is None else f"至 {until.isoformat()}"
        name = f"{product['title'] if product else '会员'}（手动开通 {term}）"
        snapshot = {**(product_view(product) if product else {}), "title": name, "price": formats.fmt_money(amount),
                    "valid_time": years or 0, "count": 1, "total_price": formats.fmt_money(amount)}
        snapshot.pop("amount", None)
        await cur.execute(INSERT_MANUAL_SQL, {
            "order_no": new_order_no(settings.tz), "user_id": user_id,
            "business_id": product["id"] if product else None,
            "name": name, "amount": amount, "pay_way": MANUAL_PAY_WAY, "reason": reason, "status": PAID,
            "phone": user["mobile"] or "", "snap": encoding.dumps_str([snapshot]),
        })
        order = await cur.fetchone()
        if years is not None:
            valid_from, _ = await membership.extend_membership(cur, user_id, order["id"], years)
        else:
            assert until is not None  # exactly one of years and until, checked above
            # The end of that day in the club's time zone.
            end = dt.datetime.combine(until + dt.timedelta(days=1), dt.time(), settings.tz)
            try:
                valid_from, _ = await membership.extend_membership_until(cur, user_id, order["id"], end)
            except membership.TooEarly as exc:
                raise MemberError(f"结束日期须晚于当前有效期（{formats.fmt_time(exc.args[0], settings.tz)}）") from None
        # The user's state after, under the names of before: the log shows each as old → new.
        await cur.execute(LOCK_USER_SQL, (user_id,))
        now = await cur.fetchone()
        await audit.record(cur, actor, "member.grant", f"user:{user_id}", reason,
                           before={"member_status": user["member_status"], "expire": user["member_expire_time"]},
                           after={"member_status": now["member_status"], "expire": now["member_expire_time"],
                                  "order": order["order_no"], "amount": amount, "valid_from": valid_from})
    await user_changed(app, user_id)
    return order["id"]


DISABLE_SQL = """
    UPDATE users SET member_status = 2, member_note = %(reason)s, updated_at = now()
    WHERE id = %(id)s AND member_status <> 2
"""
# Back to active, or to none for one who never had a term (expired reads as 3 from the expiry).
ENABLE_SQL = """
    UPDATE users SET member_status = CASE WHEN member_expire_time IS NULL THEN 0 ELSE 1 END,
                     member_note = %(reason)s, updated_at = now()
    WHERE id = %(id)s AND member_status = 2
"""


async def set_disabled(app: web.Application, actor: audit.Actor, user_id: int, disabled: bool, reason: str) -> bool:
    """Disable the membership (status 2: user/info says so, member/info answers 30002, the chat refuses the
    user's sends, no purchase) or enable it again; whether anything changed."""
    reason = _reason(reason)
    async with db.transaction(app[pg_key]) as cur:
        await cur.execute(LOCK_USER_SQL, (user_id,))
        user = await cur.fetchone()
        if user is None:
            raise MemberError("用户不存在")
        await cur.execute(DISABLE_SQL if disabled else ENABLE_SQL, {"id": user_id, "reason": reason})
        if cur.rowcount != 1:
            return False
        await cur.execute(LOCK_USER_SQL, (user_id,))
        after = await cur.fetchone()
        await audit.record(cur, actor, "member.disable" if disabled else "member.enable", f"user:{user_id}", reason,
                           before={"member_status": user["member_status"]},
                           after={"member_status": after["member_status"]})
    await user_changed(app, user_id)
    return True
