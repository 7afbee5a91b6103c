"""The console's business pages in a real headless Chromium (as test_admin_browser.py): a membership granted by
hand, a refund (dev payments: no money moves), a chat message deleted while a viewer chats and then missing
for a viewer who joins afterwards, and the dashboard. Screenshots go to tests/artifacts/ for a person to look at."""

from __future__ import annotations

from tests.helpers.admin import add_admin
from tests.helpers.browser import h5, paid_order, shot, sign_in, token_of


def test_grant_a_membership_by_hand(page, live_server, sql):
    add_admin(sql)
    status, info = h5(live_server, "/api/v1/user/info", "browser-member")
    assert status == 200 and info["member_status"] == 0
    sql("UPDATE users SET username = '王五', mobile = '13700000055', profile_edited = true"
        " WHERE username = 'dev-browser-member'")
    sign_in(page)
    page.goto("/admin/members")
    page.fill("input[name=q]", "13700000055")
    page.click("button:has-text('搜索')")
    page.click("a:has-text('王五')")
    page.fill("#years", "1")
    page.fill("#amount", "150")
    page.fill(".grant-form #reason", "现场现金缴费")
    # Recording it is asked for first, with what it records.
    asked = []
    page.once("dialog", lambda dialog: (asked.append(dialog.message), dialog.accept()))
    page.click("button:has-text('开通')")
    page.wait_for_selector("text=会员已开通")
    assert asked == ["确定为 王五 开通会员？年数：1；结束日期：；收款 150 元；原因：现场现金缴费"]
    assert "正常" in page.locator("h1").inner_text()
    assert "手动开通" in page.locator("table.list").first.inner_text()
    shot(page, "10-member-granted")
    status, info = h5(live_server, "/api/v1/user/info", "browser-member")
    assert info["member_status"] == 1 and info["is_member"] == 1
    [order] = sql("SELECT kind, pay_amount, remark FROM orders")
    assert order == {"kind": "manual", "pay_amount": 15000, "remark": "现场现金缴费"}


def test_refund_an_order(page, live_server, sql):
    add_admin(sql)
    order = paid_order(live_server, sql)
    sign_in(page)
    asked: list[str] = []
    page.on("dialog", lambda dialog: (asked.append(dialog.message), dialog.accept()))
    page.goto("/admin/orders")
    page.click(f"a:has-text('{order['order_no']}')")
    page.fill("#amount", "50.00")
    page.fill("form.refund-form #reason", "场地维修，部分退款")
    page.click("button:has-text('退款')")
    page.wait_for_selector("text=（50.00 元）：已退款")
    page.fill("#amount", "149.00")
    page.fill("form.refund-form #reason", "赛事取消，退还余款")
    page.click("button:has-text('退款')")
    page.wait_for_selector("text=（149.00 元）：已退款")
    assert "已退款" in page.locator("h1").inner_text()
    assert page.locator("tr.refund").count() == 2
    # Each refund was confirmed first (static/confirm.js: no inline handler runs under the CSP).
    assert asked == ["确定退款 50.00 元？原因：场地维修，部分退款", "确定退款 149.00 元？原因：赛事取消，退还余款"]
    shot(page, "08-order-detail")
    status, info = h5(live_server, "/api/v1/user/info", "browser-buyer")
    assert info["member_status"] == 3
    assert [r["status"] for r in sql("SELECT status FROM refunds ORDER BY id")] == ["success", "success"]


OPEN_SOCKET = """async ([token, room, lines]) => {
  const ws = new WebSocket(location.origin.replace('http', 'ws') + '/ws');
  await new Promise(ok => ws.onopen = ok);
  ws.send(JSON.stringify({type: 'LOGIN', room_id: room, token}));
  const seqs = [];
  ws.onmessage = e => { if (e.data[0] === '{') { const f = JSON.parse(e.data);
                                                  if (f.type === 'SEND_ALL' && f.myself) seqs.push(f.seq); } };
  for (const content of lines) {
    ws.send(JSON.stringify({type: 'SEND_ALL', room_id: room, content, token}));
    await new Promise(ok => setTimeout(ok, 50));
  }
  while (seqs.length < lines.length) await new Promise(ok => setTimeout(ok, 50));
  window.viewerSocket = ws;
  return seqs;
}"""
JOIN_LATER = """async ([token, room]) => {
  const r = await fetch('/api/v1/guest/' + room, {headers: {token}});
  return (await r.json()).map(m => m.content);
}"""


def test_delete_a_message_a_later_viewer_never_sees(page, browser, live_server, sql):
    add_admin(sql, "mod", "moderator")
    sql("INSERT INTO lives (id, title, stream_name, live_status)"
        " VALUES (31, '决赛：建东猛龙 vs 城南勇士', 'final31', 1)")
    sign_in(page, "mod")
    page.goto("/admin/chat")
    page.click("a:has-text('决赛：建东猛龙')")
    # A viewer chats in the room from another browser.
    viewer = browser.new_context(base_url=live_server).new_page()
    viewer.goto("/admin/login")
    talker = token_of(live_server, "browser-talker")
    lines = ["加油建东！", "裁判是个大傻瓜", "好球 <img class=\"emoji\" src=\"/h5/images/emoji/1.gif\"/>"]
    seqs = viewer.evaluate(OPEN_SOCKET, [talker, "31", lines])
    # The moderator's page shows them without a reload.
    page.wait_for_selector("#messages li.message >> text=裁判是个大傻瓜")
    assert page.locator("#messages li.message").count() == 3
    shot(page, "09-moderation")
    # Deleting is asked for first; the moderator says yes.
    asked = []
    page.once("dialog", lambda dialog: (asked.append(dialog.message), dialog.accept()))
    page.locator(f"#messages li[data-seq='{seqs[1]}'] button:has-text('删除')").click()
    page.wait_for_selector("text=消息已删除")
    assert asked and asked[0].startswith("删除这条消息？")
    assert "裁判是个大傻瓜" not in page.locator("#messages").inner_text()
    # A viewer who joins afterwards loads the room's history as the pages do: the message is not there.
    later = browser.new_context(base_url=live_server).new_page()
    later.goto("/admin/login")
    contents = later.evaluate(JOIN_LATER, [token_of(live_server, "browser-later"), "31"])
    assert contents == ["加油建东！", '好球 <img class="emoji" src="/h5/images/emoji/1.gif">']
    viewer.context.close()
    later.context.close()


def test_dashboard(page, live_server, sql):
    add_admin(sql)
    product = sql("INSERT INTO businesses (title, price, valid_time, amount) VALUES ('年度会员', 19900, 1, 100)"
                  " RETURNING id")[0]["id"]
    for i in range(12):
        user = sql("INSERT INTO users (openid, username, member_status, member_expire_time) VALUES (%s, %s, 1,"
                   " now() + make_interval(days => %s)) RETURNING id", f"o-dash-{i}", f"球员{i}", 20 + 30 * i)[0]["id"]
        order = sql("INSERT INTO orders (order_no, user_id, business_id, price, total_price, pay_amount, status,"
                    " snap_items, create_time, pay_time, transaction_id) VALUES (%s, %s, %s, 19900, 19900, 19900, 1,"
                    " '[]', now() - make_interval(days => %s), now() - make_interval(days => %s), %s) RETURNING id",
                    f"TDASH{i:06d}", user, product, 2 * i, 2 * i, f"42DASH{i}")[0]["id"]
        sql("INSERT INTO member_extensions (order_id, user_id, valid_from, valid_until) VALUES (%s, %s,"
            " now() - make_interval(days => %s), now() + interval '1 year')", order, user, 7 * i)
    sql("INSERT INTO refunds (out_refund_no, order_id, amount, reason, status, success_time) SELECT 'RDASH0001', id,"
        " 9900, '退', 'success', now() - interval '3 days' FROM orders WHERE order_no = 'TDASH000002'")
    match = sql("INSERT INTO competitions (title, play_time) VALUES ('周六联赛第 5 轮', now() + interval '2 days')"
                " RETURNING id")[0]["id"]
    sql("INSERT INTO competition_applies (competition_id, user_id) SELECT %s, id FROM users LIMIT 7", match)
    sql("INSERT INTO lives (title, stream_name, live_status) VALUES ('周六联赛直播', 'sat5', 1)")
    sql("INSERT INTO chat_messages (room_id, content, msg_time)"
        " SELECT 1, 'hi', now() - make_interval(days => mod(d, 20)) FROM generate_series(1, 120) d")
    sign_in(page)
    page.goto("/admin/dashboard")
    # Four bar charts drawn as SVG, two lists of named items (matches, streams) with their meters.
    assert page.locator(".chart svg").count() == 4 and page.locator(".chart ul.hbars").count() == 2
    assert page.locator("#members-active").inner_text() == "12"
    assert page.locator(".chart svg").first.evaluate("svg => svg.getBoundingClientRect().width") > 300
    shot(page, "07-dashboard")
