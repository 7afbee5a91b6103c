"""Matches: detail, the upcoming list, sign-ups, and the current player's matches by team.

The detail is cached as DETAIL (services/content_cache.py). The upcoming list is
read fresh: it carries the reader's own sign-up state and moves with the clock.
"""

from __future__ import annotations

import aiopg
from aiohttp import web

from ..errors import (
    ApplyNotFound,
    CompetitionNotFound,
    DuplicateApply,
    Forbidden,
    MemberNotFound,
    NoTeam,
    OperationError,
    ParameterError,
)
from ..keys import content_cache_key, pg_key
from ..lib import formats
from ..services import results, signups
from ..services.content_cache import shape
from ..services.players import player_teams
from ..store import db
from ..web.auth import current_user_id
from ..web.fields import Int, Paged, PathId, Spec
from ..web.openapi import array, describe, integer, obj, page_of, string
from ..web.params import MAX_ID
from ..web.responses import cached_json, json_response, operation_result, page_body

routes = web.RouteTableDef()


COMPETITION = obj(
    "赛事详情",
    id=integer("赛事 ID"),
    title=string("赛事标题"),
    summary=string("赛事简介"),
    description=string(
        "赛事数据详情（HTML）：员工撰写的战报；已录入比赛结果时其后接各节比分表和本队技术统计表"
        "（<div class=\"box-score\"><table>…，内联样式，表格在自身框内横向滚动；所有值均已转义）"),
    score=string("赛事结果：已录入比赛结果时为「本队 比分 : 比分 对手」，如「建东猛龙 88 : 76 青竹队」；"
                 "否则为员工填写的文字（赛前为空）"),
    main_img_url=string("封面照"),
    play_time=string("比赛时间 YYYY-MM-DD HH:MM:SS"),
    notes=string("备注"),
    is_hot=integer("是否热门赛事 0/1"),
)
UPCOMING = obj(
    "即将开始的赛事",
    id=integer("赛事 ID"),
    title=string("赛事标题"),
    summary=string("简介"),
    main_img_url=string("封面照"),
    play_time=string("比赛时间"),
    apply_status=integer("当前用户是否已报名 0/1"),
)
MATCH_ITEM = obj(
    "赛事",
    id=integer("赛事 ID"),
    title=string("赛事标题"),
    main_img_url=string("赛事封面照"),
    play_time=string("赛事时间"),
)
TEAM_MATCHES = obj(
    "球队及其赛事",
    id=integer("球队 ID"),
    name=string("球队名称"),
    logo=string("球队 LOGO"),
    competitions=array(MATCH_ITEM, "该球队已发布的赛事，比赛时间由近及远"),
)


class CompetitionRef(Spec):
    id = Int("赛事 ID", minimum=1, maximum=MAX_ID)


class CompetitionPath(Spec):
    id = PathId("赛事 ID", minimum=1)


DETAIL = shape("competition", "competition", bytes)
DETAIL_SQL = """
    SELECT c.id, c.title, c.summary, c.description, c.score, c.main_img_url, c.play_time, c.notes, c.is_hot,
           c.club_score, c.opponent_score, c.periods, t.name AS team_name, o.name AS opponent_name
    FROM competitions c LEFT JOIN teams t ON t.id = c.team_id LEFT JOIN opponents o ON o.id = c.opponent_id
    WHERE c.id = %s AND c.status = 1
"""

# The total rides along with the page (a window count), so a page costs one query.
UPCOMING_SQL = """
    SELECT c.id, c.title, c.summary, c.main_img_url, c.play_time,
           EXISTS (SELECT 1 FROM competition_applies a
                   WHERE a.competition_id = c.id AND a.user_id = %(user_id)s) AS applied,
           count(*) OVER () AS total
    FROM competitions c
    WHERE c.status = 1 AND c.play_time > now()
    ORDER BY c.play_time, c.id
    LIMIT %(limit)s OFFSET %(offset)s
"""
UPCOMING_COUNT_SQL = "SELECT count(*) FROM competitions WHERE status = 1 AND play_time > now()"

TEAM_MATCHES_SQL = """
    SELECT ct.team_id, c.id, c.title, c.main_img_url, c.play_time
    FROM competition_teams ct JOIN competitions c ON c.id = ct.competition_id AND c.status = 1
    WHERE ct.team_id = ANY(%s)
    ORDER BY c.play_time DESC, c.id DESC
"""

def _match_item(row: db.Row) -> dict[str, object]:
    return {
        "id": row["id"],
        "title": row["title"],
        "main_img_url": row["main_img_url"],
        "play_time": formats.fmt_time(row["play_time"]),
    }


async def _competition_id(request: web.Request) -> int:
    return (await CompetitionRef.read(request)).id


@routes.get("/api/v1/competition/by_member")
@describe(
    "获取球员赛事列表（手风琴）",
    tag="赛事",
    response=array(TEAM_MATCHES, "球员待过的球队，当前球队在前"),
    errors=[MemberNotFound, NoTeam],
    description=(
        "会员尚未加入任何球队时答 404 + 30003；从未成为会员或球员信息被禁用时答 404 + 30002。"
    ),
)
async def list_member_competitions(request: web.Request) -> web.Response:
    pool = request.config_dict[pg_key]
    teams = await player_teams(pool, current_user_id(request))
    matches = await db.fetchall(pool, TEAM_MATCHES_SQL, ([t["id"] for t in teams],))
    by_team: dict[int, list[dict[str, object]]] = {t["id"]: [] for t in teams}
    for row in matches:
        by_team[row["team_id"]].append(_match_item(row))
    return json_response(
        [{"id": t["id"], "name": t["name"], "logo": t["logo"], "competitions": by_team[t["id"]]} for t in teams]
    )


@routes.get(r"/api/v1/competition/{id:[0-9]+}")
@describe(
    "赛事详情",
    tag="赛事",
    params=CompetitionPath,
    response=COMPETITION,
    errors=[CompetitionNotFound],
    description=(
        "赛事录入了比赛结果后，score 由结果生成（「本队 比分 : 比分 对手」），description 为员工撰写的战报，"
        "其后接各节比分表（若录入）和本队技术统计表（球员、时间、得分、篮板、助攻、抢断、盖帽、失误、犯规及合计）。"
        "表格为服务器生成的 HTML，所有值均已转义，按 HTML 插入页面即可；表格放在可横向滚动的容器中，"
        "手机上不会撑宽页面。未录入结果的赛事照旧返回员工填写的文字。"
    ),
)
async def get_competition(request: web.Request) -> web.Response:
    competition_id = (await CompetitionPath.read(request)).id
    if competition_id > MAX_ID:
        raise CompetitionNotFound()

    async def load() -> dict[str, object]:
        pool = request.config_dict[pg_key]
        row = await db.fetchone(pool, DETAIL_SQL, (competition_id,))
        if row is None:
            # Raised inside the loader, so the miss is not cached: a match published a moment
            # later shows at once. A miss is one index probe, and caching misses would let a scan
            # of made-up ids push the hot entries out of the cache.
            raise CompetitionNotFound()
        # Derived here, once per load: the cached answer is served as it is.
        score, description = await results.h5_texts(pool, row)
        return {
            "id": row["id"],
            "title": row["title"],
            "summary": row["summary"],
            "description": description,
            "score": score,
            "main_img_url": row["main_img_url"],
            "play_time": formats.fmt_time(row["play_time"]),
            "notes": row["notes"],
            "is_hot": formats.flag(row["is_hot"]),
        }

    return await cached_json(request.config_dict[content_cache_key], DETAIL(competition_id), load)


async def _upcoming_page(pool: aiopg.Pool, user_id: int, page: int, size: int) -> tuple[list[db.Row], int]:
    rows = await db.fetchall(
        pool, UPCOMING_SQL, {"user_id": user_id, "limit": size, "offset": (page - 1) * size}
    )
    if rows:
        return rows, rows[0]["total"]
    # Past the last page the window count has no row to ride on.
    total = await db.fetchval(pool, UPCOMING_COUNT_SQL) if page > 1 else 0
    return rows, total


@routes.get("/api/v1/competition/begins")
@routes.post("/api/v1/competition/begins")
@describe(
    "即将开始的赛事列表（分页）",
    tag="赛事",
    params=Paged,
    response=page_of(UPCOMING),
    errors=[ParameterError],
    description="比赛时间在当前时间之后的已发布赛事，最近的在前。",
)
async def list_upcoming_competitions(request: web.Request) -> web.Response:
    p = await Paged.read(request)
    page, size = p.page, p.size
    rows, total = await _upcoming_page(request.config_dict[pg_key], current_user_id(request), page, size)
    items = [
        {
            "id": r["id"],
            "title": r["title"],
            "summary": r["summary"],
            "main_img_url": r["main_img_url"],
            "play_time": formats.fmt_time(r["play_time"]),
            "apply_status": formats.flag(r["applied"]),
        }
        for r in rows
    ]
    return json_response(page_body(items, total, page, size))


@routes.post("/api/v1/competition/apply/commit")
@routes.post("/api/v1/competition/apply")
@describe(
    "提交赛事报名",
    tag="赛事",
    params=CompetitionRef,
    errors=[ParameterError, CompetitionNotFound, Forbidden, OperationError, DuplicateApply],
    description=(
        "仅限有效会员。赛事开始后、报名截止时间之后、或报名人数已满时不能报名：答 400 + 10000，"
        f"msg 分别为「{signups.STARTED}」「{signups.CLOSED}」「{signups.FULL}」。"
        "人数上限由最后一个名额的并发报名中只有一人成功来保证；即将开始的赛事列表中的 apply_status "
        "始终只表示当前用户是否已报名。"
    ),
)
async def apply_competition(request: web.Request) -> web.Response:
    competition_id = await _competition_id(request)
    await signups.apply(request.config_dict, current_user_id(request), competition_id)
    return operation_result(request)


@routes.post("/api/v1/competition/apply/cancel")
@describe(
    "取消赛事报名",
    tag="赛事",
    params=CompetitionRef,
    errors=[ParameterError, CompetitionNotFound, OperationError, ApplyNotFound],
    description="赛事开始前均可取消（报名截止之后也可以）；赛事开始后不能取消报名。",
)
async def cancel_apply(request: web.Request) -> web.Response:
    await signups.cancel(request.config_dict, current_user_id(request), await _competition_id(request))
    return operation_result(request)
