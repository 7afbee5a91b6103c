"""The console's dashboard figures: members, revenue (paid minus refunded), orders, sign-ups, viewers and chat.

Days and weeks are the club's (connections run in its time zone). Money in fen.
"""

from __future__ import annotations

import datetime as dt
import typing

from aiohttp import web

from ..keys import pg_key, redis_key, settings_key
from ..store import db, presence
from ..store.presence import peaks_key
from .membership import MEMBER_STATUS_SQL

DAYS = 30
WEEKS = 12


async def _series(pool: typing.Any, sql: str, days: int = DAYS) -> list[tuple[dt.date, int]]:
    """`sql` yields (day, value) rows; every one of the last `days` days, 0 where it has none."""
    rows = {r["day"]: int(r["value"]) for r in await db.fetchall(pool, sql, {"days": days})}
    today = await db.fetchval(pool, "SELECT current_date")
    return [(day, rows.get(day, 0)) for day in (today - dt.timedelta(days=n) for n in range(days - 1, -1, -1))]


MEMBERS_SQL = f"""
    SELECT count(*) FILTER (WHERE {MEMBER_STATUS_SQL} = 1) AS active,
           count(*) FILTER (WHERE {MEMBER_STATUS_SQL} = 1 AND u.member_expire_time < now() + interval '30 days')
               AS expiring,
           count(*) FILTER (WHERE u.member_status = 2) AS disabled
    FROM users u
"""
# A member is new in the week of their first membership term.
NEW_MEMBERS_SQL = """
    SELECT date_trunc('week', first)::date AS week, count(*) AS value
    FROM (SELECT min(valid_from) AS first FROM member_extensions GROUP BY user_id) f
    WHERE first >= date_trunc('week', now()) - make_interval(weeks => %(weeks)s - 1)
    GROUP BY 1
"""
PAID_SQL = """
    SELECT pay_time::date AS day, sum(pay_amount) AS value FROM orders
    WHERE status IN (1, 3, 4) AND pay_time >= current_date - (%(days)s - 1) GROUP BY 1
"""
REFUNDED_SQL = """
    SELECT success_time::date AS day, sum(amount) AS value FROM refunds
    WHERE status = 'success' AND success_time >= current_date - (%(days)s - 1) GROUP BY 1
"""
CREATED_SQL = """
    SELECT create_time::date AS day, count(*) AS value FROM orders
    WHERE kind = 'wechat' AND create_time >= current_date - (%(days)s - 1) GROUP BY 1
"""
ORDERS_PAID_SQL = """
    SELECT create_time::date AS day, count(*) AS value FROM orders
    WHERE kind = 'wechat' AND status IN (1, 3, 4) AND create_time >= current_date - (%(days)s - 1) GROUP BY 1
"""
CHAT_SQL = """
    SELECT msg_time::date AS day, count(*) AS value FROM chat_messages
    WHERE deleted_at IS NULL AND msg_time >= current_date - (%(days)s - 1) GROUP BY 1
"""
SIGNUPS_SQL = """
    SELECT c.id, c.title, c.play_time, count(a.id) AS signups FROM competitions c
    LEFT JOIN competition_applies a ON a.competition_id = c.id
    WHERE c.play_time > now() AND c.status = 1 GROUP BY c.id ORDER BY c.play_time LIMIT 10
"""
LIVES_SQL = """
    SELECT id, title, live_status FROM lives
    WHERE status = 1 AND (live_status = 1 OR publish_time > now() - interval '30 days')
    ORDER BY live_status = 1 DESC, publish_time DESC LIMIT 10
"""


async def figures(app: web.Application) -> dict[str, typing.Any]:
    """Everything the dashboard shows, as plain values: counts, (day, value) series, per-match and per-stream rows."""
    pool = app[pg_key]
    members = await db.fetchone(pool, MEMBERS_SQL)
    week_rows = {r["week"]: r["value"] for r in await db.fetchall(pool, NEW_MEMBERS_SQL, {"weeks": WEEKS})}
    this_week = await db.fetchval(pool, "SELECT date_trunc('week', now())::date")
    weeks = [this_week - dt.timedelta(weeks=n) for n in range(WEEKS - 1, -1, -1)]
    paid, refunded = await _series(pool, PAID_SQL), await _series(pool, REFUNDED_SQL)
    lives = await db.fetchall(pool, LIVES_SQL)
    redis, settings = app[redis_key], app[settings_key]
    viewers = await presence.room_viewers(redis, settings, [r["id"] for r in lives])
    peaks = await redis.zmscore(peaks_key(settings), [str(r["id"]) for r in lives]) if lives else []
    return {
        "members": members,
        "new_members": [(week, int(week_rows.get(week, 0))) for week in weeks],
        "revenue": [(day, p - r) for (day, p), (_, r) in zip(paid, refunded, strict=True)],
        "paid_total": sum(v for _, v in paid), "refunded_total": sum(v for _, v in refunded),
        "orders_created": await _series(pool, CREATED_SQL), "orders_paid": await _series(pool, ORDERS_PAID_SQL),
        "chat": await _series(pool, CHAT_SQL),
        "signups": await db.fetchall(pool, SIGNUPS_SQL),
        "lives": [{**r, "viewers": viewers.get(r["id"], 0), "peak": int(peak or 0)} for r, peak in zip(
            lives, peaks, strict=True)],
    }
