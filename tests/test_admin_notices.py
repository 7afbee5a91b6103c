"""The console's notices: delivery per kind, each kind's settings (refused when WeChat would refuse the fields),
staff notices with a preview by channel, their progress, the editors' daily cap, and a member's notices."""

from __future__ import annotations

import asyncio
import html
import re
import secrets

from tests.helpers.admin import add_admin, post_form, sign_in
from tests.helpers.waiting import until

FAST = {"notice_interval": 0.1}


def members(sql, count: int, *, phone: bool = True) -> list[int]:
    return [row["id"] for row in sql(
        "INSERT INTO users (openid, username, mobile, member_status, member_expire_time)"
        " SELECT 'o-n' || g, '会员' || g, CASE WHEN %s THEN '1390000' || lpad(g::text, 4, '0') END, 1,"
        " now() + interval '1 year' FROM generate_series(1, %s) g RETURNING id", phone, count)]


async def followed(client, resp) -> str:
    """The page a form's answer leads to (its redirect followed), as text."""
    if resp.status in (302, 303):
        resp = await client.get(resp.headers["Location"])
    return await resp.text()


async def previewed(client, form: dict) -> dict:
    """The form as the preview's send button posts it: with the preview's one-time send key."""
    page = await (await post_form(client, "/admin/notices/preview", form)).text()
    return {**form, "send_key": re.search(r'name="send_key" value="([0-9a-f]{32})"', page).group(1)}


def text_of(page: str) -> str:
    """A page's text without tags or any whitespace (compare with `bare(...)` of what is looked for)."""
    return bare(html.unescape(re.sub(r"<[^>]+>", " ", page)))


def bare(text: str) -> str:
    return re.sub(r"\s+", "", text)


async def console(make_client, sql, role: str = "owner", **settings):
    client = await make_client(**FAST, **settings)
    add_admin(sql, "boss", "owner")
    if role != "owner":
        add_admin(sql, role, role)
    assert (await sign_in(client, "boss" if role == "owner" else role)).status == 302
    return client


async def test_settings_are_saved_and_fields_wechat_would_refuse_are_not(make_client, sql):
    client = await console(make_client, sql)
    resp = await post_form(client, "/admin/notices/settings/signup_confirmed", {
        "enabled": "on", "template_id": "TPL-abc", "fields": "thing1=match\ntime2=start", "sms_template_code": "SMS_1"})
    assert resp.status == 303
    assert sql("SELECT kind, enabled, template_id, fields, sms_template_code FROM notice_kinds") == [
        {"kind": "signup_confirmed", "enabled": True, "template_id": "TPL-abc", "fields": "thing1=match\ntime2=start",
         "sms_template_code": "SMS_1"}]
    (entry,) = sql("SELECT action, target FROM audit_log WHERE action LIKE 'notice.%%'")
    assert entry == {"action": "notice.settings", "target": "notice_kind:signup_confirmed"}

    # A phrase holds at most 5 Chinese characters: a match title there would be refused with 47003.
    resp = await post_form(client, "/admin/notices/settings/signup_confirmed", {
        "template_id": "TPL-xyz", "fields": "phrase1=match", "sms_template_code": ""})
    raw = await followed(client, resp)
    assert bare("「报名成功」未保存：第 1 行：phrase1 不能填「match」") in text_of(raw)
    assert 'value="TPL-xyz"' in raw   # what was typed is kept
    assert sql("SELECT template_id, enabled FROM notice_kinds") == [{"template_id": "TPL-abc", "enabled": True}]

    # Ids as WeChat and Aliyun give them, copied whole: a pasted label or a code with spaces is named, not saved.
    for typed, said in ((("template_id", "报名成功通知 TPL-abc"), "模板 ID 只含字母、数字、- 和 _"),
                        (("sms_template_code", "SMS 1234"), "短信模板代码形如 SMS_123456789")):
        resp = await post_form(client, "/admin/notices/settings/signup_confirmed", {
            "template_id": "TPL-abc", "fields": "", "sms_template_code": "", "enabled": "on", typed[0]: typed[1]})
        assert bare(f"「报名成功」未保存：{said}") in text_of(await followed(client, resp))
    assert sql("SELECT template_id, sms_template_code FROM notice_kinds") == [
        {"template_id": "TPL-abc", "sms_template_code": "SMS_1"}]

    # Switched off: a sign-up writes no notice.
    resp = await post_form(client, "/admin/notices/settings/signup_confirmed", {
        "template_id": "TPL-abc", "fields": "", "sms_template_code": ""})
    assert resp.status == 303
    assert sql("SELECT enabled FROM notice_kinds") == [{"enabled": False}]
    resp = await post_form(client, "/admin/notices/settings/no_such_kind", {"template_id": "x"})
    assert resp.status == 404


async def test_a_staff_notice_is_previewed_then_sent_in_the_background(make_client, sql):
    client = await console(make_client, sql)
    ids = members(sql, 30)
    competition = sql("INSERT INTO competitions (title, play_time, status)"
                      " VALUES ('周六联赛', now() + interval '1 day', 1)"
                      " RETURNING id")[0]["id"]
    for user_id in ids[:12]:
        sql("INSERT INTO competition_applies (competition_id, user_id) VALUES (%s, %s)", competition, user_id)
    form = {"audience": "match", "audience_id": str(competition), "title": "集合时间调整",
            "content": "周六比赛改为 8:30 集合，地点不变", "url": ""}
    resp = await post_form(client, "/admin/notices/preview", form)
    assert resp.status == 200
    page = text_of(await resp.text())
    # No AppID here (development): every one of them is "reached" by the log.
    assert bare("共 12 人，公众号 12 人") in page and "会员1、会员2" in page
    assert sql("SELECT count(*) AS n FROM notices")[0]["n"] == 0   # a preview writes nothing

    resp = await post_form(client, "/admin/notices/send", await previewed(client, form))
    assert resp.status == 303
    campaign = int(resp.headers["Location"].rsplit("/", 1)[1])
    assert sql("SELECT recipients, title FROM notice_campaigns") == [{"recipients": 12, "title": "集合时间调整"}]
    assert sorted(r["user_id"] for r in sql("SELECT user_id FROM notices WHERE campaign_id = %s", campaign)) == ids[:12]
    (entry,) = sql("SELECT action, target, summary FROM audit_log WHERE action = 'notice.send'")
    assert entry == {"action": "notice.send", "target": f"campaign:{campaign}",
                     "summary": "报名某场比赛的会员：集合时间调整（12 人）"}

    async def finished():
        page = text_of(await (await client.get(f"/admin/notices/campaigns/{campaign}")).text())
        return bare("已完成：12 / 12") in page

    await until(finished, "the campaign to finish")
    assert {r["state"] for r in sql("SELECT state FROM notices")} == {"logged"}
    page = text_of(await (await client.get(f"/admin/members/{ids[0]}")).text())
    assert "俱乐部通知" in page and bare("集合时间调整：周六比赛改为 8:30 集合，地点不变") in page
    page = text_of(await (await client.get("/admin/notices")).text())
    assert "集合时间调整" in page and bare("未配置公众号 AppID") in page


async def test_an_editor_may_send_twice_a_day(make_client, sql):
    client = await console(make_client, sql, role="editor")
    members(sql, 3)
    form = {"audience": "active", "audience_id": "", "title": "通知", "content": "场馆周日关闭", "url": ""}
    for _ in range(2):
        assert (await post_form(client, "/admin/notices/send", await previewed(client, form))).status == 303
    resp = await post_form(client, "/admin/notices/send", await previewed(client, form))
    assert bare("编辑每天最多群发 2 次，今天已用完") in text_of(await followed(client, resp))
    assert sql("SELECT count(*) AS n FROM notice_campaigns")[0]["n"] == 2
    assert sql("SELECT count(*) AS n FROM notices")[0]["n"] == 6


async def test_a_staff_notice_form_refuses_what_it_cannot_send(make_client, sql):
    client = await console(make_client, sql)
    cases = [
        ({"audience": "match", "audience_id": "", "title": "t", "content": "c"}, "请选择比赛"),
        ({"audience": "everyone", "audience_id": "", "title": "t", "content": "c"}, "请选择发给谁"),
        ({"audience": "active", "audience_id": "", "title": "", "content": "c"}, "标题为 1 到 40 个字"),
        ({"audience": "active", "audience_id": "", "title": "t", "content": "c", "url": "javascript:alert(1)"},
         "链接应以 http:// 或 https:// 开头"),
        ({"audience": "expiring", "audience_id": "400", "title": "t", "content": "c"}, "天数最多 366"),
        ({"audience": "active", "audience_id": "", "title": "t", "content": "c"}, "没有会员会收到这条通知"),
    ]
    for form, message in cases:
        resp = await post_form(client, "/admin/notices/send", {"url": "", "send_key": secrets.token_hex(16), **form})
        assert resp.status == 303 and bare(f"未发送：{message}") in text_of(await followed(client, resp)), message
    assert sql("SELECT count(*) AS n FROM notice_campaigns")[0]["n"] == 0


async def test_a_preview_is_sent_once_however_often_its_button_is_posted(make_client, sql):
    """A double click, a resubmitted page, two requests at once: one campaign, each member told once."""
    client = await console(make_client, sql, role="editor")
    members(sql, 3)
    form = await previewed(client, {"audience": "active", "audience_id": "", "title": "通知", "content": "场馆周日关闭",
                                    "url": ""})
    first, second = await asyncio.gather(*(post_form(client, "/admin/notices/send", form) for _ in range(2)))
    third = await post_form(client, "/admin/notices/send", form)
    [campaign] = sql("SELECT id, recipients FROM notice_campaigns")
    where = f"/admin/notices/campaigns/{campaign['id']}"
    assert [r.status for r in (first, second, third)] == [303] * 3
    assert {r.headers["Location"] for r in (first, second, third)} == {where}
    assert bare("这条通知已经发送过，没有再发一次") in text_of(await followed(client, third))
    assert campaign["recipients"] == 3 and sql("SELECT count(*) AS n FROM notices")[0]["n"] == 3
    assert len(sql("SELECT id FROM audit_log WHERE action = 'notice.send'")) == 1
    # The editor's daily cap counts campaigns, not clicks: a second preview still goes out.
    resp = await post_form(client, "/admin/notices/send", await previewed(client, {**form, "send_key": ""}))
    assert resp.status == 303 and resp.headers["Location"] != where


async def test_a_send_without_its_preview_key_writes_nothing(make_client, sql):
    client = await console(make_client, sql)
    members(sql, 2)
    form = {"audience": "active", "audience_id": "", "title": "通知", "content": "场馆周日关闭", "url": ""}
    for key in (None, "", "0" * 31, "G" * 32, "'; DROP TABLE notices; --"):
        resp = await post_form(client, "/admin/notices/send", form if key is None else {**form, "send_key": key})
        page = text_of(await followed(client, resp))
        assert resp.status == 303 and bare("未发送：请先预览，再从预览页发送") in page, key
    assert sql("SELECT count(*) AS n FROM notice_campaigns")[0]["n"] == 0
    assert sql("SELECT count(*) AS n FROM notices")[0]["n"] == 0


async def test_a_preview_shows_the_message_as_wechat_will_show_it(make_client, sql):
    client = await console(make_client, sql)
    members(sql, 2)
    long = "周六比赛改为早上八点半在体育中心东门集合，请带好球衣和水"
    form = {"audience": "active", "audience_id": "", "title": "集合时间和地点调整", "content": long, "url": ""}
    page = text_of(await (await post_form(client, "/admin/notices/preview", form)).text())
    # The default fields: thing1 the title, thing2 the content cut to WeChat's 20 characters, time3 now.
    assert bare("会员在公众号里看到的thing1集合时间和地点调整") in page
    assert bare(f"thing2{long[:19]}…time3") in page
    assert "超出的部分以「…」截断" in page
