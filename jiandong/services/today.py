"""What needs staff's attention today, for the console's home page: today's matches and lives, matches played
without a result, feedback not handled, refunds not settled, memberships ending soon. Each a short list (or a
count) that links to the page where it is dealt with."""

from __future__ import annotations

import typing

from ..store import db
from . import membership

# How many of each are listed on the home page (the rest is a click away, on its list).
SHOWN = 8
# Memberships ending within this many days are the ones to renew.
EXPIRING_DAYS = 30
# Matches played this long ago without a result are still asked for; older ones are history.
RESULT_WINDOW_DAYS = 60

# Connections run in the club's time zone: now()::date is the club's day.
TODAY_MATCHES_SQL = """
    SELECT id, title, play_time FROM competitions
    WHERE play_time >= now()::date AND play_time < now()::date + 1 ORDER BY play_time, id LIMIT %(shown)s
"""
TODAY_LIVES_SQL = """
    SELECT id, title, live_status, publish_time FROM lives
    WHERE live_status = 1 OR (publish_time >= now()::date AND publish_time < now()::date + 1)
    ORDER BY live_status = 1 DESC, publish_time, id LIMIT %(shown)s
"""
NO_RESULT_SQL = """
    SELECT id, title, play_time, count(*) OVER () AS total FROM competitions
    WHERE play_time < now() AND play_time > now() - make_interval(days => %(window)s)
      AND club_score IS NULL
    ORDER BY play_time DESC, id LIMIT %(shown)s
"""
COUNTS_SQL = f"""
    SELECT (SELECT count(*) FROM feedback WHERE handled_at IS NULL) AS feedback,
           (SELECT count(*) FROM refunds WHERE status IN ('pending', 'processing', 'change')) AS refunds,
           (SELECT count(*) FROM users u WHERE {membership.MEMBER_STATUS_SQL} = {membership.ACTIVE}
              AND u.member_expire_time < now() + make_interval(days => %(expiring)s)) AS expiring
"""
OPEN_REFUNDS_SQL = """
    SELECT r.id, r.order_id, r.amount, r.status, r.created_at, o.order_no FROM refunds r
    JOIN orders o ON o.id = r.order_id
    WHERE r.status IN ('pending', 'processing', 'change') ORDER BY r.created_at LIMIT %(shown)s
"""


async def attention(pool: typing.Any) -> dict[str, typing.Any]:
    """{"matches", "lives", "no_result" (rows: no result on its result page; "no_result_total"), "refunds"
    (rows), "counts": {"feedback", "refunds", "expiring"}, "expiring_days"}: the home page's lists, each at
    most SHOWN rows."""
    args = {"shown": SHOWN, "window": RESULT_WINDOW_DAYS, "expiring": EXPIRING_DAYS}
    no_result = await db.fetchall(pool, NO_RESULT_SQL, args)
    return {
        "matches": await db.fetchall(pool, TODAY_MATCHES_SQL, args),
        "lives": await db.fetchall(pool, TODAY_LIVES_SQL, args),
        "no_result": no_result, "no_result_total": no_result[0]["total"] if no_result else 0,
        "refunds": await db.fetchall(pool, OPEN_REFUNDS_SQL, args),
        "counts": await db.fetchone(pool, COUNTS_SQL, args),
        "expiring_days": EXPIRING_DAYS,
    }
