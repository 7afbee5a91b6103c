"""Matches (competitions) as the club edits them: the console's list, and every write with its cache invalidation."""

from __future__ import annotations

import typing

from aiohttp import web

from ..keys import content_cache_key, pg_key
from ..store import db
from .editing import (
    Invalid,
    ListQuery,
    NotFound,
    clean_html,
    delete_unless_used,
    fetch_page,
    insert_row,
    order_clause,
    search_clause,
    set_status,
    update_row,
)

FIELDS = ("title", "summary", "description", "score", "main_img_url", "play_time", "notes", "is_hot", "capacity",
          "apply_deadline", "venue")
# What a copy of a match takes from it (the next round at the same place, with the same teams): not its
# result, sign-ups, box score or publication.
COPIED = ("title", "summary", "description", "main_img_url", "notes", "is_hot", "capacity", "venue")
SORTS = {"play_time": "c.play_time", "title": "c.title", "id": "c.id", "status": "c.status"}
USES = [
    ("SELECT count(*) FROM videos WHERE competition_id = %(id)s", "视频"),
    ("SELECT count(*) FROM lives WHERE competition_id = %(id)s", "直播"),
    ("SELECT count(*) FROM competition_applies WHERE competition_id = %(id)s", "报名"),
    ("SELECT count(*) FROM box_scores WHERE competition_id = %(id)s", "技术统计"),
]
COLUMNS = """
    c.id, c.title, c.summary, c.description, c.score, c.main_img_url, c.play_time, c.notes, c.is_hot, c.venue,
    c.status, c.updated_at, c.capacity, c.apply_deadline, c.club_score, c.opponent_score,
    CASE WHEN c.club_score IS NULL THEN c.score ELSE c.club_score || ' : ' || c.opponent_score END AS result,
    (SELECT count(*) FROM competition_applies a WHERE a.competition_id = c.id) AS signups,
    (SELECT string_agg(t.name, ' / ' ORDER BY t.name) FROM competition_teams ct
       JOIN teams t ON t.id = ct.team_id WHERE ct.competition_id = c.id) AS team_names
"""


# The match list's filters by time and result: (label, condition).
WHEN = {
    "upcoming": ("未开始", "c.play_time >= now()"),
    "finished": ("已结束", "c.play_time < now()"),
    # Without a result entered on the result page (a score typed in the old free-text box is no result: the
    # season statistics and the box score need the result page's).
    "unscored": ("已结束未录结果", "c.play_time < now() AND c.club_score IS NULL"),
}


async def list_competitions(pool: typing.Any, query: ListQuery, when: str | None = None,
                            team: int | None = None) -> tuple[list[db.Row], int]:
    """A page of matches matching the search; `when`: a key of WHEN; `team`: those the team plays in."""
    where, args = search_clause(query, "c.title", "c.summary", "c.score", "c.venue")
    clauses = [where] if where else []
    if when in WHEN:
        clauses.append(WHEN[when][1])
    if team is not None:
        clauses.append("EXISTS (SELECT 1 FROM competition_teams ct WHERE ct.competition_id = c.id"
                       " AND ct.team_id = %(team)s)")
        args["team"] = team
    order = order_clause(SORTS, query, "play_time", "c.id")
    return await fetch_page(pool, COLUMNS, "competitions c", " AND ".join(clauses), args, order, query)


async def get_competition(pool: typing.Any, competition_id: int) -> db.Row | None:
    row = await db.fetchone(pool, f"SELECT {COLUMNS} FROM competitions c WHERE c.id = %s", (competition_id,))
    if row is not None:
        row["team_ids"] = await competition_team_ids(pool, competition_id)
    return row


async def competition_team_ids(pool: typing.Any, competition_id: int) -> list[int]:
    rows = await db.fetchall(pool, "SELECT team_id FROM competition_teams WHERE competition_id = %s ORDER BY team_id",
                             (competition_id,))
    return [row["team_id"] for row in rows]


async def competition_choices(pool: typing.Any) -> list[tuple[int, str]]:
    """(id, label) of every match, newest first, for the pickers of videos and lives."""
    rows = await db.fetchall(pool, "SELECT id, title, play_time FROM competitions ORDER BY play_time DESC, id DESC")
    return [(row["id"], f"{row['play_time']:%Y-%m-%d} {row['title']}") for row in rows]


def _values(values: dict[str, typing.Any]) -> dict[str, typing.Any]:
    out = {name: values[name] for name in FIELDS if name in values}
    if "description" in out:
        out["description"] = clean_html(out["description"])
    return out


async def _set_teams(cur: typing.Any, competition_id: int, team_ids: typing.Sequence[int]) -> None:
    await cur.execute("DELETE FROM competition_teams WHERE competition_id = %s", (competition_id,))
    if team_ids:
        await cur.execute(
            "INSERT INTO competition_teams (competition_id, team_id) SELECT %s, t.id FROM teams t WHERE t.id = ANY(%s)",
            (competition_id, list(team_ids)),
        )
        if cur.rowcount != len(set(team_ids)):
            raise Invalid("所选球队不存在", "team_ids")


async def create_competition(app: web.Application, values: dict[str, typing.Any], team_ids: typing.Sequence[int],
                             *, published: bool = False) -> int:
    """A new match, a draft unless `published`."""
    async with db.transaction(app[pg_key]) as cur:
        competition_id = await insert_row(cur, "competitions", {**_values(values), "status": int(published)})
        await _set_teams(cur, competition_id, team_ids)
    await changed(app)
    return competition_id


async def update_competition(app: web.Application, competition_id: int, values: dict[str, typing.Any],
                             team_ids: typing.Sequence[int]) -> None:
    async with db.transaction(app[pg_key]) as cur:
        await update_row(cur, "competitions", competition_id, _values(values))
        await _set_teams(cur, competition_id, team_ids)
    await changed(app)


async def copy_competition(app: web.Application, competition_id: int, play_time: typing.Any) -> int:
    """A draft copy of a match (COPIED fields, its teams) playing at `play_time`, its sign-up deadline moved
    with it; the new match's id. NotFound when there is no such match."""
    async with db.transaction(app[pg_key]) as cur:
        await cur.execute(f"SELECT {', '.join(COPIED)}, play_time, apply_deadline FROM competitions WHERE id = %s",
                          (competition_id,))
        row = await cur.fetchone()
        if row is None:
            raise NotFound()
        values = {name: row[name] for name in COPIED}
        if row["apply_deadline"] is not None:
            values["apply_deadline"] = play_time - (row["play_time"] - row["apply_deadline"])
        copy_id = await insert_row(cur, "competitions", {**values, "play_time": play_time, "status": 0})
        await cur.execute("INSERT INTO competition_teams (competition_id, team_id) SELECT %s, team_id"
                          " FROM competition_teams WHERE competition_id = %s", (copy_id, competition_id))
    await changed(app)
    return copy_id


async def publish_competition(app: web.Application, competition_id: int, published: bool) -> None:
    await set_status(app[pg_key], "competitions", competition_id, int(published))
    await changed(app)


async def delete_competition(app: web.Application, competition_id: int) -> None:
    """Delete a match nothing refers to (its team links go with it); InUse otherwise."""
    await delete_unless_used(app[pg_key], "competitions", competition_id, USES)
    await changed(app)


async def changed(app: web.Application) -> None:
    # Team pages list matches; videos and lives show their match's play_time.
    cache = app[content_cache_key]
    for kind in ("competition", "video", "live"):
        await cache.invalidate(kind)
