"""Rosters in and out: player cards imported from a sheet (upload, a preview of every row, the confirm),
cards and a team's roster exported, and the search behind the team page's player picker."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import secrets
import typing
from urllib.parse import unquote

from aiohttp import web
from aiohttp_session import get_session
from multidict import MultiDict

from ..keys import admin_key, pg_key, redis_key, settings_key
from ..lib import encoding
from ..services import players, rosters, teams
from ..services.admins import EDITOR
from ..services.rosters import HEADERS, Entry, SheetRefused, SheetRow
from ..store import media
from ..store.kv import rkey
from ..web.responses import json_response
from .errors import PageError
from .exports import ExportColumn, sheet_download, table
from .forms import AdminForm, read_form
from .inputs import path_id
from .players import PlayerForm
from .render import PREFIX, render
from .security import actor, requires

routes = web.RouteTableDef()
BASE = f"{PREFIX}/players"
# An uploaded sheet waits this long for its confirm, in Redis, under a token only its uploader's account can use.
KEEP_SECONDS = 3600
TOKEN = r"{token:[A-Za-z0-9_-]{43}}"
RESULT_KEY = "roster_import"
# The rows a result page names as not written, at most (the counts are all there).
RESULT_ROWS = 200


class RowForm(AdminForm):
    """A sheet row checked by the card form's own fields: the rules and messages of typing the card in."""

    cn_name = PlayerForm.cn_name
    number = PlayerForm.number
    mobile = PlayerForm.mobile
    sex = PlayerForm.sex
    birthday = PlayerForm.birthday
    stature = PlayerForm.stature
    weight = PlayerForm.weight
    position = PlayerForm.position


# The form's fields by the import's column names (services/rosters.HEADERS).
COLUMN_FIELDS = {"姓名": "cn_name", "球衣号码": "number", "手机": "mobile", "性别": "sex", "生日": "birthday",
                 "身高": "stature", "体重": "weight", "位置": "position"}
SEXES = {"": 0, "保密": 0, "男": 1, "女": 2}
SEX_NAMES = {0: "", 1: "男", 2: "女"}


def entry(row: SheetRow, form: RowForm) -> Entry:
    """A sheet row as a card's values, with what the card form's rules say of its cells (`form`: one for all
    the rows, processed again for each: binding a new form's fields costs more than checking them)."""
    cells = row.cells
    sex = SEXES.get(cells["性别"])
    form.process(MultiDict([(field, cells[column]) for column, field in COLUMN_FIELDS.items() if field != "sex"]
                           + [("sex", str(sex or 0))]))
    form.validate()
    errors = [f"{column}：{message}" for column, field in COLUMN_FIELDS.items() for message in form[field].errors]
    if sex is None:
        errors.append("性别：须为 男、女 或留空")
    joined = None
    if cells["入队日期"]:
        try:
            joined = dt.datetime.strptime(cells["入队日期"], "%Y-%m-%d").date()
        except ValueError:
            errors.append("入队日期：须为 YYYY-MM-DD，如 2024-09-01")
    card = {field: form[field].data for field in rosters.CARD_KEYS}
    return Entry(row.line, card, cells["球队"], joined, errors)


def _read(data: bytes) -> tuple[list[SheetRow], list[Entry]]:
    rows = rosters.parse(data)
    form = RowForm()
    return rows, [entry(r, form) for r in rows]


# -- the import: upload, preview, confirm, result -------------------------------------------------------

async def _upload_page(request: web.Request, error: str = "", status: int = 200) -> web.Response:
    return await render(request, "admin/roster_import.html", {
        "headers": HEADERS, "max_size": media.size_label(rosters.MAX_BYTES), "max_rows": rosters.MAX_ROWS,
        "error": error}, status)


@routes.get("/players/import")
@requires(EDITOR)
async def import_page(request: web.Request) -> web.Response:
    return await _upload_page(request)


@routes.get(r"/players/import/template.{fmt:(csv|xlsx)}")
@requires(EDITOR)
async def import_template(request: web.Request) -> web.Response:
    return sheet_download(request.match_info["fmt"], [list(HEADERS)], "球员导入模板", "球员",
                          request.config_dict[settings_key].tz)


def _key(request: web.Request, token: str) -> str:
    return rkey(request.config_dict[settings_key], "roster_import", token)


@routes.post("/players/import")
@requires(EDITOR)
async def upload_sheet(request: web.Request) -> web.Response:
    """Read the sheet (refused at once if it is none), keep it for the preview and its confirm."""
    upload = (await read_form(request)).files.get("sheet_file")
    if upload is None:
        return await _upload_page(request, "请选择要导入的 CSV 或 XLSX 文件", 400)
    data = await asyncio.to_thread(upload.read)
    try:
        await asyncio.to_thread(rosters.parse, data)
    except SheetRefused as exc:
        return await _upload_page(request, f"{upload.filename}：{exc}", 400)
    token = secrets.token_urlsafe(32)
    # Browsers send the name as UTF-8; some clients percent-encode it.
    kept = {"admin": request[admin_key].id, "file": media.upload_name(unquote(upload.filename))[:200],
            "data": base64.b64encode(data).decode()}
    await request.config_dict[redis_key].set(_key(request, token), encoding.dumps_str(kept), ex=KEEP_SECONDS)
    raise web.HTTPSeeOther(f"{BASE}/import/{token}")


async def _kept(request: web.Request, take: bool) -> tuple[str, bytes]:
    """The sheet the URL's token names, if this account uploaded it (`take`: removed, so it is confirmed once)."""
    redis = request.config_dict[redis_key]
    key = _key(request, request.match_info["token"])
    raw = await redis.get(key)
    kept = encoding.loads(raw) if raw else None
    # Only one confirm removes it: a second one (a double click, a resend) finds nothing.
    if not kept or kept.get("admin") != request[admin_key].id or (take and not await redis.delete(key)):
        raise PageError(404, "这次导入已确认或已过期（上传后 1 小时内有效），请重新上传文件")
    return kept["file"], base64.b64decode(kept["data"])


@routes.get(rf"/players/import/{TOKEN}")
@requires(EDITOR)
async def preview_import(request: web.Request) -> web.Response:
    """Every row with its errors, as the data stands now; nothing written."""
    name, data = await _kept(request, take=False)
    rows, entries = await asyncio.to_thread(_read, data)
    found = await rosters.preview(request.config_dict[pg_key], entries)
    # Which good rows update a card that exists (and whose), so staff see it before they confirm.
    updates = await rosters.matched_cards(request.config_dict[pg_key], entries)
    bad = [r.line for r in rows if found[r.line]]
    return await render(request, "admin/roster_preview.html", {
        "file": name, "rows": rows, "errors": found, "bad": bad, "good": len(rows) - len(bad), "updates": updates,
        "updating": sum(1 for r in rows if r.line in updates and not found[r.line]),
        "headers": HEADERS, "token": request.match_info["token"]})


@routes.post(rf"/players/import/{TOKEN}")
@requires(EDITOR)
async def confirm_import(request: web.Request) -> web.Response:
    """Write the rows valid now (checked again as they are written), then show what was done."""
    name, data = await _kept(request, take=True)
    _, entries = await asyncio.to_thread(_read, data)
    outcome = await rosters.commit(request.config_dict, entries, actor(request), name)
    session = await get_session(request)
    session[RESULT_KEY] = {"file": name, "rows": len(entries), **outcome.counts,
                           "skipped_rows": outcome.skipped[:RESULT_ROWS]}
    raise web.HTTPSeeOther(f"{BASE}/import/result")


@routes.get("/players/import/result")
@requires(EDITOR)
async def import_result(request: web.Request) -> web.Response:
    result = (await get_session(request)).get(RESULT_KEY)
    if not isinstance(result, dict):
        raise web.HTTPFound(f"{BASE}/import")
    return await render(request, "admin/roster_result.html", {"result": result})


# -- exports --------------------------------------------------------------------------------------------

def _day(value: dt.date | None) -> str:
    # Dates as the import reads them (YYYY-MM-DD text), so an export imports again as it is.
    return value.isoformat() if value else ""


EXPORT_COLUMNS: list[ExportColumn] = [
    ("姓名", lambda r: r["cn_name"]), ("球衣号码", lambda r: r["number"]), ("手机", lambda r: r["mobile"]),
    ("性别", lambda r: SEX_NAMES.get(r["sex"], "")), ("生日", lambda r: _day(r["birthday"])),
    ("身高", lambda r: r["stature"]), ("体重", lambda r: r["weight"]), ("位置", lambda r: r["position"]),
    ("球队", lambda r: r["team"]), ("入队日期", lambda r: _day(r["joined_on"])),
    ("状态", lambda r: "启用" if r["status"] else "停用"), ("关联用户", lambda r: r["user_name"]),
]
assert tuple(h for h, _ in EXPORT_COLUMNS[:len(HEADERS)]) == HEADERS, "the export starts with the import's columns"


@routes.get(r"/players/export.{fmt:(csv|xlsx)}")
@requires(EDITOR)
async def export_cards(request: web.Request) -> web.Response:
    """Every card with its current team (the import's columns first: the file imports again)."""
    rows = await players.sheet_cards(request.config_dict[pg_key])
    return sheet_download(request.match_info["fmt"], table(EXPORT_COLUMNS, rows), "球员卡", "球员卡",
                          request.config_dict[settings_key].tz)


@routes.get(r"/teams/{id:[0-9]+}/roster.{fmt:(csv|xlsx)}")
@requires(EDITOR)
async def export_roster(request: web.Request) -> web.Response:
    """The team's current members, in the import's columns."""
    pool = request.config_dict[pg_key]
    team = await teams.get_team(pool, path_id(request, missing="球队不存在"))
    if team is None:
        raise PageError(404, "球队不存在")
    rows = await players.sheet_cards(pool, team["id"])
    return sheet_download(request.match_info["fmt"], table(EXPORT_COLUMNS, rows), f"名单-{team['name']}", "名单",
                          request.config_dict[settings_key].tz)


# -- the player picker ----------------------------------------------------------------------------------

def pick_value(row: typing.Mapping[str, typing.Any]) -> str:
    """What the picker puts in the field for a card: its name and number, then `#id`, which the form reads."""
    return f"{row['cn_name']}（{row['number'] + '号' if row['number'] else '无号'}）#{row['id']}"


@routes.get("/players/search")
@requires(EDITOR)
async def search_players(request: web.Request) -> web.Response:
    """Cards matching what is typed (name, number or phone): the value to pick, and the current team."""
    term = request.query.get("q", "").strip()[:50]
    rows = await players.search_cards(request.config_dict[pg_key], term) if term else []
    return json_response([{"id": r["id"], "value": pick_value(r),
                           "team": (r["team"] or "无球队") + ("" if r["status"] else "，球员卡已停用")} for r in rows])
