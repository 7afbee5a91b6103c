"""The dashboard: the figures from the database (members, revenue net of refunds, orders, sign-ups, chat,
viewers and their peak) and the charts drawn on the server (SVG bars, HTML meters for named items)."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from jiandong.admin.charts import Series, bars, hbars
from jiandong.keys import realtime_key
from tests.helpers.admin import add_admin, sign_in
from tests.helpers.api import login
from tests.helpers.orders import add_product
from tests.helpers.realtime import FAST, join

SVG = "{http://www.w3.org/2000/svg}"


def svgs_of(html: str) -> list[str]:
    return ["<svg" + part.split("</svg>")[0] + "</svg>" for part in html.split("<svg")[1:]]


def meters_of(html: str, title: str) -> list[str]:
    """The tooltips of the meters of the chart titled `title` (one per item and value name)."""
    chart = html.split(f"<figcaption>{title}</figcaption>", 1)[1].split("</figure>", 1)[0]
    return re.findall(r'<meter [^>]*title="([^"]*)"', chart)


def seed(sql) -> None:
    product = add_product(sql)
    users = [sql("INSERT INTO users (openid, username, member_status, member_expire_time) VALUES"
                 " (%s, %s, 1, now() + %s::interval) RETURNING id", f"o-{i}", f"u{i}", term)[0]["id"]
             for i, term in enumerate(("10 days", "200 days", "300 days"))]
    sql("INSERT INTO users (openid, member_status, member_expire_time) VALUES ('o-off', 2, now() + interval '9 days')")
    for i, user in enumerate(users):
        order = sql("INSERT INTO orders (order_no, user_id, business_id, price, total_price, pay_amount, status,"
                    " snap_items, pay_time, transaction_id) VALUES (%s, %s, %s, 19900, 19900, 19900, 1, '[]', now(),"
                    " %s) RETURNING id", f"T00000000{i}", user, product, f"42{i}")[0]["id"]
        sql("INSERT INTO member_extensions (order_id, user_id, valid_from, valid_until) VALUES"
            " (%s, %s, now(), now() + interval '1 year')", order, user)
    sql("INSERT INTO orders (order_no, user_id, business_id, price, total_price, status, snap_items) VALUES"
        " ('T000000009', %s, %s, 19900, 19900, 0, '[]')", users[0], product)
    sql("INSERT INTO refunds (out_refund_no, order_id, amount, reason, status, success_time) SELECT 'R00000001', id,"
        " 5000, '退', 'success', now() FROM orders WHERE order_no = 'T000000000'")
    match = sql("INSERT INTO competitions (title, play_time) VALUES ('周末联赛', now() + interval '3 days')"
                " RETURNING id")[0]["id"]
    for user in users[:2]:
        sql("INSERT INTO competition_applies (competition_id, user_id) VALUES (%s, %s)", match, user)
    sql("INSERT INTO lives (id, title, stream_name, live_status) VALUES (5, '决赛直播', 'final', 1)")
    for i in range(4):
        sql("INSERT INTO chat_messages (room_id, content, msg_time, deleted_at) VALUES (5, 'hi', now(), %s)",
            "now()" if i == 3 else None)


async def test_dashboard_figures_and_charts(make_client, sql):
    client = await make_client(**FAST)
    seed(sql)
    # Two viewers in the live room, counted and pushed once: now 2, peak 2; one leaves: now 1, peak stays 2.
    first, _ = await join(client, 5, await login(client, "v1"))
    second, _ = await join(client, 5)
    realtime = client.app[realtime_key]
    await realtime.push_counts()
    await second.close()
    await realtime.push_counts()
    add_admin(sql, "writer", "editor")
    assert (await sign_in(client, "writer")).status == 302
    resp = await client.get("/admin/dashboard")
    text = await resp.text()
    assert resp.status == 200
    assert '<strong id="members-active">3</strong>' in text and '<strong id="members-expiring">1</strong>' in text
    assert '<strong id="paid-30">597.00</strong>' in text and '<strong id="refunded-30">50.00</strong>' in text
    svgs = svgs_of(text)
    assert len(svgs) == 4 and text.count('<figure class="chart-figure">') == 6
    assert "<script" not in text.split("<main>")[1]
    charts = {ET.fromstring(s).find(f"{SVG}title").text: ET.fromstring(s) for s in svgs}
    revenue = charts["每日收入（元，实收减退款，近 30 天）"]
    today = [r.find(f"{SVG}title").text for r in revenue.iter(f"{SVG}rect")][-1]
    assert today.endswith("净收入: 547.00")
    orders_chart = charts["微信支付订单：创建与支付（近 30 天，不含后台手动开通）"]
    orders = [r.find(f"{SVG}title").text for r in orders_chart.iter(f"{SVG}rect") if r.find(f"{SVG}title") is not None]
    assert orders[-2].endswith("创建: 4") and orders[-1].endswith("已支付: 3")
    assert meters_of(text, "即将开始的赛事报名人数") == ["报名: 2"]
    # Each item and each figure links to what it counts.
    match = sql("SELECT id FROM competitions")[0]["id"]
    assert f'<a class="name" href="/admin/competitions/{match}">' in text
    assert '<a class="name" href="/admin/lives/5">' in text
    assert '<a class="figure" href="/admin/members?status=1">' in text
    paid_list = await (await client.get(text.split('<a class="figure" href="')[2].split('"')[0].replace("&amp;", "&")
                                        )).text()
    assert all(f"T00000000{i}" in paid_list for i in range(3)) and "T000000009" not in paid_list
    assert meters_of(text, "直播观众：当前与峰值") == ["当前: 1", "峰值: 2"]
    chat = [r.find(f"{SVG}title").text for r in charts["聊天消息（每日，近 30 天）"].iter(f"{SVG}rect")
            if r.find(f"{SVG}title") is not None]
    assert chat[-1].endswith("消息: 3")
    new_members = [r.find(f"{SVG}title").text for r in charts["新会员（每周）"].iter(f"{SVG}rect")
                   if r.find(f"{SVG}title") is not None]
    assert new_members[-1].endswith("新会员: 3")
    await first.close()


def test_long_names_beside_bars_are_shown_whole():
    """Two matches whose names differ only at the end stay two names: each shown whole (the page wraps it)."""
    a, b = "青竹 对 猛龙 城市联赛常规赛 第三轮 主场", "青竹 对 猛龙 城市联赛常规赛 第四轮 主场"
    html = hbars("赛事", [(a, [1.0]), (b, [2.0])], ["报名"])
    assert re.findall(r'<span class="name">([^<]*)</span>', html) == [a, b]
    assert re.findall(r'<meter [^>]*value="([^"]*)"', html) == ["1", "2"]


def test_charts_escape_text_and_scale_to_their_values():
    html = bars("<b>标题</b>", ["a&b", "c"], [Series("x<y", [3, -1.5])])
    root = ET.fromstring(svgs_of(html)[0])
    assert root.find(f"{SVG}title").text == "<b>标题</b>" and "<b>" not in html
    heights = [float(r.get("height")) for r in root.iter(f"{SVG}rect")]
    assert abs(heights[0] - 2 * heights[1]) < 0.2  # 3 against -1.5: twice as tall
    empty = hbars("空", [], ["值"])
    assert "暂无数据" in empty and "<meter" not in empty
    assert "<b>" not in hbars("<b>赛事</b>", [("<i>决赛</i>", [1.0])], ["报<名"])


async def test_dashboard_for_editors(client, sql):
    add_admin(sql, "mod", "moderator")
    assert (await sign_in(client, "mod")).status == 302
    assert (await client.get("/admin/dashboard")).status == 403
