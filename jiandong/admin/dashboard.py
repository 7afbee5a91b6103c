"""概览: the club at a glance — members, revenue (paid minus refunded), orders, sign-ups, viewers, chat —
with charts drawn on the server (charts.py)."""

from __future__ import annotations

import datetime as dt
from urllib.parse import urlencode

import markupsafe
from aiohttp import web

from ..keys import settings_key
from ..lib import formats
from ..services import dashboard, membership, order_status
from ..services.admins import EDITOR
from .charts import Series, bars, hbars
from .render import PREFIX, render
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
        # Manual grants are no WeChat Pay orders: the title says they are left out.
        bars("微信支付订单：创建与支付（近 30 天，不含后台手动开通）", days,
             [Series("创建", [v for _, v in f["orders_created"]]), Series("已支付", [v for _, v in f["orders_paid"]])],
             label_every=5),
        bars("新会员（每周）", [w.strftime("%m-%d") for w, _ in f["new_members"]],
             [Series("新会员", [v for _, v in f["new_members"]])], label_every=2),
        bars("聊天消息（每日，近 30 天）", days, [Series("消息", [v for _, v in f["chat"]])], label_every=5),
        hbars("即将开始的赛事报名人数", [(f"{formats.fmt_time(m['play_time'])[5:10]} {m['title']}", [m["signups"]])
                                    for m in f["signups"]], ["报名"],
              links=[f"{PREFIX}/competitions/{m['id']}" for m in f["signups"]]),
        hbars("直播观众：当前与峰值", [(lv["title"], [lv["viewers"], lv["peak"]]) for lv in f["lives"]],
              ["当前", "峰值"], links=[f"{PREFIX}/lives/{lv['id']}" for lv in f["lives"]]),
    ]
    since = (dt.datetime.now(request.config_dict[settings_key].tz).date() - dt.timedelta(days=29)).isoformat()
    # Each figure links to the list it counts.
    links = {
        "active": f"{PREFIX}/members?status={membership.ACTIVE}",
        "disabled": f"{PREFIX}/members?status={membership.DISABLED}",
        "paid": f"{PREFIX}/orders?{urlencode({'status': order_status.PAID, 'from': since})}",
        "refunded": f"{PREFIX}/orders?{urlencode({'status': order_status.REFUNDED, 'from': since})}",
    }
    return await render(request, "admin/dashboard.html", {
        "f": f, "charts": [markupsafe.Markup(svg) for svg in charts], "yuan": _yuan, "links": links})
