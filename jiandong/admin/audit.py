"""操作日志 (owners only): every change made in the console, searchable by words, action and dates. There is
no route that edits or deletes an entry, and the database refuses both (sql/009)."""

from __future__ import annotations

import datetime as dt

from aiohttp import web

from ..keys import pg_key
from ..services import audit
from ..services.admins import OWNER
from .render import Column, ListPage, list_query, render
from .security import requires

routes = web.RouteTableDef()


def _date(raw: str, name: str, problems: list[str]) -> dt.date | None:
    """A date of the filter (YYYY-MM-DD, the club's day); a malformed one is left out and said so."""
    raw = raw.strip()
    if not raw:
        return None
    try:
        return dt.date.fromisoformat(raw)
    except ValueError:
        problems.append(f"{name}「{raw[:20]}」不是有效的日期（应为 YYYY-MM-DD），已忽略")
        return None


@routes.get("/audit")
@requires(OWNER)
async def audit_log(request: web.Request) -> web.Response:
    query = list_query(request, ())
    action = request.query.get("action", "").strip()[:40]
    problems: list[str] = []
    date_from = _date(request.query.get("from", ""), "开始日期", problems)
    date_to = _date(request.query.get("to", ""), "结束日期", problems)
    if date_from and date_to and date_from > date_to:
        problems.append("开始日期晚于结束日期，没有符合的记录")
    rows, total = await audit.search(request.config_dict[pg_key], query, action, date_from, date_to)
    extra = {"action": action, "from": date_from.isoformat() if date_from else "",
             "to": date_to.isoformat() if date_to else ""}
    return await render(request, "admin/audit.html", {
        "page": ListPage(rows, total, query, [Column("", "id")], "/admin/audit"), "action": action,
        "date_from": extra["from"], "date_to": extra["to"], "problems": problems,
        "extra": {k: v for k, v in extra.items() if v}})
