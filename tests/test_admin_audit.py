"""The audit log: console changes of every section recorded (who, when, what, before and after, client IP),
searchable by owners only, with no way to change or delete an entry."""

from __future__ import annotations

import re

from tests.helpers.admin import add_admin, post_form, sign_in


async def test_content_changes_are_logged_and_searchable(make_client, sql):
    client = await make_client(trust_proxy=True)
    add_admin(sql)
    assert (await sign_in(client)).status == 302
    proxied = {"X-Forwarded-For": "203.0.113.7"}
    resp = await post_form(client, "/admin/teams/new", {"name": "建东猛龙", "sort": "0"}, headers=proxied)
    assert resp.status == 302
    team = sql("SELECT id FROM teams")[0]["id"]
    resp = await post_form(client, f"/admin/teams/{team}", {"name": "建东飞虎", "sort": "1"}, headers=proxied)
    assert resp.status == 302
    await post_form(client, f"/admin/teams/{team}/off", headers=proxied)
    await post_form(client, "/admin/staff/new", {"username": "writer", "role": "editor", "password": "a long password"})
    await post_form(client, "/admin/password", {"current": "correct horse 42", "new": "another horse 43",
                                                "confirm": "another horse 43"})
    rows = sql("SELECT admin_name, client_ip, action, target, before, after FROM audit_log ORDER BY id")
    assert [r["action"] for r in rows] == ["teams.create", "teams.update", "teams.off", "staff.create",
                                           "account.password"]
    assert {r["client_ip"] for r in rows[:3]} == {"203.0.113.7"} and rows[0]["admin_name"] == "boss"
    assert rows[1]["before"]["name"] == "建东猛龙" and rows[1]["after"]["name"] == "建东飞虎"
    assert rows[1]["target"] == f"teams:{team}"
    # No password, hash or token ever reaches the log.
    everything = str(rows)
    assert "a long password" not in everything and "horse" not in everything and "csrf" not in everything
    text = await (await client.get("/admin/audit")).text()
    assert "共 5 条" in text and "203.0.113.7" in text
    # Each entry names its item and opens it: the team by its name and a link, not "teams:1".
    assert [r["summary"] for r in sql("SELECT summary FROM audit_log ORDER BY id")][:3] == [
        "球队「建东猛龙」", "球队「建东飞虎」", "球队「建东飞虎」"]
    assert f'<a href="/admin/teams/{team}">球队 #{team}</a>' in text and f">teams:{team}<" not in text
    # A name finds every entry of its item: by the team's name of today, its creation under the old name too.
    text = await (await client.get("/admin/audit", params={"q": "飞虎"})).text()
    assert "共 3 条" in text and "teams.create" in text and "teams.update" in text and "teams.off" in text
    text = await (await client.get("/admin/audit", params={"action": "staff"})).text()
    assert "共 1 条" in text and "staff.create" in text


async def test_the_log_is_for_owners_and_cannot_be_changed(client, sql):
    add_admin(sql)
    add_admin(sql, "writer", "editor")
    assert (await sign_in(client)).status == 302
    await post_form(client, "/admin/teams/new", {"name": "球队", "sort": "0"})
    entry = sql("SELECT id FROM audit_log")[0]["id"]
    # No route edits or deletes an entry.
    for path in (f"/admin/audit/{entry}", f"/admin/audit/{entry}/delete"):
        assert (await post_form(client, path, {"summary": "x"})).status in (404, 405)
    assert (await client.get(f"/admin/audit/{entry}")).status == 404
    assert sql("SELECT count(*) FROM audit_log")[0]["count"] == 1
    assert (await sign_in(client, "writer")).status == 302
    assert (await client.get("/admin/audit")).status == 403


async def test_the_log_reads_in_chinese_field_by_field(client, sql):
    """A product's price and a rich configuration edited in the console: the log names the actions and the
    changed fields, shows money in yuan and markup as text (folded when long), never JSON escapes."""
    add_admin(sql)
    assert (await sign_in(client)).status == 302
    product = {"title": "尊享年卡", "price": "100.00", "valid_time": "1", "amount": "100", "content": "<p>权益</p>"}
    assert (await post_form(client, "/admin/products/new", product)).status == 302
    ident = sql("SELECT id FROM businesses")[0]["id"]
    resp = await post_form(client, f"/admin/products/{ident}", {**product, "price": "299.50"})
    assert resp.status == 302
    value = "<p>尊享会员权益</p>" + "<p>全年主场观赛，会员专属座位与球员见面会。</p>" * 20
    resp = await post_form(client, "/admin/configs/new", {"code": "membership_agreement", "name": "尊享会员服务协议",
                                                          "value": "<p>旧的协议</p>", "rich": "y"})
    assert resp.status == 302
    resp = await post_form(client, "/admin/configs/membership_agreement",
                           {"name": "尊享会员服务协议", "value": value})
    assert resp.status == 302
    text = re.sub(r">\s+<", "><", await (await client.get("/admin/audit")).text())
    assert "新建会员业务" in text and "修改会员业务" in text and "修改配置项" in text
    assert "\\u" not in text and "refund_reserved" not in text
    # The edit shows the price, nothing unchanged (the title was sent again as it was).
    edit = text.split("修改会员业务", 1)[1].split("</tr>", 1)[0]
    assert '<span class="field">价格</span><span class="old">100.00 元</span>' in edit
    assert '<span class="new">299.50 元</span>' in edit and "名称" not in edit and "原价" not in edit
    # The configuration's HTML is text, folded, the whole of it in the fold.
    config = text.split("修改配置项", 1)[1].split("</tr>", 1)[0]
    assert "&lt;p&gt;尊享会员权益&lt;/p&gt;" in config and "<details" in config and "展开看全文" in config
    assert "<p>尊享会员权益" not in config
    whole = config.split('<div class="whole">', 1)[1].split("</div>", 1)[0]
    assert whole.count("全年主场观赛") == 20


async def test_the_log_by_dates(client, sql):
    add_admin(sql)
    assert (await sign_in(client)).status == 302
    for at, summary in (("2026-03-01 23:30+08", "三月一日晚"), ("2026-03-02 00:10+08", "三月二日凌晨"),
                        ("2026-03-04 12:00+08", "三月四日")):
        sql("INSERT INTO audit_log (at, admin_name, action, target, summary) VALUES (%s, 'boss', 'member.grant',"
            " 'user:1', %s)", at, summary)

    async def listed(**params):
        resp = await client.get("/admin/audit", params=params)
        assert resp.status == 200
        text = await resp.text()
        return [s for s in ("三月一日晚", "三月二日凌晨", "三月四日") if s in text], text

    # The club's days (Asia/Shanghai): 23:30 on the 1st is the 1st, 00:10 on the 2nd the 2nd.
    assert (await listed(**{"from": "2026-03-02", "to": "2026-03-03"}))[0] == ["三月二日凌晨"]
    assert (await listed(**{"from": "2026-03-02"}))[0] == ["三月二日凌晨", "三月四日"]
    assert (await listed(to="2026-03-01"))[0] == ["三月一日晚"]
    assert (await listed(**{"from": "2026-04-01"}))[0] == []
    # With the other filters.
    found, text = await listed(**{"from": "2026-03-01", "to": "2026-03-04", "q": "凌晨", "action": "member"})
    assert found == ["三月二日凌晨"] and "共 1 条" in text and "手工开通会员" in text
    assert (await listed(**{"from": "2026-03-01", "action": "refund"}))[0] == []
    # A malformed date is said so, and left out.
    found, text = await listed(**{"from": "2026-02-30", "to": "2026-03-01"})
    assert found == ["三月一日晚"] and "开始日期「2026-02-30」不是有效的日期" in text
    found, text = await listed(to="yesterday")
    assert len(found) == 3 and "结束日期「yesterday」不是有效的日期" in text
    assert "开始日期晚于结束日期" in (await listed(**{"from": "2026-03-04", "to": "2026-03-01"}))[1]


async def test_paging_keeps_the_dates(client, sql):
    add_admin(sql)
    assert (await sign_in(client)).status == 302
    sql("INSERT INTO audit_log (at, admin_name, action, summary) SELECT '2026-05-01 10:00+08', 'boss', 'chat.mute',"
        " '第' || n || '条' FROM generate_series(1, 25) n")
    sql("INSERT INTO audit_log (at, admin_name, action, summary) VALUES ('2026-06-01 10:00+08', 'boss', 'chat.mute',"
        " '六月')")
    text = await (await client.get("/admin/audit", params={"from": "2026-05-01", "to": "2026-05-31"})).text()
    assert "共 25 条" in text and "禁言" in text and "六月" not in text
    assert "page=2" in text and "from=2026-05-01" in text and "to=2026-05-31" in text
    second = text.split('<nav class="pager">', 1)[1].split('href="', 1)[1].split('"', 1)[0].replace("&amp;", "&")
    text = await (await client.get(second)).text()
    assert "第 2 / 2 页" in text and "六月" not in text and text.count('data-label="说明"') == 5
    # A page past the end still says how many there are.
    text = await (await client.get("/admin/audit", params={"from": "2026-05-01", "to": "2026-05-31",
                                                           "page": "99"})).text()
    assert "共 25 条" in text and text.count('data-label="说明"') == 0


async def test_the_action_filter_takes_the_names_staff_read(client, sql):
    add_admin(sql)
    assert (await sign_in(client)).status == 302
    for action in ("chat.mute", "chat.unmute", "refund.create", "competitions.update"):
        sql("INSERT INTO audit_log (admin_name, action, summary) VALUES ('boss', %s, %s)", action, action)
    for typed, found in (("禁言", {"chat.mute", "chat.unmute"}), ("退款", {"refund.create"}),
                         ("修改赛事", {"competitions.update"}), ("chat", {"chat.mute", "chat.unmute"}),
                         ("refund", {"refund.create"}), ("没有这个", set())):
        text = await (await client.get("/admin/audit", params={"action": typed})).text()
        shown = set(re.findall(r'class="what" title="([a-z_.]+)"', text))
        assert shown == found and f"共 {len(found)} 条" in text, typed


async def test_targets_are_named_and_found_by_their_names(client, sql):
    """An entry keeps the target's id; the log shows its name of today beside it and finds it by that name
    (a member's, an order's number, a match's title)."""
    add_admin(sql)
    assert (await sign_in(client)).status == 302
    uid = sql("INSERT INTO users (openid, username) VALUES ('o-named', '捣乱的小号') RETURNING id")[0]["id"]
    match = sql("INSERT INTO competitions (title, play_time) VALUES ('城市联赛决赛', now()) RETURNING id")[0]["id"]
    for action, target in (("chat.mute", f"user:{uid}"), ("competitions.update", f"competitions:{match}"),
                           ("refund.create", "order:999999")):
        sql("INSERT INTO audit_log (admin_name, action, target, summary) VALUES ('boss', %s, %s, 'x')",
            action, target)
    text = await (await client.get("/admin/audit")).text()
    assert re.search(rf'会员 #{uid}</a><br><span class="muted">捣乱的小号</span>', text)
    assert re.search(rf'赛事 #{match}</a><br><span class="muted">城市联赛决赛</span>', text)
    for typed, found in (("捣乱", "chat.mute"), ("联赛决赛", "competitions.update")):
        text = await (await client.get("/admin/audit", params={"q": typed})).text()
        assert "共 1 条" in text and f'title="{found}"' in text, typed


async def test_a_deletion_records_the_item_in_the_forms_terms(client, sql):
    """What a deleted match was, as its form shows it: no computed columns, flags as yes / no, the title whole
    or cut with an ellipsis."""
    add_admin(sql)
    assert (await sign_in(client)).status == 302
    title = "城市联赛" * 20
    match = sql("INSERT INTO competitions (title, play_time) VALUES (%s, now()) RETURNING id", title)[0]["id"]
    assert (await post_form(client, f"/admin/competitions/{match}/delete", token_from="/admin/")).status == 302
    entry = sql("SELECT summary, before FROM audit_log WHERE action = 'competitions.delete'")[0]
    assert not {"signups", "team_names", "status", "id", "updated_at"} & entry["before"].keys()
    assert entry["before"]["is_hot"] is False and entry["before"]["title"] == title
    assert entry["summary"] == f"赛事「{title[:50]}…」"
