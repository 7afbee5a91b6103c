"""概览: the club at a glance — members, revenue (paid minus refunded), orders, sign-ups, viewers, chat —
with charts drawn on the server as SVG (charts.py)."""

from __future__ import annotations

import markupsafe
from aiohttp import web

from ..lib import formats
from ..services import dashboard
from ..services.admins import EDITOR
from .charts import Series, bars, hbars
from .render import render
from .security import requires

routes = web.RouteTableDef()


def _yuan(fen: float) -> str:
    return formats.fmt_money(int(fen))


@routes.get("/dashboard")
@requires(EDITOR)
async def show_dashboard(request: web.Request) -> web.Response:
    f = await dashboard.figures(request.config_dict)
    days = [d.strftime("%m-%d") for d, _ in f["revenue"]]
    charts = [
        bars("每日收入（元，实收减退款，近 30 天）", days, [Series("净收入", [v / 100 for _, v in f["revenue"]])],
             label_every=5, fmt=lambda v: f"{v:.0f}", tip=lambda v: f"{v:.2f}"),
        bars("订单：创建与支付（近 30 天）", days, [Series("创建", [v for _, v in f["orders_created"]]),
                                           Series("已支付", [v for _, v in f["orders_paid"]])], label_every=5),
        bars("新会员（每周）", [w.strftime("%m-%d") for w, _ in f["new_members"]],
             [Series("新会员", [v for _, v in f["new_members"]])], label_every=2),
        bars("聊天消息（每日，近 30 天）", days, [Series("消息", [v for _, v in f["chat"]])], label_every=5),
        hbars("即将开始的赛事报名人数", [(f"{formats.fmt_time(m['play_time'])[5:10]} {m['title']}", [m["signups"]])
                                    for m in f["signups"]], ["报名"]),
        hbars("直播观众：当前与峰值", [(lv["title"], [lv["viewers"], lv["peak"]]) for lv in f["lives"]],
              ["当前", "峰值"]),
    ]
    return await render(request, "admin/dashboard.html", {
        "f": f, "charts": [markupsafe.Markup(svg) for svg in charts], "yuan": _yuan})
