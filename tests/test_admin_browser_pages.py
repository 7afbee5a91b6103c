"""Console pages at phone width in a real headless Chromium (as test_admin_browser.py): what staff use from a
phone fits the screen. Screenshots go to tests/artifacts/ for a person to look at."""

from __future__ import annotations

from tests.helpers.admin import add_admin, png
from tests.helpers.browser import shot, sign_in

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}


def test_chat_moderation_fits_a_phone(page, live_server, sql):
    add_admin(sql, "mod", "moderator")
    sql("INSERT INTO lives (id, title, stream_name, live_status)"
        " VALUES (41, '决赛：建东猛龙 vs 城南勇士', 'final41', 1)")
    uid = sql("INSERT INTO users (openid, username) VALUES ('o-fan', '一位很热情的球迷朋友') RETURNING id")[0]["id"]
    cheers = [f"第{n}次加油" for n in range(40)]
    for content in (*cheers, "加油建东！今天一定要赢下这场比赛", "裁判是个大傻瓜", "好球"):
        sql("INSERT INTO chat_messages (room_id, user_id, uuid, content, user_info, msg_time)"
            " VALUES (41, %s, '000000000000-1', %s, '{\"username\": \"一位很热情的球迷朋友\"}', now())", uid, content)
    sign_in(page, "mod")
    page.set_viewport_size(DESKTOP)
    page.goto("/admin/chat/41")
    page.wait_for_selector("#messages li.message >> text=裁判是个大傻瓜")
    shot(page, "pages-chat-desktop")
    page.set_viewport_size(PHONE)
    page.goto("/admin/chat/41")
    page.wait_for_selector("#messages li.message >> text=裁判是个大傻瓜")
    shot(page, "pages-chat-phone")
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    # The list opens on its newest messages (the last), not on the oldest.
    assert page.evaluate("""() => { const m = document.getElementById('messages');
        return m.scrollHeight > m.clientHeight && m.scrollTop + m.clientHeight >= m.scrollHeight - 2; }""")
    # The messages in view (the newest): their text readable, their buttons within the screen.
    newest = page.locator("#messages li.message").last
    body = newest.locator(".body").bounding_box()
    assert body["width"] >= 200, body
    for button in newest.locator("a.button, button").all():
        box = button.bounding_box()
        assert box["x"] + box["width"] <= PHONE["width"], box


def test_short_labels_stay_on_one_line_and_thumbnails_are_whole(page, live_server, sql):
    add_admin(sql, "boss", "owner")
    sign_in(page)
    page.set_viewport_size(DESKTOP)
    page.goto("/admin/orders")
    shot(page, "pages-orders-desktop")
    for head in page.locator("table.list th").all():
        box = head.bounding_box()
        # One line of a 1rem heading with its padding is well under 60 px; a wrapped one is taller.
        assert box["height"] < 60, (head.inner_text(), box)
    fit = page.evaluate("""() => { const i = document.createElement('img'); i.className = 'thumb';
        document.body.append(i); return getComputedStyle(i).objectFit; }""")
    assert fit == "contain"
    page.set_viewport_size(PHONE)
    page.goto("/admin/orders")
    shot(page, "pages-orders-phone")


# Each label's text as drawn, line by line (a new line where a character sits below the one before it).
DRAWN_LINES = """els => els.map(e => { const lines = []; let bottom = -Infinity;
    const walk = document.createTreeWalker(e, NodeFilter.SHOW_TEXT);
    for (let t = walk.nextNode(); t; t = walk.nextNode()) for (let i = 0; i < t.length; i++) {
        const r = document.createRange(); r.setStart(t, i); r.setEnd(t, i + 1); const b = r.getBoundingClientRect();
        if (b.width && b.top >= bottom) { lines.push(''); bottom = b.bottom; }
        lines[lines.length - 1] += t.data[i];
    }
    return lines; })"""


def test_the_dashboard_tells_matches_apart_and_links_to_its_lists(page, live_server, sql):
    """Two matches whose long names differ only at the end, and a name in English words: each shown whole, on
    lines that break between words only; every chart's text readable at phone width."""
    add_admin(sql, "boss", "owner")
    titles = [f"青竹篮球俱乐部 对 猛龙篮球俱乐部 城市联赛常规赛 {n}" for n in ("第三轮", "第四轮")]
    titles.append("Riverside Hawks versus Mountain Lions Championship Final")
    for day, title in enumerate(titles, 3):
        sql("INSERT INTO competitions (title, play_time) VALUES (%s, now() + make_interval(days => %s))", title, day)
    fan = sql("INSERT INTO users (openid, username) VALUES ('o-fan', '球迷') RETURNING id")[0]["id"]
    sql("INSERT INTO competition_applies (competition_id, user_id) SELECT id, %s FROM competitions"
        " WHERE title LIKE '%%第三轮'", fan)
    sign_in(page)
    for size, name in ((DESKTOP, "pages-dashboard-desktop"), (PHONE, "pages-dashboard-phone")):
        page.set_viewport_size(size)
        page.goto("/admin/dashboard")
        shot(page, name)
        text = page.locator(".chart svg text, .chart figcaption, .chart .hbars .name, .chart .hbars .n")
        heights = text.evaluate_all("els => els.map(e => [e.textContent, e.getBoundingClientRect().height])")
        assert heights and all(height >= 12 for _, height in heights), (name, heights)
        labels = page.locator(".chart .hbars .name")
        names = labels.evaluate_all("els => els.map(e => e.textContent)")
        assert [n.split(" ", 1)[1] for n in names] == titles, names
        for shown, lines in zip(names, labels.evaluate_all(DRAWN_LINES), strict=True):
            # Joined again at the spaces they broke at, the lines are the name: no word was cut.
            assert " ".join(line.strip() for line in lines) == shown, (name, lines)
        assert page.evaluate("document.documentElement.scrollWidth") <= size["width"]
    page.locator(".hbars a").first.click()
    page.wait_for_url("**/admin/competitions/*")
    page.goto("/admin/dashboard")
    page.locator("a.figure", has_text="有效会员").click()
    page.wait_for_url("**/admin/members?status=1")


# The most lines any one text node under an element is drawn on (a wrapped label is one node on two lines).
LINES = """els => els.filter(e => e.offsetParent !== null).map(e => {
    const walk = document.createTreeWalker(e, NodeFilter.SHOW_TEXT); let most = 0;
    for (let t = walk.nextNode(); t; t = walk.nextNode()) {
        if (!t.textContent.trim()) continue;
        const r = document.createRange(); r.selectNodeContents(t);
        most = Math.max(most, new Set([...r.getClientRects()].map(b => Math.round(b.top))).size);
    }
    return [e.textContent.trim(), most]; })"""


def test_short_labels_of_every_list_stay_on_one_line(page, live_server, sql, settings):
    """The demo club's lists (orders with manual grants, a team's roster, videos, configs, the audit log) at
    desktop and phone width: every column head, state tag and row button is one line of text."""
    from jiandong.demo.club import load_demo

    assert load_demo(settings.replace(port=8080), ffmpeg="/nonexistent/ffmpeg") is True
    add_admin(sql, "boss", "owner")
    sql("INSERT INTO audit_log (admin_name, client_ip, action, target, summary) VALUES"
        " ('boss', '127.0.0.1', 'member.grant', 'user:1', '现场现金缴费，会员一年')")
    sign_in(page)
    wrapped = []
    for size, suffix in ((DESKTOP, "desktop"), (PHONE, "phone")):
        page.set_viewport_size(size)
        for path in ("/admin/orders", "/admin/teams/1", "/admin/videos", "/admin/configs", "/admin/audit"):
            page.goto(path)
            name = path.strip("/").replace("/", "-")
            shot(page, f"pages-labels-{name}-{suffix}")
            found = page.locator("table.list th, .tag, table.list td .button, table.list td button").evaluate_all(LINES)
            # A cell of a few characters is a label too (微信支付, 在队), whatever element holds it.
            found += [(text, n) for text, n in page.locator("table.list td").evaluate_all(LINES)
                      if len(text) <= 4 and " " not in text]
            wrapped += [f"{path} {suffix}: {text!r} on {n} lines" for text, n in found if n > 1]
            if (width := page.evaluate("document.documentElement.scrollWidth")) > size["width"]:
                wrapped.append(f"{path} {suffix}: {width} px wide")
            # Nothing in a row is cut off at the screen's edge (a form field or a button one cannot reach).
            wrapped += [f"{path} {suffix}: {what} ends at {right} px" for what, right in page.locator(
                "table.list td input, table.list td button, table.list td .button").evaluate_all(
                "els => els.map(e => [e.outerHTML.slice(0, 60), Math.round(e.getBoundingClientRect().right)])")
                if right > size["width"]]
    assert wrapped == []


# A description cell: its text, its width and the lines its text is drawn on.
SUMMARY = """els => els.map(e => { const r = document.createRange(); r.selectNodeContents(e);
    const rects = [...r.getClientRects()];
    return [e.textContent, Math.round(e.getBoundingClientRect().width),
            new Set(rects.map(b => Math.round(b.top))).size]; })"""


def test_the_audit_log_reads_at_desktop_and_phone_width(page, live_server, sql):
    """A long configuration edit (HTML without spaces), a refund and a grant: the description column is readable
    and nothing is wider than the screen; the long value is folded and opens whole within the screen."""
    import json

    add_admin(sql, "boss", "owner")
    html = "<p>尊享会员权益：</p>" + "<li>全年主场观赛、会员专属座位、球员见面会与签名球衣一件</li>" * 40
    entries = [
        ("configs.update", "configs:membership_agreement", "配置项", {"name": "协议", "value": "<p>旧</p>"},
         {"name": "协议", "value": html}),
        ("refund.create", "order:12", "赛事取消，按比例退还报名费用", {"status": 1, "refund_reserved": 0},
         {"status": 3, "refund_reserved": 10000, "refund": {"out_refund_no": "R20261205000001", "amount": 10000}}),
        ("member.grant", "user:7", "现场现金缴费，会员一年", {"member_status": 0, "expire": None},
         {"order": "M20261205000001", "amount": 15000, "valid_from": "2026-12-05T10:00:00+08:00",
          "valid_until": "2027-12-06T00:00:00+08:00"}),
    ]
    for action, target, summary, before, after in entries:
        sql("INSERT INTO audit_log (admin_name, client_ip, action, target, summary, before, after)"
            " VALUES ('boss', '203.0.113.7', %s, %s, %s, %s::jsonb, %s::jsonb)",
            action, target, summary, json.dumps(before), json.dumps(after))
    sign_in(page)
    for size, suffix in ((DESKTOP, "desktop"), (PHONE, "phone")):
        page.set_viewport_size(size)
        page.goto("/admin/audit")
        shot(page, f"pages-audit-{suffix}")
        assert page.evaluate("document.documentElement.scrollWidth") <= size["width"]
        # The table fits its frame: nothing to scroll sideways to.
        assert page.evaluate("(() => { const w = document.querySelector('.table-wrap');"
                             " return w.scrollWidth <= w.clientWidth; })()")
        text = page.locator("table.audit").inner_text()
        assert "修改配置项" in text and "发起退款" in text and "100.00 元" in text and "\\u" not in text
        # The description is a readable column (a reason on a line or two, not one character a line).
        for text, width, lines in page.locator("td.summary").evaluate_all(SUMMARY):
            assert width >= 120 and lines <= 2, (suffix, text, width, lines)
        page.locator("ul.diff details summary").first.click()
        whole = page.locator("ul.diff details .whole").first
        assert whole.is_visible() and "签名球衣" in whole.inner_text()
        shot(page, f"pages-audit-{suffix}-open")
        assert page.evaluate("document.documentElement.scrollWidth") <= size["width"]
        assert whole.bounding_box()["x"] + whole.bounding_box()["width"] <= size["width"]
        # Targets by their nouns, each a link to its page; the search hint whole in its box.
        assert page.locator("td.target a", has_text="会员 #7").get_attribute("href") == "/admin/members/7"
        assert page.locator("td.target a", has_text="订单 #12").get_attribute("href") == "/admin/orders/12"
        assert page.evaluate("""() => { const i = document.querySelector('input[name=q]');
            const c = document.createElement('canvas').getContext('2d'); c.font = getComputedStyle(i).font;
            return c.measureText(i.placeholder).width <= i.clientWidth; }""")


def test_a_refused_member_form_and_a_refused_page_say_why(page, live_server, sql):
    """A refused grant: back on the member page with the red banner at the top; an editor sent to the audit
    log: told which role may open it. At both widths, nothing wider than the screen."""
    add_admin(sql, "boss", "owner")
    add_admin(sql, "writer", "editor")
    uid = sql("INSERT INTO users (openid, username) VALUES ('o-member-refused-0123456789ab', '王小明') RETURNING id"
              )[0]["id"]
    sign_in(page)
    # Recording a grant is asked for first, stating what it records.
    asked = []
    page.on("dialog", lambda dialog: (asked.append(dialog.message), dialog.accept()))
    for size, suffix in ((DESKTOP, "desktop"), (PHONE, "phone")):
        page.set_viewport_size(size)
        page.goto(f"/admin/members/{uid}")
        page.fill("#years", "1")
        page.fill("#amount", "abc")
        page.fill("#reason", "现场缴费")
        page.click("form.grant-form button[type=submit]")
        page.wait_for_selector("div.refused")
        assert page.url.endswith(f"/admin/members/{uid}#refused")
        assert asked[-1] == "确定为 王小明 开通会员？年数：1；结束日期：；收款 abc 元；原因：现场缴费"
        assert "金额无效" in page.locator("div.refused").inner_text()
        assert page.input_value("#reason") == "现场缴费"
        shot(page, f"pages-member-refused-{suffix}")
        assert page.evaluate("document.documentElement.scrollWidth") <= size["width"]
    page.context.clear_cookies()
    sign_in(page, "writer")
    for size, suffix in ((DESKTOP, "desktop"), (PHONE, "phone")):
        page.set_viewport_size(size)
        page.goto("/admin/audit")
        assert "这里需要「所有者」角色，你的账号是「编辑」" in page.locator("main").inner_text()
        shot(page, f"pages-forbidden-{suffix}")
        assert page.evaluate("document.documentElement.scrollWidth") <= size["width"]


def test_a_refused_save_says_why_at_the_top_and_keeps_the_picture(page, live_server, sql, tmp_path):
    add_admin(sql, "boss", "owner")
    sign_in(page)
    picture = tmp_path / "banner.png"
    picture.write_bytes(png(750, 300, colour=(21, 128, 61)))
    page.set_viewport_size(DESKTOP)
    page.goto("/admin/banners/new")
    page.fill("#title", "杯赛报名开启")
    page.fill("#jump_url", "javascript:alert(1)")
    page.set_input_files("#image", str(picture))
    page.click("button:has-text('创建')")
    banner = page.locator(".refused")
    banner.wait_for()
    assert banner.inner_text().startswith("未保存：")
    # Above the form, in view without scrolling.
    assert banner.bounding_box()["y"] < page.locator("form >> #title").bounding_box()["y"] < DESKTOP["height"]
    assert page.locator(".kept img").evaluate("img => img.complete && img.naturalWidth > 0")
    shot(page, "pages-refused-save-desktop")
    page.set_viewport_size(PHONE)
    shot(page, "pages-refused-save-phone")
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    # The link in the banner leads to the field; the retry needs no new file.
    page.click(".refused a[href='#jump_url']")
    page.fill("#jump_url", "https://club.example.com/cup")
    page.click("button:has-text('创建')")
    page.wait_for_selector("text=轮播图已创建")
    assert sql("SELECT img_url FROM banners")[0]["img_url"].startswith("/media/banners/")


def test_the_config_page_says_which_page_reads_each_code_and_previews_rich_text(page, live_server, sql):
    add_admin(sql, "boss", "owner")
    sql("INSERT INTO config_values (code, name, value, rich) VALUES"
        " ('service_agreement', '服务协议', %s, true), ('ICP', '备案号', '粤ICP备12345678号', false),"
        " ('agreement_user', '用户协议', '<p>旧版</p>', true)",
        "<h3>一、总则</h3><p>欢迎使用<strong>建东篮球俱乐部</strong>服务。</p><ul><li>会员权益</li><li>退款规则</li></ul>"
        "<script>document.title='x'</script>")
    sign_in(page)
    for name, size in (("desktop", DESKTOP), ("phone", PHONE)):
        page.set_viewport_size(size)
        page.goto("/admin/configs")
        shot(page, f"pages-configs-{name}")
        assert page.evaluate("document.documentElement.scrollWidth") <= size["width"]
        assert "agreement_user" not in page.content()
        page.goto("/admin/configs/service_agreement")
        frame = page.frame_locator("iframe.rich-preview")
        frame.locator("text=会员权益").wait_for()
        assert frame.locator("script").count() == 0
        shot(page, f"pages-config-preview-{name}")
        assert page.evaluate("document.documentElement.scrollWidth") <= size["width"]


def test_long_identifiers_wrap_on_the_order_member_and_orders_pages(page, live_server, sql):
    """A WeChat transaction id, refund numbers and an openid (28 to 32 characters, no spaces) break within the
    screen, and the list's order numbers are readable whole."""
    from tests.helpers.browser import paid_order

    add_admin(sql, "boss", "owner")
    order = paid_order(live_server, sql)
    transaction, refund_no = "4200002345202612061234567890", "R202612061030159A3F2C7B1D4E5F6A7"
    openid = "oAbCdEfGhIjKlMnOpQrStUvWxYz1"
    sql("UPDATE orders SET transaction_id = %s WHERE id = %s", transaction, order["id"])
    sql("UPDATE users SET openid = %s WHERE id = (SELECT user_id FROM orders WHERE id = %s)", openid, order["id"])
    sql("INSERT INTO payment_notifications (order_id, out_trade_no, transaction_id, source, outcome, raw)"
        " VALUES (%s, %s, %s, 'notify', 'paid', '<xml/>')", order["id"], order["order_no"], transaction)
    refund = sql("INSERT INTO refunds (out_refund_no, order_id, amount, reason, status, refund_id) VALUES"
                 " (%s, %s, 100, '赛事取消', 'success', '50300001234567890123456789012') RETURNING id",
                 refund_no, order["id"])[0]["id"]
    sql("INSERT INTO refund_notifications (refund_id, out_refund_no, source, outcome, raw)"
        " VALUES (%s, %s, 'notify', 'success', '<xml/>')", refund, refund_no)
    user = sql("SELECT user_id FROM orders WHERE id = %s", order["id"])[0]["user_id"]
    sign_in(page)
    pages = (("order", f"/admin/orders/{order['id']}", (transaction, refund_no, openid)),
             ("member", f"/admin/members/{user}", (openid, order["order_no"])),
             ("order-list", "/admin/orders", (order["order_no"],)))
    for name, path, ids in pages:
        for size, suffix in ((DESKTOP, "desktop"), (PHONE, "phone")):
            page.set_viewport_size(size)
            page.goto(path)
            shot(page, f"pages-ids-{name}-{suffix}")
            assert page.evaluate("document.documentElement.scrollWidth") <= size["width"], (name, suffix)
            for text in ids:
                # Every element showing the identifier lies within the screen, and none is cut by its frame.
                boxes = page.locator(f".id:text-is('{text}')").evaluate_all(
                    "els => els.map(e => { const r = e.getBoundingClientRect(); return [r.left, r.right]; })")
                assert boxes, (name, text)
                for left, right in boxes:
                    assert 0 <= left and right <= size["width"], (name, suffix, text, left, right)
            if name == "order-list":
                assert page.evaluate("(() => { const w = document.querySelector('.table-wrap');"
                                     " return w.scrollWidth <= w.clientWidth; })()"), suffix


def test_a_match_picture_sits_in_its_field_below_its_label(page, live_server, sql, tmp_path):
    """The saved cover shows under the cover's label, inside its field; after a refused save with a new picture,
    the new one is marked as not yet saved."""
    add_admin(sql, "boss", "owner")
    sign_in(page)
    for colour, name in (((21, 128, 61), "old.png"), ((29, 78, 216), "new.png")):
        (tmp_path / name).write_bytes(png(750, 420, colour=colour))
    page.set_viewport_size(DESKTOP)
    page.goto("/admin/competitions/new")
    page.fill("#title", "青竹 对 猛龙 城市联赛常规赛 第三轮")
    page.fill("#play_time", "2030-05-01T19:30")
    page.set_input_files("#cover", str(tmp_path / "old.png"))
    page.click("button:has-text('创建')")
    page.wait_for_selector("text=已创建")
    edit = page.url
    for size, suffix in ((DESKTOP, "desktop"), (PHONE, "phone")):
        page.set_viewport_size(size)
        page.goto(edit)
        field = page.locator(".field:has(#cover)")
        label, preview, chooser = (field.locator(s).bounding_box() for s in ("label", "img.preview", "#cover"))
        assert label["y"] + label["height"] <= preview["y"] < chooser["y"], (label, preview, chooser)
        shot(page, f"pages-match-edit-{suffix}")
        assert page.evaluate("document.documentElement.scrollWidth") <= size["width"]
    page.fill("#title", "")
    page.set_input_files("#cover", str(tmp_path / "new.png"))
    page.click("button:has-text('保存')")
    page.locator(".refused").wait_for()
    kept = page.locator(".field:has(#cover) .kept")
    assert kept.inner_text().startswith("已上传，保存后生效")
    assert page.locator(".field:has(#cover) img.preview").get_attribute("alt") == "当前图片"
    for size, suffix in ((DESKTOP, "desktop"), (PHONE, "phone")):
        page.set_viewport_size(size)
        shot(page, f"pages-match-refused-{suffix}")
        assert page.evaluate("document.documentElement.scrollWidth") <= size["width"]


def test_the_home_page_says_what_needs_doing_at_both_widths(page, live_server, sql, settings):
    add_admin(sql, "boss", "owner")
    sql("INSERT INTO competitions (title, play_time) VALUES ('青竹篮球俱乐部 对 猛龙篮球俱乐部 城市联赛常规赛 第三轮',"
        " ((now() AT TIME ZONE %s)::date + time '19:30') AT TIME ZONE %s)", settings.timezone, settings.timezone)
    sql("INSERT INTO competitions (title, play_time) VALUES ('上周友谊赛', now() - interval '7 days')")
    sql("INSERT INTO lives (title, stream_name, live_status) VALUES ('城市联赛直播', 'home1', 1)")
    sql("INSERT INTO feedback (type, content) VALUES (1, '场馆空调太冷')")
    sign_in(page)
    for size, suffix in ((DESKTOP, "desktop"), (PHONE, "phone")):
        page.set_viewport_size(size)
        page.goto("/admin/")
        assert "上周友谊赛" in page.locator(".today").inner_text() and "第三轮" in page.locator(".today").inner_text()
        shot(page, f"pages-home-{suffix}")
        assert page.evaluate("document.documentElement.scrollWidth") <= size["width"]
