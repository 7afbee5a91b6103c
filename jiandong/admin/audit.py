"""操作日志 (owners only): every change made in the console, searchable by words, action and dates. There is
no route that edits or deletes an entry, and the database refuses both (sql/009)."""

from __future__ import annotations

from aiohttp import web

from ..keys import pg_key
from ..services import audit
from ..services.admins import OWNER
from .audit_view import ACTION_LABELS
from .inputs import query_date
from .render import Column, ListPage, list_query, render
from .security import requires

routes = web.RouteTableDef()


@routes.get("/audit")
@requires(OWNER)
async def audit_log(request: web.Request) -> web.Response:
    query = list_query(request, ())
    action = request.query.get("action", "").strip()[:40]
    problems: list[str] = []
    date_from = query_date(request.query, "from", "开始日期", problems)
    date_to = query_date(request.query, "to", "结束日期", problems)
    if date_from and date_to and date_from > date_to:
        problems.append("开始日期晚于结束日期，没有符合的记录")
    # Staff type the names the log shows (退款, 禁言) as well as codes: each name's actions are searched too.
    named = [code for code, label in ACTION_LABELS.items() if action and action in label]
    rows, total = await audit.search(request.config_dict[pg_key], query, action, date_from, date_to, named)
    extra = {"action": action, "from": date_from.isoformat() if date_from else "",
             "to": date_to.isoformat() if date_to else ""}
    names = await audit.target_names(request.config_dict[pg_key], (row["target"] for row in rows))
    return await render(request, "admin/audit.html", {"names": names,
        "page": ListPage(rows, total, query, [Column("", "id")], "/admin/audit"), "action": action,
        "date_from": extra["from"], "date_to": extra["to"], "problems": problems,
        "extra": {k: v for k, v in extra.items() if v}})
