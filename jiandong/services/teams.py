"""Teams as the club edits them: the console's list, team members over time, every write with its invalidation."""

from __future__ import annotations

import datetime as dt
import typing

from aiohttp import web

from ..keys import content_cache_key, pg_key
from ..store import db
from .editing import (
    Invalid,
    ListQuery,
    NotFound,
    delete_unless_used,
    fetch_page,
    insert_row,
    order_clause,
    search_clause,
    set_status,
    update_row,
    written,
)

FIELDS = ("name", "logo", "description", "sort")
SORTS = {"name": "t.name", "sort": "t.sort", "id": "t.id", "members": "members"}
USES = [
    ("SELECT count(*) FROM competition_teams WHERE team_id = %(id)s", "赛事"),
    ("SELECT count(*) FROM team_members WHERE team_id = %(id)s", "球员在队记录"),
]
COLUMNS = """
    t.id, t.name, t.logo, t.description, t.sort, t.status, t.created_at,
    (SELECT count(*) FROM team_members tm WHERE tm.team_id = t.id AND tm.left_at IS NULL) AS members
"""


async def list_teams(pool: typing.Any, query: ListQuery) -> tuple[list[db.Row], int]:
    where, args = search_clause(query, "t.name", "t.description")
    return await fetch_page(pool, COLUMNS, "teams t", where, args, order_clause(SORTS, query, "sort", "t.id"), query)


async def get_team(pool: typing.Any, team_id: int) -> db.Row | None:
    return await db.fetchone(pool, f"SELECT {COLUMNS} FROM teams t WHERE t.id = %s", (team_id,))


async def team_choices(pool: typing.Any) -> list[tuple[int, str]]:
    rows = await db.fetchall(pool, "SELECT id, name, status FROM teams ORDER BY sort, name")
    return [(row["id"], row["name"] + ("" if row["status"] else "（已停用）")) for row in rows]


async def team_members(pool: typing.Any, team_id: int) -> list[db.Row]:
    """Everyone who was ever in the team, current members first."""
    return await db.fetchall(
        pool,
        """SELECT tm.id, tm.player_id, tm.joined_at, tm.left_at, p.cn_name, p.number, p.position
           FROM team_members tm JOIN players p ON p.id = tm.player_id
           WHERE tm.team_id = %s ORDER BY tm.left_at IS NOT NULL, tm.left_at DESC, tm.joined_at DESC""",
        (team_id,),
    )


UNIQUE_NAME = ("teams_name_key", "已有同名球队", "name")


async def create_team(app: web.Application, values: dict[str, typing.Any]) -> int:
    async with written(app[pg_key], *UNIQUE_NAME) as cur:
        team_id = await insert_row(cur, "teams", {k: values[k] for k in FIELDS if k in values})
    await changed(app)
    return team_id


async def update_team(app: web.Application, team_id: int, values: dict[str, typing.Any]) -> None:
    async with written(app[pg_key], *UNIQUE_NAME) as cur:
        await update_row(cur, "teams", team_id, {k: values[k] for k in FIELDS if k in values}, touch=False)
    await changed(app)


async def publish_team(app: web.Application, team_id: int, published: bool) -> None:
    await set_status(app[pg_key], "teams", team_id, int(published), touch=False)
    await changed(app)


async def delete_team(app: web.Application, team_id: int) -> None:
    await delete_unless_used(app[pg_key], "teams", team_id, USES, instead="只能停用")
    await changed(app)


def in_other_team(team: str) -> str:
    """Why a player cannot join a team: they are in `team` (a player is in one team at a time)."""
    return f"该球员目前在「{team}」，请先办理离队"


async def add_member(app: web.Application, team_id: int, player_id: int, joined_at: dt.datetime) -> None:
    """The player joins the team; a player is in one team at a time (leave the other first)."""
    async with db.transaction(app[pg_key]) as cur:
        await cur.execute(
            """SELECT t.id, t.name FROM team_members tm JOIN teams t ON t.id = tm.team_id
               WHERE tm.player_id = %s AND tm.left_at IS NULL FOR UPDATE OF tm""",
            (player_id,),
        )
        current = await cur.fetchone()
        if current is not None:
            raise Invalid("该球员已在本队" if current["id"] == team_id else in_other_team(current["name"]), "player_id")
        await cur.execute("SELECT 1 FROM teams WHERE id = %s", (team_id,))
        if await cur.fetchone() is None:
            raise NotFound("teams")
        await cur.execute("SELECT 1 FROM players WHERE id = %s", (player_id,))
        if await cur.fetchone() is None:
            raise Invalid("球员不存在", "player_id")
        try:
            await insert_row(cur, "team_members", {"team_id": team_id, "player_id": player_id,
                                                   "joined_at": joined_at})
        except Exception as exc:
            if db.is_unique_violation(exc, "team_members_current_idx"):
                raise Invalid("该球员已在其他球队", "player_id") from None
            raise
    await changed(app)


async def end_membership(app: web.Application, team_id: int, member_id: int, left_at: dt.datetime) -> None:
    """The player leaves the team at `left_at` (not before joining)."""
    row = await db.fetchone(
        app[pg_key],
        """UPDATE team_members SET left_at = GREATEST(%s, joined_at)
           WHERE id = %s AND team_id = %s AND left_at IS NULL RETURNING id""",
        (left_at, member_id, team_id),
    )
    if row is None:
        raise NotFound("team_members")
    await changed(app)


async def changed(app: web.Application) -> None:
    cache = app[content_cache_key]
    await cache.invalidate("team")
    # A match's result names the club's team.
    await cache.invalidate("competition")
