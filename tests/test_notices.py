"""Notices to members: each kind triggered by its event through the public interface, sent once through the fake
WeChat's template endpoint (or the fake Aliyun's SMS when the member does not follow the account), retried
only when the answer allows, and exactly once across two processes and a restart (counted at the fakes)."""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path

import pytest

from jiandong.keys import metrics_key
from jiandong.lib import template_fields as tf
from jiandong.services.notice_kinds import KINDS, templates_markdown
from jiandong.services.notice_sending import client_msg_id
from tests.fakes import wechat as fake_wechat
from tests.fakes.aliyun import FakeDysmsapi, SentSms
from tests.fakes.wechat import TEMPLATE_PATH, FakeWeChat
from tests.helpers.admin import add_admin, post_form, sign_in
from tests.helpers.api import call, login
from tests.helpers.orders import add_product, commit
from tests.helpers.waiting import until

COMMIT = "/api/v1/competition/apply/commit"
CANCEL = "/api/v1/competition/apply/cancel"
PRE_ORDER = "/api/v1/pay/pre_order"
DEV_COMPLETE = "/api/v1/pay/dev/complete"
PHONE = "13800138000"
FINAL = ("sent", "sms", "logged", "failed", "unreachable")


@pytest.fixture
async def sms(aiohttp_server) -> FakeDysmsapi:
    fake = FakeDysmsapi()
    server = await aiohttp_server(fake.app())
    fake.url = str(server.make_url("/"))  # type: ignore[attr-defined]
    return fake


def app_settings(wechat: FakeWeChat, sms: FakeDysmsapi, **extra) -> dict:
    return {**fake_wechat.settings_for(wechat), "sms_provider": "aliyun", "aliyun_access_key_id": sms.access_key_id,
            "aliyun_access_key_secret": sms.access_key_secret, "sms_sign_name": "建东体育",
            "sms_template_code": "SMS_100000001", "aliyun_sms_url": sms.url,  # type: ignore[attr-defined]
            "notice_interval": 0.1, **extra}


def set_up_templates(sql, wechat: FakeWeChat, sms: FakeDysmsapi) -> None:
    """Every kind's 类目模板 picked in the OA's back office (its default keys) and its SMS template approved."""
    for name, kind in KINDS.items():
        wechat.add_template(f"TPL_{name}", *tf.parse_mapping(kind.fields, kind.natures()))
        sms.notice_templates[f"SMS_{name}"] = tuple(kind.values)
        sql("INSERT INTO notice_kinds (kind, template_id, sms_template_code) VALUES (%s, %s, %s)",
            name, f"TPL_{name}", f"SMS_{name}")


@pytest.fixture
async def club(make_client, wechat, sms, sql):
    set_up_templates(sql, wechat, sms)
    return await make_client(**app_settings(wechat, sms))


async def member(client, wechat, sql, name: str = "alice", phone: str | None = PHONE) -> tuple[str, int]:
    """A WeChat login (openid o-<name>) with an active membership and a bound phone: (token, user id)."""
    wechat.add_code(f"code-{name}", f"o-{name}", nickname=name)
    token = await login(client, f"code-{name}")
    user_id = sql("UPDATE users SET member_status = 1, member_expire_time = now() + interval '1 year',"
                  " mobile = %s WHERE openid = %s RETURNING id", phone, f"o-{name}")[0]["id"]
    return token, user_id


def match(sql, title: str = "周末联赛 青竹 vs 猛龙", hours: float = 24 * 7, venue: str = "体育中心") -> int:
    return sql("INSERT INTO competitions (title, play_time, venue, status) VALUES"
               " (%s, now() + make_interval(secs => %s), %s, 1) RETURNING id", title, hours * 3600, venue)[0]["id"]


def notices(sql, **where) -> list[dict]:
    conditions = " AND ".join(f"{k} = %s" for k in where) or "true"
    return sql(f"SELECT * FROM notices WHERE {conditions} ORDER BY id", *where.values())


async def settled(sql, what: str, **where) -> list[dict]:
    """The notices matching `where`, once there is one and none is waiting any more."""
    def done():
        rows = notices(sql, **where)
        return rows and all(r["state"] in FINAL for r in rows)

    await until(done, what)
    return notices(sql, **where)


async def rounds_pass(client, count: int = 2) -> int:
    """Wait until the notice sender has finished `count` more rounds; how many it had finished before."""
    metrics = client.app[metrics_key]
    before = metrics.job_last_run.labels("notice sender")._value.get()
    seen = []

    def later_round():
        value = metrics.job_last_run.labels("notice sender")._value.get()
        if value != (seen[-1] if seen else before):
            seen.append(value)
        return len(seen) >= count

    await until(later_round, "rounds of the notice sender")
    return len(seen)


def china_date(moment: dt.datetime) -> str:
    local = moment.astimezone(dt.timezone(dt.timedelta(hours=8)))
    return f"{local.year}年{local.month}月{local.day}日"


def china_time(moment: dt.datetime) -> str:
    return f"{china_date(moment)} {moment.astimezone(dt.timezone(dt.timedelta(hours=8))):%H:%M}"


async def test_a_sign_up_and_its_cancellation_are_each_sent_once(club, wechat, sql):
    token, user_id = await member(club, wechat, sql)
    competition = match(sql, title="2026 秋季联赛第三轮 青竹体育俱乐部 vs 猛龙篮球队")
    play_time = sql("SELECT play_time FROM competitions WHERE id = %s", competition)[0]["play_time"]
    status, body = await call(club, "POST", COMMIT, token, id=competition)
    assert status == 200, body
    (row,) = await settled(sql, "the sign-up notice", kind="signup_confirmed")
    assert (row["state"], row["channel"], row["user_id"], row["attempts"]) == ("sent", "wechat", user_id, 1)
    (message,) = wechat.delivered_to("o-alice")
    assert message.template_id == "TPL_signup_confirmed"
    # A thing is at most 20 characters: the long title is cut with an ellipsis, not refused (47003).
    assert message.data == {"thing1": "2026 秋季联赛第三轮 青竹体育俱乐…", "time2": china_time(play_time),
                            "thing3": "体育中心", "phrase4": "报名成功"}
    assert message.client_msg_id == client_msg_id(row["id"]) and row["msgid"] == str(message.msgid)
    assert row["text"] == (f"alice，你已报名「2026 秋季联赛第三轮 青竹体育俱乐部 vs 猛龙篮球队」，"
                           f"{china_time(play_time)}，体育中心")

    status, body = await call(club, "POST", CANCEL, token, id=competition)
    assert status == 200, body
    (row,) = await settled(sql, "the cancellation notice", kind="signup_cancelled")
    assert row["state"] == "sent"
    assert [m.template_id for m in wechat.delivered_to("o-alice")] == ["TPL_signup_confirmed", "TPL_signup_cancelled"]
    assert wechat.delivered[-1].data["phrase3"] == "已取消"
    # More rounds pass: nothing is sent again.
    calls = wechat.calls[TEMPLATE_PATH]
    await until(lambda: sql("SELECT count(*) AS n FROM notices WHERE state = 'pending'")[0]["n"] == 0, "a quiet outbox")
    assert wechat.calls[TEMPLATE_PATH] == calls == 2


async def test_a_refused_sign_up_sends_nothing(club, wechat, sql):
    token, _ = await member(club, wechat, sql)
    competition = match(sql, hours=-1)
    status, _ = await call(club, "POST", COMMIT, token, id=competition)
    assert status == 400
    assert notices(sql) == []


async def test_a_dev_payment_tells_until_when_the_membership_runs(club, wechat, sql):
    token, user_id = await member(club, wechat, sql)
    sql("UPDATE users SET member_status = 0, member_expire_time = NULL WHERE id = %s", user_id)
    product = add_product(sql)
    order = await commit(club, token, product)
    assert (await call(club, "POST", PRE_ORDER, token, id=order["id"]))[0] == 200
    assert (await call(club, "POST", DEV_COMPLETE, token, id=order["id"]))[0] == 200
    (row,) = await settled(sql, "the payment notice", kind="payment_received")
    assert row["state"] == "sent"
    until_time = sql("SELECT member_expire_time FROM users WHERE id = %s", user_id)[0]["member_expire_time"]
    (message,) = wechat.delivered_to("o-alice")
    assert message.data == {"thing1": "建东体育年度会员", "amount2": "199.00元", "date3": china_date(until_time),
                            "character_string4": order["order_no"]}


async def test_a_console_refund_tells_the_amount_and_the_reason(club, wechat, sms, sql):
    token, user_id = await member(club, wechat, sql)
    product = add_product(sql)
    order = await commit(club, token, product)
    assert (await call(club, "POST", PRE_ORDER, token, id=order["id"]))[0] == 200
    assert (await call(club, "POST", DEV_COMPLETE, token, id=order["id"]))[0] == 200
    add_admin(sql, "boss", "owner")
    assert (await sign_in(club, "boss")).status == 302
    page = await (await club.get(f"/admin/orders/{order['id']}")).text()
    number = page.split('name="out_refund_no" value="', 1)[1].split('"', 1)[0]
    resp = await post_form(club, f"/admin/orders/{order['id']}/refund",
                           {"amount": "50.00", "reason": "伤病，退部分会费", "out_refund_no": number},
                           token_from=f"/admin/orders/{order['id']}")
    assert resp.status == 302
    (row,) = await settled(sql, "the refund notice", kind="refund_made")
    assert (row["state"], row["user_id"]) == ("sent", user_id)
    (message,) = [m for m in wechat.delivered if m.template_id == "TPL_refund_made"]
    assert message.data == {"thing1": "建东体育年度会员", "amount2": "50.00元", "thing3": "伤病，退部分会费",
                            "character_string4": order["order_no"]}
    assert row["text"] == f"已退款50.00元（建东体育年度会员，订单号 {order['order_no']}），原因：伤病，退部分会费"


async def test_reminders_go_once_when_their_time_comes(club, wechat, sql):
    _, alice = await member(club, wechat, sql)
    _, bob = await member(club, wechat, sql, "bob", phone="13900000000")
    later = match(sql, title="决赛", hours=5)
    sql("INSERT INTO competition_applies (competition_id, user_id) VALUES (%s, %s), (%s, %s)", later, alice, later, bob)
    # Not yet: the match starts in 5 hours, reminders go 2 hours before. The clock moves: it starts in 1 hour.
    sql("UPDATE users SET member_expire_time = now() + interval '3 years'")
    rounds = await rounds_pass(club)
    assert rounds >= 2 and notices(sql, kind="match_reminder") == []
    sql("UPDATE competitions SET play_time = now() + interval '1 hour' WHERE id = %s", later)
    rows = await settled(sql, "the match reminders", kind="match_reminder")
    assert sorted((r["user_id"], r["state"]) for r in rows) == [(alice, "sent"), (bob, "sent")]
    assert {m.data["thing1"] for m in wechat.delivered if m.template_id == "TPL_match_reminder"} == {"决赛"}
    # Membership ends in 6 days for alice, today (in 10 minutes) for bob.
    sql("UPDATE users SET member_expire_time = now() + interval '6 days' WHERE id = %s", alice)
    sql("UPDATE users SET member_expire_time = date_trunc('day', now() AT TIME ZONE 'Asia/Shanghai')"
        " AT TIME ZONE 'Asia/Shanghai' + interval '23 hours 59 minutes' WHERE id = %s", bob)
    (expiring,) = await settled(sql, "the 7-day reminder", kind="membership_expiring")
    (last_day,) = await settled(sql, "the last-day reminder", kind="membership_last_day")
    assert (expiring["user_id"], last_day["user_id"]) == (alice, bob)
    by_template = {m.template_id: m for m in wechat.delivered}
    assert by_template["TPL_membership_last_day"].data["phrase3"] == "今日到期"
    # Many rounds later: each reminder was written and sent once.
    sent = len(wechat.delivered)
    for _ in range(3):
        await until(lambda: sql("SELECT count(*) AS n FROM notices WHERE state = 'pending'")[0]["n"] == 0, "rounds")
    assert len(wechat.delivered) == sent == 4
    assert len(notices(sql)) == 4


async def test_a_member_who_does_not_follow_the_account_gets_an_sms(club, wechat, sms, sql):
    token, _ = await member(club, wechat, sql)
    wechat.unfollowed.add("o-alice")
    competition = match(sql, title="周末联赛")
    assert (await call(club, "POST", COMMIT, token, id=competition))[0] == 200
    (row,) = await settled(sql, "the SMS fallback", kind="signup_confirmed")
    assert (row["state"], row["channel"]) == ("sms", "sms")
    assert "43004" in row["error"] and row["biz_id"]
    (text,) = sms.notices_to(PHONE)
    assert text.template_code == "SMS_signup_confirmed"
    assert text.template_param["match"] == "周末联赛" and text.template_param["status"] == "报名成功"
    assert wechat.delivered == []


async def test_aliyun_flow_control_holds_an_sms_until_its_window_passes(club, wechat, sms, sql):
    token, _ = await member(club, wechat, sql)
    wechat.unfollowed.add("o-alice")
    # 50 notices of this template to this number in the last day: Aliyun's notification limit (§4.3).
    sms.sent.extend(SentSms(PHONE, "建东体育", "SMS_signup_confirmed", {}, sms.now()) for _ in range(50))
    assert (await call(club, "POST", COMMIT, token, id=match(sql)))[0] == 200
    await until(lambda: notices(sql) and notices(sql)[0]["error"], "the refused SMS")
    (row,) = notices(sql)
    assert (row["state"], row["channel"]) == ("pending", "sms") and "触发天级流控" in row["error"]
    assert dt.timedelta(hours=23) < row["next_attempt_at"] - row["created_at"] < dt.timedelta(hours=25)
    assert len(sms.sent) == 50
    sms.advance(24 * 3600)   # a day later at Aliyun and here
    sql("UPDATE notices SET next_attempt_at = now()")
    (row,) = await settled(sql, "the SMS sent a day later")
    assert row["state"] == "sms" and len(sms.notices_to(PHONE)) == 51


async def test_unreachable_by_both_is_recorded_not_retried(club, wechat, sms, sql):
    token, _ = await member(club, wechat, sql, phone=None)
    wechat.unfollowed.add("o-alice")
    assert (await call(club, "POST", COMMIT, token, id=match(sql)))[0] == 200
    (row,) = await settled(sql, "the unreachable notice", kind="signup_confirmed")
    assert row["state"] == "unreachable" and "没有绑定手机号" in row["error"] and row["attempts"] == 1
    assert sms.sent == []


async def test_a_permanent_error_is_not_retried(club, wechat, sql):
    token, _ = await member(club, wechat, sql)
    del wechat.templates["TPL_signup_confirmed"]   # deleted in the back office: 40037
    assert (await call(club, "POST", COMMIT, token, id=match(sql)))[0] == 200
    (row,) = await settled(sql, "the failed notice", kind="signup_confirmed")
    assert row["state"] == "failed" and "40037" in row["error"]
    sql("UPDATE notices SET next_attempt_at = now() - interval '1 hour'")
    await until(lambda: sql("SELECT count(*) AS n FROM notices WHERE state IN ('pending', 'sending')")[0]["n"] == 0,
                "rounds")
    assert wechat.calls[TEMPLATE_PATH] == 1


async def test_a_busy_answer_is_retried_later(club, wechat, sql):
    token, _ = await member(club, wechat, sql)
    wechat.fail(TEMPLATE_PATH, -1)
    assert (await call(club, "POST", COMMIT, token, id=match(sql)))[0] == 200
    await until(lambda: notices(sql) and notices(sql)[0]["error"], "the first attempt")
    (row,) = notices(sql)
    assert row["state"] == "pending" and row["attempts"] == 1
    assert dt.timedelta(seconds=10) < row["next_attempt_at"] - row["created_at"] < dt.timedelta(seconds=60)
    sql("UPDATE notices SET next_attempt_at = now()")   # the clock moves past the delay
    (row,) = await settled(sql, "the retried notice")
    assert (row["state"], row["attempts"]) == ("sent", 2)
    assert wechat.calls[TEMPLATE_PATH] == 2 and len(wechat.delivered) == 1


async def test_a_timeout_is_retried_with_the_same_client_msg_id_and_delivered_once(make_client, wechat, sms, sql):
    set_up_templates(sql, wechat, sms)
    club = await make_client(**app_settings(wechat, sms, http_timeout=0.5))
    token, _ = await member(club, wechat, sql)
    wechat.template_delay = 1.0   # WeChat delivers, the answer comes too late
    assert (await call(club, "POST", COMMIT, token, id=match(sql)))[0] == 200
    await until(lambda: notices(sql) and notices(sql)[0]["error"], "the timed-out attempt")
    assert len(wechat.delivered) == 1 and notices(sql)[0]["state"] == "pending"
    wechat.template_delay = 0
    sql("UPDATE notices SET next_attempt_at = now()")
    (row,) = await settled(sql, "the retried notice")
    assert row["state"] == "sent" and row["msgid"] == str(wechat.delivered[0].msgid)
    assert wechat.calls[TEMPLATE_PATH] == 2 and len(wechat.delivered) == 1


async def test_the_daily_quota_holds_notices_until_it_resets(club, wechat, sql):
    token, _ = await member(club, wechat, sql)
    wechat.daily_quota = 0
    assert (await call(club, "POST", COMMIT, token, id=match(sql)))[0] == 200
    await until(lambda: notices(sql) and notices(sql)[0]["error"], "the refused attempt")
    (row,) = notices(sql)
    assert row["state"] == "pending" and row["attempts"] == 0 and "45009" in row["error"]
    china = dt.timezone(dt.timedelta(hours=8))
    tomorrow = (dt.datetime.now(china) + dt.timedelta(days=1)).date()
    assert row["next_attempt_at"].astimezone(china).date() == tomorrow
    assert wechat.calls[TEMPLATE_PATH] == 1


async def test_an_expired_access_token_is_replaced_and_the_notice_sent(club, wechat, sql):
    token, _ = await member(club, wechat, sql)
    competition = match(sql)
    assert (await call(club, "POST", COMMIT, token, id=competition))[0] == 200
    await settled(sql, "the first notice")
    wechat.advance(7200)   # the basic access_token has expired (42001)
    assert (await call(club, "POST", CANCEL, token, id=competition))[0] == 200
    rows = await settled(sql, "the second notice", kind="signup_cancelled")
    assert rows[0]["state"] == "sent" and len(wechat.delivered) == 2


async def test_two_processes_and_a_restart_send_every_notice_exactly_once(make_client, wechat, sms, sql):
    set_up_templates(sql, wechat, sms)
    settings = app_settings(wechat, sms)
    one = await make_client(**settings)
    two = await make_client(**settings)
    await member(one, wechat, sql)
    users = sql("INSERT INTO users (openid, username, member_status, member_expire_time)"
                " SELECT 'o-m' || g, 'm' || g, 1, now() + interval '1 year' FROM generate_series(1, 299) g"
                " RETURNING id")
    assert len(users) == 299
    campaign = sql("INSERT INTO notice_campaigns (audience, title, content)"
                   " VALUES ('active', '通知', '周六训练改到 9 点')"
                   " RETURNING id")[0]["id"]
    wechat.template_delay = 0.005
    sql("INSERT INTO notices (kind, user_id, event_key, data, campaign_id)"
        " SELECT 'staff_notice', id, 'staff_notice:' || %s || ':' || id,"
        " jsonb_build_object('title', '通知', 'content', '周六训练改到 9 点', 'time', now()), %s FROM users",
        campaign, campaign)
    # A restart in the middle: the process sending is stopped once some have gone out, a new one starts.
    await until(lambda: len(wechat.delivered) >= 50, "some notices out")
    await one.close()
    await two.close()
    three = await make_client(**settings)
    # A sender that died in the middle of a call: its notice was delivered, its row is still 'sending'.
    dead = sql("UPDATE notices SET state = 'sending', channel = 'wechat', claim = 'dead', claimed_at = now() - interval"
               " '5 minutes' WHERE id = (SELECT id FROM notices WHERE state = 'sent' ORDER BY id LIMIT 1)"
               " RETURNING id")[0]["id"]
    rows = await settled(sql, "every notice", campaign_id=campaign)
    assert len(rows) == 300 and {r["state"] for r in rows} == {"sent"}
    ids = [m.client_msg_id for m in wechat.delivered]
    assert len(ids) == 300 and len(set(ids)) == 300
    assert sql("SELECT attempts FROM notices WHERE id = %s", dead)[0]["attempts"] == 2
    await three.close()


async def test_without_an_appid_notices_are_written_to_the_log(make_client, sql, caplog):
    client = await make_client(notice_interval=0.1)
    token = await login(client, "dev-alice")
    sql("UPDATE users SET member_status = 1, member_expire_time = now() + interval '1 year', username = 'alice'")
    with caplog.at_level(logging.WARNING, logger="jiandong"):
        assert (await call(client, "POST", COMMIT, token, id=match(sql, title="周末联赛")))[0] == 200
        (row,) = await settled(sql, "the logged notice")
    assert (row["state"], row["channel"]) == ("logged", "log")
    assert any("周末联赛" in r.getMessage() and "not sent" in r.getMessage() for r in caplog.records)


async def test_a_kind_switched_off_writes_no_notice(club, wechat, sql):
    sql("UPDATE notice_kinds SET enabled = false WHERE kind = 'signup_confirmed'")
    token, _ = await member(club, wechat, sql)
    assert (await call(club, "POST", COMMIT, token, id=match(sql)))[0] == 200
    assert notices(sql) == []


def test_every_kind_fits_the_template_rules():
    """Each default mapping is valid and each fixed status is a phrase (≤ 5 Chinese characters)."""
    for kind in KINDS.values():
        mapping = tf.parse_mapping(kind.fields, kind.natures())
        assert set(mapping.values()) <= set(kind.values), kind.name
        for name, value in kind.fixed.items():
            assert tf.is_phrase(value), (kind.name, name, value)
        assert kind.line.format(**{name: "x" for name in kind.values})


@pytest.mark.parametrize(("key", "nature", "value", "expected"), [
    ("thing1", tf.TEXT, "一二三四五六七八九十一二三四五六七八九十一", "一二三四五六七八九十一二三四五六七八九…"),
    ("thing1", tf.TEXT, "line\nbreak", "line break"),
    ("time2", tf.TIME, "2026-12-06T07:05:00+00:00", "2026年12月6日 15:05"),
    ("date3", tf.TIME, "2026-12-06T17:05:00+00:00", "2026年12月7日"),
    ("amount4", tf.MONEY, 19905, "199.05元"),
    ("character_string5", tf.CODE, "JD2026120600001", "JD2026120600001"),
    ("name6", tf.TEXT, "欧阳娜娜娜娜娜娜娜娜娜娜", "欧阳娜娜娜娜娜娜娜…"),
    ("keyword1", tf.TEXT, "x" * 30, "x" * 19 + "…"),
])
def test_values_are_written_inside_their_keys_rule(key, nature, value, expected):
    tz = dt.timezone(dt.timedelta(hours=8))
    assert tf.value_for(key, nature, value, tz) == expected
    rule = fake_wechat.VALUE_RULES[key.rstrip("0123456789")]
    assert rule(expected)


@pytest.mark.parametrize(("text", "message"), [
    ("first=match", "已被微信停用"),
    ("phrase1=match", "不能填"),
    ("time1=match", "不能填"),
    ("thing1=nothing", "没有「nothing」"),
    ("thing1", "应写成"),
    ("thing1=match\nthing1=start", "写了两次"),
    ("color1=match", "不是可用的模板字段"),
])
def test_a_mapping_wechat_would_refuse_is_refused_here(text, message):
    with pytest.raises(tf.FieldError, match=message):
        tf.parse_mapping(text, KINDS["signup_confirmed"].natures())


def test_readme_lists_every_kind_with_its_template_fields():
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    assert templates_markdown() in readme
