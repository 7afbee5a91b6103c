"""Teams: the current player's teams and the matches of one team."""

from __future__ import annotations

from aiohttp import web

from ..errors import MemberNotFound, NoTeam, TeamHasNoCompetitions, TeamNotFound
from ..keys import pg_key
from ..lib import formats
from ..services.players import player_teams
from ..store import db
from ..web.auth import current_user_id
from ..web.fields import PathId, Spec
from ..web.openapi import array, describe, integer, obj, string
from ..web.params import MAX_ID
from ..web.responses import json_response

routes = web.RouteTableDef()


TEAM = obj("球队", id=integer("球队 ID"), name=string("球队名称"), logo=string("球队 LOGO URL"))
TEAM_COMPETITION = obj(
    "球队参与的赛事",
    id=integer("赛事 ID"),
    title=string("标题"),
    main_img_url=string("封面路径"),
    play_time=string("比赛时间 YYYY-MM-DD HH:MM:SS"),
)

# The nested join keeps the team row when it has no published match, telling 30001 from 30006.
TEAM_COMPETITIONS_SQL = """
    SELECT c.id, c.title, c.main_img_url, c.play_time
    FROM teams t
    LEFT JOIN (competition_teams ct JOIN competitions c ON c.id = ct.competition_id AND c.status = 1)
           ON ct.team_id = t.id
    WHERE t.id = %s AND t.status = 1
    ORDER BY c.play_time DESC, c.id DESC
"""


@routes.get("/api/v1/team/by_user")
@describe(
    "获取会员参与过的所有球队列表",
    tag="球队",
    response=array(TEAM, "球队列表，当前球队在前，其余按离队时间由近及远"),
    errors=[MemberNotFound, NoTeam],
    description=(
        "会员尚未加入任何球队时答 404 + 30003（球员数据页据此显示“暂无数据”）；"
        "从未成为会员或球员信息被禁用时答 404 + 30002。"
    ),
)
async def list_user_teams(request: web.Request) -> web.Response:
    teams = await player_teams(request.config_dict[pg_key], current_user_id(request))
    return json_response([{"id": t["id"], "name": t["name"], "logo": t["logo"]} for t in teams])


class TeamRef(Spec):
    id = PathId("球队 ID", minimum=1)


@routes.get(r"/api/v1/team/{id:[0-9]+}/competitions")
@describe(
    "根据球队ID获取球队参与过的赛事列表",
    tag="球队",
    params=TeamRef,
    response=array(TEAM_COMPETITION, "已发布的赛事，比赛时间由近及远"),
    errors=[TeamNotFound, TeamHasNoCompetitions],
)
async def list_team_competitions(request: web.Request) -> web.Response:
    team_id = (await TeamRef.read(request)).id
    if team_id > MAX_ID:
        raise TeamNotFound()
    rows = await db.fetchall(request.config_dict[pg_key], TEAM_COMPETITIONS_SQL, (team_id,))
    if not rows:
        raise TeamNotFound()
    if rows[0]["id"] is None:
        raise TeamHasNoCompetitions()
    return json_response(
        [
            {
                "id": r["id"],
                "title": r["title"],
                "main_img_url": r["main_img_url"],
                "play_time": formats.fmt_time(r["play_time"]),
            }
            for r in rows
        ]
    )
