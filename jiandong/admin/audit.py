"""操作日志 (owners only): every change made in the console, searchable. There is no route that edits or deletes
an entry, and the database refuses both (sql/009)."""

from __future__ import annotations

from aiohttp import web

from ..keys import pg_key
from ..services import audit
from ..services.admins import OWNER
from .render import Column, ListPage, list_query, render
from .security import requires

routes = web.RouteTableDef()


@routes.get("/audit")
@requires(OWNER)
async def audit_log(request: web.Request) -> web.Response:
    query = list_query(request, ())
    action = request.query.get("action", "").strip()[:40]
    rows, total = await audit.search(request.config_dict[pg_key], query, action)
    return await render(request, "admin/audit.html", {
        "page": ListPage(rows, total, query, [Column("", "id")], "/admin/audit"), "action": action})
