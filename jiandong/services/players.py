"""Player profiles (球员信息): the card a membership gives, the current user's card and its teams."""

from __future__ import annotations

import aiopg

from .. import db
from ..errors import MemberNotFound, NoTeam

# A disabled profile (status 0) reads as no profile at all: 30002 says "不存在或已被禁用".
PROFILE_SQL = """
    SELECT p.id, p.cn_name, p.birthday, p.birth_addr, p.mobile, p.sex, p.stature, p.weight,
           p.native_place, p.nation, p.photo, p.individual, p.number, p.position, p.school,
           p.experience, p.feature, p.honor, p.comment,
           -- current_date is the club's date: connections run in its time zone
           extract(year FROM age(current_date, p.birthday))::int AS age,
           t.name AS team,
           -- driven by the user's orders (indexed by user), then the extension by its unique order_id
           (SELECT o.id
              FROM orders o JOIN member_extensions e ON e.order_id = o.id AND e.user_id = o.user_id
             WHERE o.user_id = p.user_id AND o.status = 1 AND e.valid_from <= now() AND e.valid_until > now()
             ORDER BY e.valid_until DESC, o.id DESC
             LIMIT 1) AS order_id
    FROM players p
    LEFT JOIN (team_members tm JOIN teams t ON t.id = tm.team_id AND t.status = 1)
           ON tm.player_id = p.id AND tm.left_at IS NULL
    WHERE p.user_id = %s AND p.status = 1
"""

# Every enabled team the player has been in, once each. A current membership has no end, so
# it sorts as the most recent; past teams follow by when the player left them.
TEAMS_SQL = """
    SELECT t.id, t.name, t.logo
    FROM players p
    LEFT JOIN LATERAL (
        SELECT t.id, t.name, t.logo,
               max(COALESCE(tm.left_at, 'infinity'::timestamptz)) AS last_seen,
               max(tm.joined_at) AS last_joined
        FROM team_members tm JOIN teams t ON t.id = tm.team_id AND t.status = 1
        WHERE tm.player_id = p.id
        GROUP BY t.id
    ) t ON true
    WHERE p.user_id = %s AND p.status = 1
    ORDER BY t.last_seen DESC, t.last_joined DESC, t.id DESC
"""


# The membership is the member (会员) record: the payment that makes a user a member gives them a
# card, prefilled with what the user record knows (the user name stands in for the real name),
# which the club's staff complete. A card that already exists, disabled by staff or not, is kept.
# sql/004 gave one to each member from before this rule.
CREATE_PROFILE_SQL = """
    INSERT INTO players (user_id, cn_name, mobile, sex)
    SELECT id, username, COALESCE(mobile, ''), sex FROM users WHERE id = %s
    ON CONFLICT (user_id) DO NOTHING
"""


async def create_profile(cur: aiopg.Cursor, user_id: int) -> None:
    """Give a new member a prefilled player card, inside the caller's transaction (see CREATE_PROFILE_SQL)."""
    await cur.execute(CREATE_PROFILE_SQL, (user_id,))


async def player_profile(pool: aiopg.Pool, user_id: int) -> db.Row:
    """The user's enabled player profile with its current team name and covering paid order."""
    row = await db.fetchone(pool, PROFILE_SQL, (user_id,))
    if row is None:
        raise MemberNotFound()
    return row


async def player_teams(pool: aiopg.Pool, user_id: int) -> list[db.Row]:
    """The teams of the user's player profile, current first (rows: id, name, logo)."""
    rows = await db.fetchall(pool, TEAMS_SQL, (user_id,))
    if not rows:
        raise MemberNotFound()
    # A profile without teams comes back as one row of NULLs from the LEFT JOIN.
    if rows[0]["id"] is None:
        raise NoTeam()
    return rows
