"""比赛结果 and 赛季统计: a match's result (team, opponent, final and per-period scores) with its box score, and the
season's statistics per player and per team, with their export."""

from __future__ import annotations

import datetime as dt
import typing

from aiohttp import web
from aiohttp_session import get_session

from ..keys import pg_key, settings_key
from ..services import results, teams
from ..services.admins import EDITOR
from ..services.box_score import COLUMNS, PERIOD_LABELS, parse_stat
from ..services.editing import Invalid, Problems, each
from .errors import PageError
from .exports import XLSX_TYPE, csv_bytes, download, table, xlsx_bytes
from .forms import FormData, Upload, read_form
from .inputs import path_id
from .render import flash, render
from .security import actor, requires
from .uploads import store_image

routes = web.RouteTableDef()
BASE = "/admin/competitions"


async def _match(request: web.Request) -> typing.Any:
    match = await results.match_result(request.config_dict[pg_key], path_id(request, missing="赛事不存在"))
    if match is None:
        raise PageError(404, "赛事不存在")
    return match


def _box_name(player_id: int, key: str) -> str:
    return f"b-{player_id}-{key}"


def _stored_values(match: typing.Any, box: list[typing.Any]) -> dict[str, str]:
    """The form's inputs as the stored result fills them."""
    values = {"team_id": str(match["team_id"] or match["first_team_id"] or ""),
              "opponent_id": str(match["opponent_id"] or ""),
              "club_score": "" if match["club_score"] is None else str(match["club_score"]),
              "opponent_score": "" if match["opponent_score"] is None else str(match["opponent_score"])}
    for n, (club, opponent) in enumerate(match["periods"] or [], 1):
        values[f"p{n}-club"], values[f"p{n}-opponent"] = str(club), str(opponent)
    for row in box:
        for stat in COLUMNS:
            value = row["stats"].get(stat.key)
            values[_box_name(row["player_id"], stat.key)] = "" if value is None else str(value)
    return values


async def _page(request: web.Request, match: typing.Any, values: dict[str, str], problem: Invalid | None = None,
                status: int = 200) -> web.Response:
    pool = request.config_dict[pg_key]
    team_id = int(values["team_id"]) if values.get("team_id", "").isdigit() else None
    problems = each(problem) if problem is not None else []
    return await render(request, "admin/result.html", {
        "match": match, "values": values, "problems": problems, "wrong": {p.field for p in problems},
        "team_choices": await teams.team_choices(pool),
        "opponent_choices": await results.opponent_choices(pool),
        "roster": await results.roster(pool, match, team_id),
        "columns": COLUMNS, "period_labels": PERIOD_LABELS, "box_name": _box_name,
    }, status)


@routes.get(r"/competitions/{id:[0-9]+}/result")
@requires(EDITOR)
async def result_page(request: web.Request) -> web.Response:
    match = await _match(request)
    box = await results.box_rows(request.config_dict[pg_key], match["id"])
    return await _page(request, match, _stored_values(match, box))


def _int(raw: str, field: str, label: str, maximum: int = 999) -> int | None:
    raw = raw.strip()
    if not raw:
        return None
    if not raw.isdigit() or len(raw) > 4 or int(raw) > maximum:
        raise Invalid(f"{label}须为 0~{maximum} 的整数", field)
    return int(raw)


def _parse(form: FormData, roster_ids: typing.Iterable[int]) -> results.ResultInput:
    """The typed result. Problems naming every field typed wrong, and every rule the result breaks."""
    found: list[Invalid] = []

    def number(field: str, label: str) -> int | None:
        try:
            return _int(form.get(field), field, label)
        except Invalid as exc:
            found.append(exc)
            return None

    periods: list[list[int]] = []
    for n, label in enumerate(PERIOD_LABELS, 1):
        club = number(f"p{n}-club", f"{label}本队得分")
        opponent = number(f"p{n}-opponent", f"{label}对手得分")
        if (club is None) != (opponent is None):
            found.append(Invalid(f"{label}须填写双方得分", f"p{n}-club"))
        elif club is not None and opponent is not None:
            if len(periods) != n - 1:
                found.append(Invalid(f"请按顺序填写各节比分（{PERIOD_LABELS[len(periods)]}未填）", f"p{n}-club"))
            periods.append([club, opponent])
    box: dict[int, dict[str, int]] = {}
    for player_id in roster_ids:
        stats = {}
        for stat in COLUMNS:
            try:
                value = parse_stat(stat, form.get(_box_name(player_id, stat.key)))
            except ValueError as exc:
                found.append(Invalid(str(exc), _box_name(player_id, stat.key)))
                continue
            if value is not None:
                stats[stat.key] = value
        if stats:  # a player with no value typed did not play
            box[player_id] = stats
    opponent_id = form.get("opponent_id")
    team_id = form.get("team_id")
    values = results.ResultInput(
        team_id=int(team_id) if team_id.isdigit() and len(team_id) < 19 else None,
        opponent_id=int(opponent_id) if opponent_id.isdigit() and len(opponent_id) < 19 else None,
        new_opponent=form.get("new_opponent").strip(),
        club_score=number("club_score", "本队得分"),
        opponent_score=number("opponent_score", "对手得分"),
        periods=periods, box=box)
    # A score typed wrong is named once, as typed wrong, not again as missing.
    wrong = {problem.field for problem in found}
    found += [problem for problem in results.problems(values) if problem.field not in wrong]
    if found:
        raise Problems(found)
    return values


@routes.post(r"/competitions/{id:[0-9]+}/result")
@requires(EDITOR)
async def save_result(request: web.Request) -> web.Response:
    """Save the result and box score; sums that do not add up are a warning, the save stands."""
    match = await _match(request)
    form = await read_form(request)
    typed = {key: form.get(key) for key in form.values}
    pool = request.config_dict[pg_key]
    team_id = typed.get("team_id", "")
    roster = await results.roster(pool, match, int(team_id) if team_id.isdigit() and len(team_id) < 19 else None)
    try:
        values = _parse(form, [row["id"] for row in roster])
        warnings = await results.save_result(request.config_dict, actor(request), match["id"], values)
    except Invalid as exc:
        return await _page(request, match, typed, exc, status=400)
    session = await get_session(request)
    flash(session, "比赛结果已保存")
    for warning in warnings:
        flash(session, f"请注意：{warning}", warning=True, todo="已照常保存；如有录入错误，请改正后再保存。")
    raise web.HTTPSeeOther(f"{BASE}/{match['id']}/result")


@routes.post(r"/competitions/{id:[0-9]+}/result/clear")
@requires(EDITOR)
async def clear_result(request: web.Request) -> web.Response:
    match = await _match(request)
    cleared = await results.clear_result(request.config_dict, actor(request), match["id"])
    flash(await get_session(request), "比赛结果已清除" if cleared else "这场比赛没有比赛结果")
    raise web.HTTPSeeOther(f"{BASE}/{match['id']}/result")


@routes.post(r"/competitions/{id:[0-9]+}/result/logo")
@requires(EDITOR)
async def upload_opponent_logo(request: web.Request) -> web.Response:
    """The logo of the match's opponent (kept with the opponent: every match against it shows the same)."""
    match = await _match(request)
    form = await read_form(request)
    session = await get_session(request)
    upload = form.files.get("logo")
    try:
        if match["opponent_id"] is None:
            raise Invalid("请先保存比赛结果（含对手）")
        if not isinstance(upload, Upload):
            raise Invalid("请选择队徽图片")
        stored = await store_image(request, upload, "teams", "logo")
        await results.set_opponent_logo(request.config_dict, actor(request), match["id"], stored.url)
    except Invalid as exc:
        flash(session, f"未上传：{exc}", refused=True, todo="请选择 JPEG 或 PNG 图片后重试。")
    else:
        flash(session, f"{match['opponent_name']} 的队徽已更新")
    raise web.HTTPSeeOther(f"{BASE}/{match['id']}/result")


# -- the season ------------------------------------------------------------------------------------------


def _year(request: web.Request) -> int:
    raw = request.query.get("year", "")
    if raw.isdigit() and 2000 <= int(raw) <= 2100:
        return int(raw)
    return dt.datetime.now(request.config_dict[settings_key].tz).year


@routes.get("/stats")
@requires(EDITOR)
async def season_page(request: web.Request) -> web.Response:
    pool = request.config_dict[pg_key]
    year = _year(request)
    years = await results.seasons(pool)
    return await render(request, "admin/stats.html", {
        "stats": await results.season_stats(pool, year), "years": sorted({*years, year}, reverse=True),
        "columns": COLUMNS,
    })


def export_columns() -> list[tuple[str, typing.Callable[[typing.Any], typing.Any]]]:
    """球员, 号码, 球队, 场次, then each column's total and per-game average."""
    columns: list[tuple[str, typing.Callable[[typing.Any], typing.Any]]] = [
        ("球员", lambda p: p["name"]), ("号码", lambda p: p["number"]), ("球队", lambda p: " / ".join(p["teams"])),
        ("场次", lambda p: p["games"])]
    for stat in COLUMNS:
        columns.append((stat.label, lambda p, k=stat.key: p["totals"][k]))
        columns.append((f"场均{stat.label}", lambda p, k=stat.key: p["averages"][k]))
    return columns


@routes.get(r"/stats.{fmt:(csv|xlsx)}")
@requires(EDITOR)
async def export_stats(request: web.Request) -> web.Response:
    year = _year(request)
    stats = await results.season_stats(request.config_dict[pg_key], year)
    cells = table(export_columns(), stats["players"])
    name = f"赛季统计-{year}"
    if request.match_info["fmt"] == "csv":
        return download(csv_bytes(cells), f"{name}.csv", "text/csv")
    return download(xlsx_bytes(cells, f"{year} 球员"), f"{name}.xlsx", XLSX_TYPE)
