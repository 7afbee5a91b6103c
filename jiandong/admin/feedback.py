"""反馈: users' suggestions and complaints, by type and handled or not; mark one handled with a note."""

from __future__ import annotations

from aiohttp import web
from aiohttp_session import get_session

from ..keys import pg_key
from ..services import feedback
from ..services.admins import MODERATOR
from .errors import PageError
from .forms import read_form
from .inputs import path_id
from .render import Column, ListPage, flash, list_query, render
from .security import actor, requires

routes = web.RouteTableDef()
BASE = "/admin/feedback"


@routes.get("/feedback")
@requires(MODERATOR)
async def list_feedback(request: web.Request) -> web.Response:
    query = list_query(request, ())
    kind_raw, state = request.query.get("type", ""), request.query.get("state", "")
    kind = int(kind_raw) if kind_raw in ("1", "2", "3") else None
    handled = {"open": False, "done": True}.get(state)
    rows, total = await feedback.list_feedback(request.config_dict[pg_key], query, kind, handled)
    page = ListPage(rows, total, query, [Column("", "id")], BASE)
    return await render(request, "admin/feedback.html", {
        "page": page, "kind": kind, "state": state if handled is not None else "", "types": feedback.TYPE_LABELS})


@routes.post(r"/feedback/{id:[0-9]+}/handled")
@requires(MODERATOR)
async def mark_handled(request: web.Request) -> web.Response:
    feedback_id = path_id(request, missing="反馈不存在或已处理")
    form = await read_form(request)
    try:
        await feedback.mark_handled(request.config_dict, actor(request), feedback_id, form.get("note"))
    except feedback.FeedbackError as exc:
        raise PageError(404, str(exc)) from None
    flash(await get_session(request), "已标记为已处理")
    back = form.get("back")
    raise web.HTTPFound(back if back.startswith(BASE) and "//" not in back else BASE)
