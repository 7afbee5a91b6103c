"""The console's home page says what needs doing today (of what the role may open), each item linking to its
page; the members ending soon are a list of their own, with export."""

from __future__ import annotations

import csv
import io
import re

import pytest

from tests.helpers.admin import add_admin, sign_in


@pytest.fixture
def club_day(sql, settings):
    """Today's match (at noon, the club's day), one played last week without a result and one with, a live on air,
    open feedback, a refund not settled, members ending in 10 and in 40 days."""
    # Noon of the club's day, whatever the test connection's time zone.
    sql("INSERT INTO competitions (title, play_time) VALUES ('今日联赛',"
        " ((now() AT TIME ZONE %s)::date + time '12:00') AT TIME ZONE %s)", settings.timezone, settings.timezone)
    sql("INSERT INTO competitions (title, play_time) VALUES ('上周友谊赛', now() - interval '7 days')")
    # A score typed in the free-text box is not a result (the statistics read the result page's).
    sql("INSERT INTO competitions (title, play_time, score) VALUES ('上周杯赛', now() - interval '6 days', '88:76')")
    sql("INSERT INTO competitions (title, play_time, club_score, opponent_score) VALUES ('上周邀请赛',"
        " now() - interval '5 days', 90, 70)")
    sql("INSERT INTO lives (title, stream_name, live_status) VALUES ('联赛直播', 'today1', 1)")
    sql("INSERT INTO feedback (type, content) VALUES (1, '场馆空调太冷')")
    soon, later = (sql("INSERT INTO users (openid, username, member_status, member_expire_time) VALUES (%s, %s, 1,"
                       " now() + make_interval(days => %s)) RETURNING id", f"o-{days}", name, days)[0]["id"]
                   for name, days in (("快到期", 10), ("还早", 40)))
    product = sql("INSERT INTO businesses (title, price, valid_time, amount, status) VALUES ('年度会员', 19900, 1,"
                  " 100, 1) RETURNING id")[0]["id"]
    order = sql("INSERT INTO orders (order_no, user_id, business_id, price, total_price, pay_amount, status,"
                " snap_items, pay_time, transaction_id) VALUES ('TTODAY000001', %s, %s, 19900, 19900, 19900, 3, '[]',"
                " now(), '42TODAY1') RETURNING id", soon, product)[0]["id"]
    sql("INSERT INTO refunds (out_refund_no, order_id, amount, reason, status) VALUES ('RTODAY0001', %s, 5000,"
        " '赛事取消', 'processing')", order)
    sql("UPDATE orders SET refund_reserved = 5000 WHERE id = %s", order)
    return {"soon": soon, "later": later, "order": order}


async def home(client, sql, role: str) -> str:
    add_admin(sql, role, role)
    assert (await sign_in(client, role)).status == 302
    return re.sub(r">\s+<", "><", await (await client.get("/admin/")).text())


async def test_the_home_page_lists_what_needs_doing_with_links(client, sql, club_day):
    page = await home(client, sql, "owner")
    today = page.split('<div class="today">', 1)[1].split('<div class="tiles">', 1)[0]
    match = sql("SELECT id FROM competitions WHERE title = '今日联赛'")[0]["id"]
    unscored = sql("SELECT id FROM competitions WHERE title = '上周友谊赛'")[0]["id"]
    assert f'<a href="/admin/competitions/{match}">今日联赛</a>' in today
    assert f'<a href="/admin/competitions/{match}/signups">报名</a>' in today
    assert "直播中" in today and "联赛直播" in today
    assert f'<a href="/admin/competitions/{unscored}">上周友谊赛</a>' in today and "上周杯赛" in today
    assert "上周邀请赛" not in today
    assert f'/admin/orders/{club_day["order"]}#refund' in today and "50.00 元" in today
    assert '<a href="/admin/members?expiring=30">1 位会员将在 30 天内到期</a>' in today
    assert '<a href="/admin/feedback?state=open">1 条未处理</a>' in today


async def test_each_role_sees_only_what_it_may_open(client, sql, club_day):
    page = await home(client, sql, "moderator")
    assert "1 条未处理" in page and "今日联赛" not in page and "到期" not in page
    client.session.cookie_jar.clear()
    page = await home(client, sql, "editor")
    assert "今日联赛" in page and "到期" in page and "未处理的反馈" not in page


async def test_the_members_ending_soon_are_listed_and_exported(client, sql, club_day):
    await home(client, sql, "editor")
    page = await (await client.get("/admin/members", params={"expiring": "30"})).text()
    assert "共 1 人" in page and "快到期" in page and "还早" not in page
    assert 'href="/admin/members/export.csv?q=&amp;expiring=30"' in page
    resp = await client.get("/admin/members/export.csv", params={"expiring": "30"})
    assert resp.status == 200 and resp.headers["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO((await resp.read()).decode("utf-8-sig"))))
    assert rows[0][:3] == ["用户ID", "用户名", "手机"] and [r[1] for r in rows[1:]] == ["快到期"]
    # A malformed filter is no filter.
    page = await (await client.get("/admin/members", params={"expiring": "9999"})).text()
    assert "共 2 人" in page
