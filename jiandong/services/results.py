"""Match results (赛事结果): the club's team, the opponent, the final and per-period scores, the box score, what
the H5 match detail derives from them, and the season's statistics.

The H5 answers are derived when the match detail is loaded into the content cache (api/competitions.py): a
hit costs nothing more, and a rename of a team, player or opponent shows at the next load. Every write here
drops the match caches (services/competitions.changed), as the match's own edits do.
"""

from __future__ import annotations

import dataclasses
import typing

from aiohttp import web

from ..keys import pg_key
from ..lib import encoding
from ..lib.cleaning import is_plain_name
from ..store import db
from . import audit, box_score, competitions
from .box_score import COLUMNS
from .editing import Invalid, Problems

NAME_MAX = 50


@dataclasses.dataclass
class ResultInput:
    """A result as the console sends it: an opponent by id, or a new one by name (and logo)."""

    team_id: int | None
    opponent_id: int | None
    new_opponent: str
    club_score: int | None
    opponent_score: int | None
    periods: list[list[int]]
    box: dict[int, dict[str, int]]  # player id -> {stat key: value}, only the players who played


# -- reading for the console -----------------------------------------------------------------------------

MATCH_SQL = """
    SELECT c.id, c.title, c.play_time, c.team_id, c.opponent_id, c.club_score, c.opponent_score, c.periods,
           t.name AS team_name, o.name AS opponent_name, o.logo AS opponent_logo,
           (SELECT min(ct.team_id) FROM competition_teams ct WHERE ct.competition_id = c.id) AS first_team_id
    FROM competitions c LEFT JOIN teams t ON t.id = c.team_id LEFT JOIN opponents o ON o.id = c.opponent_id
    WHERE c.id = %s
"""
# The team's players at play time, those in the team now, and whoever already has a line in the box score.
ROSTER_SQL = r"""
    SELECT p.id, p.cn_name, p.number FROM players p
    WHERE p.id IN (
        SELECT tm.player_id FROM team_members tm
        WHERE tm.team_id = %(team)s AND (tm.left_at IS NULL
              OR (tm.joined_at <= %(at)s AND tm.left_at > %(at)s))
        UNION SELECT b.player_id FROM box_scores b WHERE b.competition_id = %(id)s)
    ORDER BY NULLIF(regexp_replace(p.number, '\D', '', 'g'), '')::int NULLS LAST, p.cn_name, p.id
"""
BOX_SQL = r"""
    SELECT b.player_id, p.cn_name, p.number, b.stats FROM box_scores b JOIN players p ON p.id = b.player_id
    WHERE b.competition_id = %s
    ORDER BY NULLIF(regexp_replace(p.number, '\D', '', 'g'), '')::int NULLS LAST, p.cn_name, p.id
"""


async def match_result(pool: typing.Any, competition_id: int) -> db.Row | None:
    """The match with its result (team and opponent names), or None."""
    return await db.fetchone(pool, MATCH_SQL, (competition_id,))


async def roster(pool: typing.Any, match: typing.Mapping[str, typing.Any], team_id: int | None) -> list[db.Row]:
    """Who can have a line in the match's box score: the team's players then and now, and those who have one."""
    if team_id is None:
        return [{"id": row["player_id"], "cn_name": row["cn_name"], "number": row["number"]}
                for row in await box_rows(pool, match["id"])]
    return await db.fetchall(pool, ROSTER_SQL, {"team": team_id, "at": match["play_time"], "id": match["id"]})


async def box_rows(pool: typing.Any, competition_id: int) -> list[db.Row]:
    return await db.fetchall(pool, BOX_SQL, (competition_id,))


async def opponent_choices(pool: typing.Any) -> list[tuple[int, str]]:
    rows = await db.fetchall(pool, "SELECT id, name FROM opponents ORDER BY name")
    return [(row["id"], row["name"]) for row in rows]


# -- writing ---------------------------------------------------------------------------------------------


def problems(values: ResultInput) -> list[Invalid]:
    """Every rule the result breaks (none: it can be saved)."""
    found = []
    if values.team_id is None:
        found.append(Invalid("请选择本队", "team_id"))
    if values.opponent_id is None and not values.new_opponent:
        found.append(Invalid("请选择对手或填写新对手名称", "opponent_id"))
    if len(values.new_opponent) > NAME_MAX:
        found.append(Invalid(f"对手名称不超过 {NAME_MAX} 个字", "new_opponent"))
    elif not is_plain_name(values.new_opponent):
        # It goes into the score members read (the H5 `score`), as the API's names do.
        found.append(Invalid('对手名称不能含有 < > " 或控制字符', "new_opponent"))
    if values.club_score is None or values.opponent_score is None:
        found.append(Invalid("请填写双方比分", "club_score" if values.club_score is None else "opponent_score"))
    return found


def _check(values: ResultInput) -> None:
    if found := problems(values):
        raise Problems(found)


async def _opponent(cur: typing.Any, values: ResultInput) -> db.Row:
    """The chosen opponent, or the one of the typed name (made if new: names are unique, so reused)."""
    if values.new_opponent:
        await cur.execute("INSERT INTO opponents (name) VALUES (%s) ON CONFLICT (name) DO NOTHING"
                          " RETURNING id, name", (values.new_opponent,))
        row = await cur.fetchone()
        if row is None:
            await cur.execute("SELECT id, name FROM opponents WHERE name = %s", (values.new_opponent,))
            row = await cur.fetchone()
    else:
        await cur.execute("SELECT id, name FROM opponents WHERE id = %s", (values.opponent_id,))
        row = await cur.fetchone()
    if row is None:
        raise Invalid("所选对手不存在", "opponent_id")
    return typing.cast(db.Row, row)


def _box_lines(rows: typing.Iterable[typing.Mapping[str, typing.Any]]) -> list[str]:
    """A box score for the audit log: one line per player."""
    return [box_score.player_name(row) + "：" + "，".join(
        f"{s.label} {row['stats'][s.key]}" for s in COLUMNS if row["stats"].get(s.key) is not None) for row in rows]


def _logged(match: typing.Mapping[str, typing.Any], rows: list[db.Row]) -> dict[str, typing.Any]:
    periods = match["periods"] or []
    return {"team": match["team_name"], "opponent": match["opponent_name"],
            "club_score": match["club_score"], "opponent_score": match["opponent_score"],
            "periods": [f"{a}:{b}" for a, b in periods], "box": _box_lines(rows)}


async def save_result(app: web.Application, actor: audit.Actor, competition_id: int, values: ResultInput
                      ) -> list[str]:
    """Store the result and the box score (replacing the ones before) with one audit entry; the warnings (sums
    that do not match the score: saved all the same). Invalid when a value breaks a rule."""
    _check(values)
    club, theirs = values.club_score, values.opponent_score
    assert club is not None and theirs is not None  # _check
    pool = app[pg_key]
    async with db.transaction(pool) as cur:
        await cur.execute(MATCH_SQL + " FOR NO KEY UPDATE OF c", (competition_id,))
        before = await cur.fetchone()
        if before is None:
            raise Invalid("赛事不存在")
        await cur.execute("SELECT id FROM teams WHERE id = %s", (values.team_id,))
        if await cur.fetchone() is None:
            raise Invalid("所选球队不存在", "team_id")
        allowed = {row["id"] for row in await roster(pool, before, values.team_id)}
        if set(values.box) - allowed:
            raise Invalid("技术统计中有不属于本队的球员", "box")
        await cur.execute(BOX_SQL, (competition_id,))
        old_rows = await cur.fetchall()
        opponent = await _opponent(cur, values)
        await cur.execute(
            "UPDATE competitions SET team_id = %s, opponent_id = %s, club_score = %s, opponent_score = %s,"
            " periods = %s::jsonb, updated_at = now() WHERE id = %s",
            (values.team_id, opponent["id"], values.club_score, values.opponent_score,
             encoding.dumps_str(values.periods) if values.periods else None, competition_id))
        await cur.execute("DELETE FROM box_scores WHERE competition_id = %s", (competition_id,))
        for player_id, stats in values.box.items():
            await cur.execute("INSERT INTO box_scores (competition_id, player_id, stats) VALUES (%s, %s, %s::jsonb)",
                              (competition_id, player_id, encoding.dumps_str(stats)))
        await cur.execute(MATCH_SQL, (competition_id,))
        after = await cur.fetchone()
        await cur.execute(BOX_SQL, (competition_id,))
        new_rows = await cur.fetchall()
        await audit.record(cur, actor, "results.update", f"competitions:{competition_id}",
                           f"「{before['title'][:50]}」比赛结果："
                           + box_score.score_text(after["team_name"], club, theirs, opponent["name"]),
                           before=_logged(before, old_rows), after=_logged(after, new_rows))
    await competitions.changed(app)
    return [w for w in (box_score.points_warning(new_rows, values.club_score),
                        box_score.periods_warning(values.periods, values.club_score, values.opponent_score)) if w]


async def clear_result(app: web.Application, actor: audit.Actor, competition_id: int) -> bool:
    """Remove the match's result and box score (the opponent stays for other matches): the H5 detail shows the
    stored texts again. False when there was none."""
    pool = app[pg_key]
    async with db.transaction(pool) as cur:
        await cur.execute(MATCH_SQL + " FOR NO KEY UPDATE OF c", (competition_id,))
        before = await cur.fetchone()
        if before is None or before["club_score"] is None:
            return False
        await cur.execute(BOX_SQL, (competition_id,))
        old_rows = await cur.fetchall()
        await cur.execute("DELETE FROM box_scores WHERE competition_id = %s", (competition_id,))
        await cur.execute("UPDATE competitions SET team_id = NULL, opponent_id = NULL, club_score = NULL,"
                          " opponent_score = NULL, periods = NULL, updated_at = now() WHERE id = %s",
                          (competition_id,))
        await audit.record(cur, actor, "results.clear", f"competitions:{competition_id}",
                           f"「{before['title'][:50]}」清除比赛结果", before=_logged(before, old_rows))
    await competitions.changed(app)
    return True


async def set_opponent_logo(app: web.Application, actor: audit.Actor, competition_id: int, url: str) -> None:
    """The logo of the match's opponent (the opponent's own: every match against it shares it)."""
    async with db.transaction(app[pg_key]) as cur:
        await cur.execute("SELECT o.id, o.name, o.logo, c.title FROM competitions c JOIN opponents o"
                          " ON o.id = c.opponent_id WHERE c.id = %s FOR NO KEY UPDATE OF o", (competition_id,))
        row = await cur.fetchone()
        if row is None:
            raise Invalid("请先保存比赛结果（含对手）")
        await cur.execute("UPDATE opponents SET logo = %s WHERE id = %s", (url, row["id"]))
        await audit.record(cur, actor, "results.logo", f"competitions:{competition_id}",
                           f"「{row['title'][:50]}」对手 {row['name'][:50]} 的队徽",
                           before={"opponent": row["name"], "logo": row["logo"]},
                           after={"opponent": row["name"], "logo": url})
    await competitions.changed(app)


# -- the H5 match detail ---------------------------------------------------------------------------------


async def h5_texts(pool: typing.Any, row: typing.Mapping[str, typing.Any]) -> tuple[str, str]:
    """(score, description) of the match detail: derived from the result when the match has one (the staff's
    text followed by the result's tables), else the stored texts as they are."""
    if row["club_score"] is None or not row["team_name"] or not row["opponent_name"]:
        return row["score"], row["description"]
    score = box_score.score_text(row["team_name"], row["club_score"], row["opponent_score"], row["opponent_name"])
    rows = await box_rows(pool, row["id"])
    tables = box_score.report_html(row["team_name"], row["opponent_name"], row["periods"], row["club_score"],
                                   row["opponent_score"], rows)
    return score, row["description"] + tables


# -- the season ------------------------------------------------------------------------------------------

# A season is a calendar year of play times in the club's time zone (connections run in it), as for sign-ups.
SEASON_BOX_SQL = """
    SELECT b.player_id, p.cn_name, p.number, b.stats, t.name AS team_name
    FROM box_scores b JOIN competitions c ON c.id = b.competition_id JOIN players p ON p.id = b.player_id
    LEFT JOIN teams t ON t.id = c.team_id
    WHERE c.play_time >= make_date(%(year)s, 1, 1) AND c.play_time < make_date(%(year)s + 1, 1, 1)
    ORDER BY c.play_time, c.id
"""
SEASON_TEAMS_SQL = """
    SELECT t.id, t.name, count(*) AS games,
           count(*) FILTER (WHERE c.club_score > c.opponent_score) AS wins,
           count(*) FILTER (WHERE c.club_score < c.opponent_score) AS losses,
           count(*) FILTER (WHERE c.club_score = c.opponent_score) AS draws,
           sum(c.club_score) AS points_for, sum(c.opponent_score) AS points_against
    FROM competitions c JOIN teams t ON t.id = c.team_id
    WHERE c.club_score IS NOT NULL
      AND c.play_time >= make_date(%(year)s, 1, 1) AND c.play_time < make_date(%(year)s + 1, 1, 1)
    GROUP BY t.id, t.name ORDER BY wins DESC, t.name
"""
SEASONS_SQL = """
    SELECT DISTINCT extract(year FROM play_time)::int AS year FROM competitions WHERE club_score IS NOT NULL
    UNION SELECT extract(year FROM now())::int ORDER BY year DESC
"""
LEADERS = 3


def _average(total: int, games: int) -> float:
    return round(total / games, 1) if games else 0.0


async def seasons(pool: typing.Any) -> list[int]:
    """The years that have results, and this one."""
    return [row["year"] for row in await db.fetchall(pool, SEASONS_SQL)]


async def season_stats(pool: typing.Any, year: int) -> dict[str, typing.Any]:
    """The season's players (games, totals and per-game averages of every column), teams (won, lost, points for
    and against) and leaders (the best per-game averages of each column)."""
    players: dict[int, dict[str, typing.Any]] = {}
    for row in await db.fetchall(pool, SEASON_BOX_SQL, {"year": year}):
        player = players.setdefault(row["player_id"], {
            "id": row["player_id"], "name": row["cn_name"], "number": row["number"], "teams": [], "games": 0,
            "totals": dict.fromkeys((s.key for s in COLUMNS), 0)})
        player["games"] += 1
        if row["team_name"] and row["team_name"] not in player["teams"]:
            player["teams"].append(row["team_name"])
        for stat in COLUMNS:
            player["totals"][stat.key] += row["stats"].get(stat.key) or 0
    for player in players.values():
        player["averages"] = {key: _average(total, player["games"]) for key, total in player["totals"].items()}
    ranked = sorted(players.values(), key=lambda p: (-p["totals"][box_score.POINTS], p["name"]))
    teams = [{**row, "points_for": row["points_for"] or 0, "points_against": row["points_against"] or 0,
              "avg_for": _average(row["points_for"] or 0, row["games"]),
              "avg_against": _average(row["points_against"] or 0, row["games"])}
             for row in await db.fetchall(pool, SEASON_TEAMS_SQL, {"year": year})]
    leaders = []
    for stat in COLUMNS:

        def rank(player: dict[str, typing.Any], key: str = stat.key) -> tuple[float, int, str]:
            return -player["averages"][key], -player["totals"][key], player["name"]

        best = sorted((p for p in ranked if p["totals"][stat.key]), key=rank)[:LEADERS]
        leaders.append({"stat": stat, "players": best})
    return {"year": year, "players": ranked, "teams": teams, "leaders": leaders}
