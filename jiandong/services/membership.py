"""Membership status rules: what a stored status means now, and how a purchase extends it."""

from __future__ import annotations

import datetime as dt
import logging
import typing

from .players import create_profile

logger = logging.getLogger(__name__)

ACTIVE, DISABLED, EXPIRED, NONE = 1, 2, 3, 0

# The stored status is 0/1/2; an active membership past its expiry reads as 3 (expired).
# Use as `{MEMBER_STATUS_SQL} AS member_status` with the users table aliased `u`.
MEMBER_STATUS_SQL = (
    "CASE WHEN u.member_status = 1 AND (u.member_expire_time IS NULL OR u.member_expire_time <= now())"
    " THEN 3 ELSE u.member_status END"
)

# A purchase runs from the later of now and the current expiry (an expired member renews from now).
# An admin's disable (2) stays; any other status becomes active. NO KEY UPDATE lets rows that only
# reference the user (chat history, orders) be written meanwhile.
LOCK_MEMBER_SQL = """
    SELECT GREATEST(now(), COALESCE(member_expire_time, now())) AS valid_from
    FROM users WHERE id = %s FOR NO KEY UPDATE
"""
EXTEND_SQL = """
    UPDATE users
    SET member_expire_time = %(valid_from)s + make_interval(years => %(years)s),
        member_status = CASE WHEN member_status = 2 THEN 2 ELSE 1 END,
        updated_at = now()
    WHERE id = %(user_id)s
    RETURNING member_expire_time, member_status
"""
RECORD_EXTENSION_SQL = """
    INSERT INTO member_extensions (order_id, user_id, valid_from, valid_until)
    VALUES (%s, %s, %s, %s)
"""


async def extend_membership(
    cur: typing.Any, user_id: int, order_id: int, years: int
) -> tuple[dt.datetime, dt.datetime]:
    """Extend the user's membership by `years` for a paid order; run inside the order's transaction.

    The caller holds the order row, so one order extends once (member_extensions.order_id is unique
    as well). The user row is locked here: two orders of one user paid at once extend one after the
    other. A user who becomes a member here gets a player card in the same transaction.
    Afterwards call `content_cache.user_changed`.
    """
    await cur.execute(LOCK_MEMBER_SQL, (user_id,))
    valid_from = (await cur.fetchone())["valid_from"]
    await cur.execute(EXTEND_SQL, {"valid_from": valid_from, "years": years, "user_id": user_id})
    row = await cur.fetchone()
    if row["member_status"] == DISABLED:
        logger.warning("user %s paid order %s while the membership is disabled; expiry extended", user_id, order_id)
    await cur.execute(RECORD_EXTENSION_SQL, (order_id, user_id, valid_from, row["member_expire_time"]))
    await create_profile(cur, user_id)
    return valid_from, row["member_expire_time"]


EXTEND_UNTIL_SQL = """
    UPDATE users
    SET member_expire_time = %(until)s,
        member_status = CASE WHEN member_status = 2 THEN 2 ELSE 1 END,
        updated_at = now()
    WHERE id = %(user_id)s
    RETURNING member_expire_time, member_status
"""


class TooEarly(ValueError):
    """The end asked for is not after the membership's current end (or now)."""


async def extend_membership_until(
    cur: typing.Any, user_id: int, order_id: int, until: dt.datetime
) -> tuple[dt.datetime, dt.datetime]:
    """As extend_membership, to the end `until` instead of by years (a membership granted by staff).
    TooEarly unless `until` lies after the later of now and the current expiry."""
    await cur.execute(LOCK_MEMBER_SQL, (user_id,))
    valid_from = (await cur.fetchone())["valid_from"]
    if until <= valid_from:
        raise TooEarly(valid_from)
    await cur.execute(EXTEND_UNTIL_SQL, {"until": until, "user_id": user_id})
    row = await cur.fetchone()
    await cur.execute(RECORD_EXTENSION_SQL, (order_id, user_id, valid_from, row["member_expire_time"]))
    await create_profile(cur, user_id)
    return valid_from, row["member_expire_time"]
