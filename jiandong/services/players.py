"""Player profiles (球员信息): the card a membership gives, the current user's card and its teams."""

from __future__ import annotations

import typing

import aiopg

from ..errors import MemberNotFound, NoTeam
from ..keys import content_cache_key, pg_key
from ..store import db
from .content_cache import user_changed
from .editing import (
    Invalid,
    delete_unless_used,
    fetch_page,
    insert_row,
    like_pattern,
    order_clause,
    search_clause,
    set_status,
    update_row,
)

# A disabled profile (status 0), or a membership disabled by the staff, reads as no profile at all:
# 30002 says "不存在或已被禁用".
PROFILE_SQL = """
    SELECT p.id, p.cn_name, p.birthday, p.birth_addr, p.mobile, p.sex, p.stature, p.weight,
           p.native_place, p.nation, p.photo, p.individual, p.number, p.position, p.school,
           p.experience, p.feature, p.honor, p.comment,
           -- current_date is the club's date: connections run in its time zone
           extract(year FROM age(current_date, p.birthday))::int AS age,
           t.name AS team, u.head_img
    FROM players p
    LEFT JOIN (team_members tm JOIN teams t ON t.id = tm.team_id AND t.status = 1)
           ON tm.player_id = p.id AND tm.left_at IS NULL
    -- A membership disabled by the staff (member_status 2) reads as no profile either.
    JOIN users u ON u.id = p.user_id AND u.member_status <> 2
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
    JOIN users u ON u.id = p.user_id AND u.member_status <> 2
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
    """The user's enabled player profile with its current team name and the user's head_img."""
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


# -- the console: player cards as the club's staff keep them ---------------------------------------

CARD_FIELDS = ("cn_name", "birthday", "birth_addr", "mobile", "sex", "stature", "weight", "native_place", "nation",
               "photo", "individual", "number", "position", "school", "experience", "feature", "honor", "comment",
               "user_id")
CARD_SORTS = {"cn_name": "p.cn_name", "number": "p.number", "id": "p.id", "updated_at": "p.updated_at"}
CARD_COLUMNS = f"""
    {", ".join("p." + name for name in CARD_FIELDS)}, p.id, p.status, p.updated_at,
    u.username AS user_name, u.mobile AS user_mobile,
    (SELECT t.name FROM team_members tm JOIN teams t ON t.id = tm.team_id
      WHERE tm.player_id = p.id AND tm.left_at IS NULL) AS team
"""
CARD_SOURCE = "players p LEFT JOIN users u ON u.id = p.user_id"
CARD_USES = [
    ("SELECT count(*) FROM players WHERE id = %(id)s AND user_id IS NOT NULL", "关联的会员账号"),
    ("SELECT count(*) FROM team_members WHERE player_id = %(id)s", "在队记录"),
    ("SELECT count(*) FROM box_scores WHERE player_id = %(id)s", "技术统计"),
]


# The list's team filter: a team's id, or NO_TEAM for cards in no team now.
NO_TEAM = 0
CURRENT_TEAM_SQL = "SELECT tm.team_id FROM team_members tm WHERE tm.player_id = p.id AND tm.left_at IS NULL"


async def list_cards(pool: aiopg.Pool, query: typing.Any, team: int | None = None) -> tuple[list[db.Row], int]:
    """A page of cards matching the search; `team`: only that team's current members (NO_TEAM: in none)."""
    where, args = search_clause(query, "p.cn_name", "p.number", "p.mobile", "u.username")
    if team is not None:
        clause = f"NOT EXISTS ({CURRENT_TEAM_SQL})" if team == NO_TEAM else f"%(team)s IN ({CURRENT_TEAM_SQL})"
        where, args = " AND ".join(c for c in (where, clause) if c), {**args, "team": team}
    return await fetch_page(pool, CARD_COLUMNS, CARD_SOURCE, where, args,
                            order_clause(CARD_SORTS, query, "updated_at", "p.id"), query)


# A card as the import's columns read it (services/rosters.HEADERS): its current team and since when.
SHEET_SQL = """
    SELECT p.id, p.cn_name, p.number, p.mobile, p.sex, p.birthday, p.stature, p.weight, p.position, p.status,
           t.name AS team, tm.joined_at::date AS joined_on, u.username AS user_name
    FROM players p LEFT JOIN users u ON u.id = p.user_id
    LEFT JOIN (team_members tm JOIN teams t ON t.id = tm.team_id) ON tm.player_id = p.id AND tm.left_at IS NULL
"""


async def sheet_cards(pool: aiopg.Pool, team: int | None = None) -> list[db.Row]:
    """Every card (or a team's current members), for an export: by team, then number, then name."""
    where = "" if team is None else "WHERE tm.team_id = %(team)s"
    return await db.fetchall(pool, f"""{SHEET_SQL} {where}
        ORDER BY t.name NULLS LAST, nullif(regexp_replace(p.number, '\\D', '', 'g'), '')::int NULLS LAST,
                 p.cn_name, p.id""", {"team": team})


async def search_cards(pool: aiopg.Pool, term: str, limit: int = 20) -> list[db.Row]:
    """Cards to pick from as staff type: name containing `term`, or the number or phone it is; current team."""
    return await db.fetchall(
        pool,
        """SELECT p.id, p.cn_name, p.number, p.status, t.name AS team FROM players p
           LEFT JOIN (team_members tm JOIN teams t ON t.id = tm.team_id)
                  ON tm.player_id = p.id AND tm.left_at IS NULL
           WHERE p.cn_name ILIKE %(like)s OR p.number = %(term)s OR p.mobile = %(term)s
           ORDER BY p.cn_name = %(term)s DESC, p.status DESC, p.cn_name, p.id LIMIT %(limit)s""",
        {"like": like_pattern(term), "term": term, "limit": limit},
    )


async def card_of_user(pool: aiopg.Pool, user_id: int) -> db.Row | None:
    """The card a user's account is linked to (id, name), if any."""
    return await db.fetchone(pool, "SELECT id, cn_name, status FROM players WHERE user_id = %s", (user_id,))


async def get_card(pool: aiopg.Pool, player_id: int) -> db.Row | None:
    return await db.fetchone(pool, f"SELECT {CARD_COLUMNS} FROM {CARD_SOURCE} WHERE p.id = %s", (player_id,))


async def card_teams(pool: aiopg.Pool, player_id: int) -> list[db.Row]:
    """The player's team history, current team first."""
    return await db.fetchall(
        pool,
        """SELECT tm.id, tm.team_id, t.name, tm.joined_at, tm.left_at FROM team_members tm
           JOIN teams t ON t.id = tm.team_id WHERE tm.player_id = %s
           ORDER BY tm.left_at IS NOT NULL, tm.left_at DESC, tm.joined_at DESC""",
        (player_id,),
    )


async def find_users(pool: aiopg.Pool, term: str, limit: int = 20) -> list[db.Row]:
    """Users whose name contains `term`, or whose phone or openid is `term`, to link a card to."""
    return await db.fetchall(
        pool,
        """SELECT u.id, u.username, u.mobile, u.openid, p.id AS player_id FROM users u
           LEFT JOIN players p ON p.user_id = u.id
           WHERE u.username ILIKE %(like)s OR u.mobile = %(term)s OR u.openid = %(term)s
           ORDER BY u.id DESC LIMIT %(limit)s""",
        {"like": like_pattern(term), "term": term, "limit": limit},
    )


def _card_values(values: typing.Mapping[str, typing.Any]) -> dict[str, typing.Any]:
    return {k: values[k] for k in CARD_FIELDS if k in values}


async def _save_card(app: typing.Any, player_id: int | None, values: typing.Mapping[str, typing.Any]) -> int:
    row = _card_values(values)
    try:
        async with db.transaction(app[pg_key]) as cur:
            if row.get("user_id") is not None:
                await cur.execute("SELECT 1 FROM users WHERE id = %s", (row["user_id"],))
                if await cur.fetchone() is None:
                    raise Invalid("用户不存在", "user_id")
            if player_id is None:
                player_id = await insert_row(cur, "players", row)
            else:
                await cur.execute("SELECT user_id FROM players WHERE id = %s", (player_id,))
                before = await cur.fetchone()
                await update_row(cur, "players", player_id, row)
                if before and before["user_id"] and before["user_id"] != row.get("user_id"):
                    await user_changed(app, before["user_id"])
    except Exception as exc:
        if db.is_unique_violation(exc, "players_user_id_key"):
            raise Invalid("该用户已有球员卡", "user_id") from None
        raise
    if row.get("user_id"):
        await user_changed(app, row["user_id"])
    # Match reports name the players of their box scores.
    await app[content_cache_key].invalidate("competition")
    return player_id


async def create_card(app: typing.Any, values: typing.Mapping[str, typing.Any]) -> int:
    return await _save_card(app, None, values)


async def update_card(app: typing.Any, player_id: int, values: typing.Mapping[str, typing.Any]) -> None:
    await _save_card(app, player_id, values)


async def enable_card(app: typing.Any, player_id: int, enabled: bool) -> None:
    """A disabled card reads as none (member/info answers 30002)."""
    await set_status(app[pg_key], "players", player_id, int(enabled))


async def delete_card(app: typing.Any, player_id: int) -> None:
    await delete_unless_used(app[pg_key], "players", player_id, CARD_USES, instead="只能停用")
