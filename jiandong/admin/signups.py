"""赛事报名: a match's sign-up sheet — the list with its count, staff adding or removing a sign-up with a reason,
attendance after the match, and the sheet as CSV / XLSX."""

from __future__ import annotations

import datetime as dt
import typing

from aiohttp import web
from aiohttp_session import get_session

from ..keys import pg_key, settings_key
from ..services import competitions, signups
from ..services.admins import EDITOR
from ..services.editing import ListQuery
from .errors import PageError
from .exports import sheet_download, table
from .forms import keep_typed, read_form, take_typed
from .inputs import path_id
from .render import PAGE_SIZE, ListPage, flash, render
from .security import actor, requires

routes = web.RouteTableDef()
BASE = "/admin/competitions"


async def _match(request: web.Request) -> typing.Any:
    match = await competitions.get_competition(request.config_dict[pg_key], path_id(request, missing="赛事不存在"))
    if match is None:
        raise PageError(404, "赛事不存在")
    return match


def _page_number(raw: str | None) -> int:
    return int(raw) if raw and raw.isdigit() and 0 < int(raw) < 100_000 else 1


def _back(match: typing.Any, page: int = 1) -> web.HTTPSeeOther:
    """Back to the sheet, on the page the form was sent from (a reload then shows it, posting nothing)."""
    return web.HTTPSeeOther(f"{BASE}/{match['id']}/signups" + (f"?page={page}" if page > 1 else ""))


@routes.get(r"/competitions/{id:[0-9]+}/signups")
@requires(EDITOR)
async def signup_sheet(request: web.Request) -> web.Response:
    match = await _match(request)
    pool = request.config_dict[pg_key]
    query = ListQuery(page=_page_number(request.query.get("page")), size=PAGE_SIZE)
    tally = await signups.tally(pool, match["id"])
    rows = await signups.sheet_page(pool, match["id"], query.page, query.size)
    page = ListPage(rows, tally.total, query, [], f"{BASE}/{match['id']}/signups")
    now = dt.datetime.now(dt.timezone.utc)
    typed = take_typed(await get_session(request), f"{BASE}/{match['id']}/signups")
    return await render(request, "admin/signups.html", {
        "match": match, "page": page, "tally": tally, "started": match["play_time"] <= now, "typed": typed,
        "closed": match["apply_deadline"] is not None and match["apply_deadline"] <= now,
    })


@routes.post(r"/competitions/{id:[0-9]+}/signups")
@requires(EDITOR)
async def add_signup(request: web.Request) -> web.Response:
    """Sign a user up by id or phone, with a reason (past the capacity and the deadline too: staff decide)."""
    match = await _match(request)
    form = await read_form(request)
    session = await get_session(request)
    try:
        user = await signups.add(request.config_dict, actor(request), match["id"], form.get("who") or "",
                                 form.get("reason") or "")
    except signups.SignupError as exc:
        flash(session, f"未添加：{exc}", refused=True, todo="请核对用户 ID 或手机号并填写原因后重试。")
        keep_typed(session, f"{BASE}/{match['id']}/signups", {"who": form.get("who"), "reason": form.get("reason")})
    else:
        flash(session, f"已为 {user['username'] or '用户'}（ID {user['id']}）报名")
    raise _back(match, _page_number(form.get("page")))


@routes.post(r"/competitions/{id:[0-9]+}/signups/{signup:[0-9]+}/remove")
@requires(EDITOR)
async def remove_signup(request: web.Request) -> web.Response:
    match = await _match(request)
    signup_id = path_id(request, "signup", "该报名不存在")
    form = await read_form(request)
    session = await get_session(request)
    try:
        row = await signups.remove(request.config_dict, actor(request), match["id"], signup_id,
                                   form.get("reason") or "")
    except signups.SignupError as exc:
        flash(session, f"未移除：{exc}", refused=True, todo="请填写原因后重试。")
    else:
        flash(session, f"已移除 {row['username'] or '用户'}（ID {row['user_id']}）的报名")
    raise _back(match, _page_number(form.get("page")))


@routes.post(r"/competitions/{id:[0-9]+}/signups/{signup:[0-9]+}/attendance")
@requires(EDITOR)
async def mark_attendance(request: web.Request) -> web.Response:
    """One sign-up: came (attended=1) or did not come (attended=0)."""
    match = await _match(request)
    signup_id = path_id(request, "signup", "该报名不存在")
    form = await read_form(request)
    attended = {"1": True, "0": False}.get(form.get("attended") or "")
    if attended is None:
        raise PageError(400, "请选择到场或缺席")
    session = await get_session(request)
    try:
        row = await signups.mark(request.config_dict, actor(request), match["id"], signup_id, attended)
    except signups.SignupError as exc:
        flash(session, f"未登记：{exc}", refused=True)
    else:
        flash(session, f"{row['username'] or '用户'}：{signups.ATTENDANCE_LABELS[attended]}")
    raise _back(match, _page_number(form.get("page")))


@routes.post(r"/competitions/{id:[0-9]+}/signups/came")
@requires(EDITOR)
async def mark_rest_came(request: web.Request) -> web.Response:
    match = await _match(request)
    form = await read_form(request)
    session = await get_session(request)
    try:
        count = await signups.mark_rest_came(request.config_dict, actor(request), match["id"])
    except signups.SignupError as exc:
        flash(session, f"未登记：{exc}", refused=True)
    else:
        flash(session, f"其余 {count} 人已登记为到场" if count else "没有未登记的报名")
    raise _back(match, _page_number(form.get("page")))


EXPORT_COLUMNS = [
    ("序号", lambda r: r["n"]),
    ("用户ID", lambda r: r["user_id"]),
    ("姓名", lambda r: r["username"]),
    ("手机", lambda r: r["mobile"] or ""),
    ("会员状态", lambda r: r["status_label"]),
    ("球队", lambda r: r["team"] or ""),
    ("报名时间", lambda r: r["created_at"]),
    ("添加人", lambda r: r["added_by_name"] or ("本人报名" if not r["note"] else "")),
    ("原因", lambda r: r["note"]),
    ("到场", lambda r: r["attendance_label"]),
]


@routes.get(r"/competitions/{id:[0-9]+}/signups.{fmt:(csv|xlsx)}")
@requires(EDITOR)
async def export_signups(request: web.Request) -> web.Response:
    """The whole sheet (every page), in sign-up order."""
    match = await _match(request)
    rows = await signups.sheet(request.config_dict[pg_key], match["id"])
    cells = table(EXPORT_COLUMNS, ({**r, "n": n} for n, r in enumerate(rows, 1)))
    return sheet_download(request.match_info["fmt"], cells, f"报名-{match['id']}", "报名",
                          request.config_dict[settings_key].tz)
