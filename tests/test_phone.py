"""Endpoints 4 (identify/code) and 5 (user/bind), with the console provider and the fake Dysmsapi."""

import asyncio
import datetime as dt
import logging
import re

import pytest

from jiandong.store.kv import tagged
from jiandong.web.openapi import build_spec
from tests.fakes.aliyun import FakeDysmsapi, SentSms
from tests.fakes.wechat import FakeWeChat, settings_for
from tests.fakes.wechat import serve as serve_wechat
from tests.helpers.api import login

PHONE = "13800138000"
CODE_URL = "/api/v1/identify/code"
BIND_URL = "/api/v1/user/bind"


@pytest.fixture
def fake():
    return FakeDysmsapi()


@pytest.fixture
def aliyun_client(make_client, aiohttp_server, fake):
    """`await aliyun_client(**overrides)`: the app with the Aliyun provider pointed at the fake."""

    async def make(**overrides):
        server = await aiohttp_server(fake.app())
        settings = {
            "sms_provider": "aliyun",
            "aliyun_access_key_id": fake.access_key_id,
            "aliyun_access_key_secret": fake.access_key_secret,
            "sms_sign_name": "建东体育",
            "sms_template_code": "SMS_123456789",
            "aliyun_sms_url": str(server.make_url("/")),
        }
        return await make_client(**{**settings, **overrides})

    return make


def time_passes(fake, redis_sync, settings, seconds=61):
    """Time passes at Aliyun and here: past a minute, our resend locks (a 60 s TTL) are gone too."""
    fake.advance(seconds)
    if seconds >= 60:
        for lock in redis_sync.scan_iter(match=f"{settings.redis_prefix}sms:lock:*"):
            redis_sync.delete(lock)


def ok_body(url):
    return {"msg": "success", "error_code": 0, "request_url": url}


def sms_keys(redis_sync, settings):
    """The codes and locks (`sms:...`), and the daily counters (`{sms:day:<date>}:...`)."""
    return sorted([*redis_sync.scan_iter(match=settings.redis_prefix + "sms:*"),
                   *redis_sync.scan_iter(match=settings.redis_prefix + "{sms:*")])


async def ask_code(client, token, phone=PHONE, **headers):
    return await client.post(CODE_URL, data={"phone": phone}, headers={"token": token, **headers})


async def bind(client, token, code, phone=PHONE):
    return await client.post(BIND_URL, data={"phone": phone, "code": code}, headers={"token": token})


async def assert_error(resp, status, error_code, url, msg=None):
    """The error answer (status, code, URL, and the message when given: the pages show it)."""
    body = await resp.json()
    assert resp.status == status, body
    assert body["error_code"] == error_code and body["request_url"] == url and body["msg"]
    assert msg is None or body["msg"] == msg, body
    return body


async def test_console_code_then_bind(client, sql, redis_sync, settings, caplog):
    caplog.set_level(logging.WARNING, logger="jiandong.integrations.sms")
    token = await login(client, "alice")
    resp = await ask_code(client, token, "+86 138-0013-8000")
    (line,) = [r.getMessage() for r in caplog.records if r.getMessage().startswith("SMS code for")]
    match = re.fullmatch(r"SMS code for 138\*\*\*\*8000: (\d{6})", line)
    assert match, line
    # Development logins and codes in the log: the answer carries the code too (the README's walk-through).
    assert resp.status == 200 and await resp.json() == {**ok_body(CODE_URL), "dev_code": match.group(1)}
    (user_id,) = [r["id"] for r in sql("SELECT id FROM users")]
    prefix = settings.redis_prefix
    code_key = f"{prefix}sms:code:{PHONE}:{user_id}"
    assert 0 < redis_sync.ttl(code_key) <= 300
    assert redis_sync.hget(code_key, "attempts") == "0"
    # The code itself is not kept in Redis, only its digest.
    assert match.group(1) not in str(redis_sync.hgetall(code_key))
    assert 0 < redis_sync.ttl(f"{prefix}sms:lock:{PHONE}") <= 60
    day_keys = [k for k in sms_keys(redis_sync, settings) if ":day:" in k]
    assert sorted(redis_sync.get(k) for k in day_keys) == ["1", "1"]

    resp = await bind(client, token, match.group(1), "8613800138000")
    assert resp.status == 200 and await resp.json() == ok_body(BIND_URL)
    assert sql("SELECT mobile FROM users") == [{"mobile": PHONE}]
    assert not redis_sync.exists(code_key)
    resp = await client.get("/api/v1/user/info", headers={"token": token})
    assert (await resp.json())["mobile"] == PHONE
    # Used once: the same code again finds nothing.
    await assert_error(await bind(client, token, match.group(1)), 404, 10009, BIND_URL)


async def test_aliyun_code_then_bind(aliyun_client, fake, sql):
    client = await aliyun_client()
    token = await login(client, "alice")
    resp = await ask_code(client, token, "0086 13800138000")
    assert resp.status == 200 and await resp.json() == ok_body(CODE_URL)
    (sms,) = fake.sent
    assert (sms.phone, sms.sign_name, sms.template_code) == (PHONE, "建东体育", "SMS_123456789")
    assert re.fullmatch(r"\d{6}", sms.code)
    assert fake.requests[0]["TemplateParam"] == '{"code":"%s"}' % sms.code
    resp = await bind(client, token, sms.code)
    assert resp.status == 200 and await resp.json() == ok_body(BIND_URL)
    resp = await client.get("/api/v1/user/info", headers={"token": token})
    assert resp.status == 200 and (await resp.json())["mobile"] == PHONE
    assert sql("SELECT mobile FROM users") == [{"mobile": PHONE}]


async def test_no_code_in_the_answer_once_logins_are_real_wechat(make_client, aiohttp_server, sql):
    wechat = await serve_wechat(aiohttp_server, FakeWeChat())
    client = await make_client(**settings_for(wechat))
    wechat.add_code("c1", "o-alice")
    token = await login(client, "c1")
    resp = await ask_code(client, token)
    assert resp.status == 200 and await resp.json() == ok_body(CODE_URL)


async def test_endpoints_need_a_token(client):
    await assert_error(await client.post(CODE_URL, data={"phone": PHONE}), 401, 10003, CODE_URL)
    await assert_error(await client.post(BIND_URL, data={"phone": PHONE, "code": "123456"}), 401, 10003, BIND_URL)


@pytest.mark.parametrize(
    "phone",
    ["", "12345", "12800138000", "23800138000", "138001380001", "1380013800", "1380013800０", "+1 13800138000",
     "abcdefghijk", "138 0013 800a", "+8612800138000"],
)
async def test_code_bad_phone(aliyun_client, fake, redis_sync, settings, phone):
    client = await aliyun_client()
    token = await login(client)
    msg = "参数错误: 手机号码格式不正确" if phone else None
    await assert_error(await ask_code(client, token, phone), 400, 99999, CODE_URL, msg)
    assert fake.requests == [] and sms_keys(redis_sync, settings) == []


async def test_code_missing_phone(client, redis_sync, settings):
    token = await login(client)
    resp = await client.post(CODE_URL, headers={"token": token})
    await assert_error(resp, 400, 99999, CODE_URL)
    assert sms_keys(redis_sync, settings) == []


@pytest.mark.parametrize(
    "data",
    [{"phone": PHONE}, {"phone": PHONE, "code": "12345"}, {"phone": PHONE, "code": "1234567"},
     {"phone": PHONE, "code": "12345a"}, {"phone": PHONE, "code": "１２３４５６"}, {"code": "123456"},
     {"phone": "1380013800", "code": "123456"}],
)
async def test_bind_bad_format(client, sql, data):
    token = await login(client)
    resp = await client.post(BIND_URL, data=data, headers={"token": token})
    # A code of up to 6 characters (longer ones are refused for their length) that is not 6 digits.
    bad_code = data.get("phone") == PHONE and 0 < len(data.get("code", "")) <= 6
    await assert_error(resp, 400, 99999, BIND_URL, "参数错误: 验证码必须是6位数字" if bad_code else None)
    assert sql("SELECT mobile FROM users") == [{"mobile": None}]


@pytest.mark.parametrize(
    ("switch", "value", "reason"),
    [
        ("fail_code", "isv.MOBILE_NUMBER_ILLEGAL", "isv.MOBILE_NUMBER_ILLEGAL"),
        ("fail_code", "isv.AMOUNT_NOT_ENOUGH", "isv.AMOUNT_NOT_ENOUGH"),
        ("http_status", 500, "HTTP500"),
        ("delay", 1.0, "Timeout"),
    ],
)
async def test_provider_failure_stores_nothing(aliyun_client, fake, redis_sync, settings, switch, value, reason):
    client = await aliyun_client(http_timeout=0.3)
    token = await login(client)
    setattr(fake, switch, value)
    body = await assert_error(await ask_code(client, token), 502, 70000, CODE_URL)
    assert body["msg"] == f"发送短信失败: {reason}"
    # No code, no resend lock, no daily count: the user may ask again at once.
    assert sms_keys(redis_sync, settings) == []
    setattr(fake, switch, FakeDysmsapi().__dict__[switch])
    resp = await ask_code(client, token)
    assert resp.status == 200, await resp.text()
    assert fake.codes_for(PHONE)
    day_keys = [k for k in sms_keys(redis_sync, settings) if ":day:" in k]
    assert sorted(redis_sync.get(k) for k in day_keys) == ["1", "1"]


async def test_wrong_aliyun_secret_is_70000(aliyun_client, fake, redis_sync, settings):
    client = await aliyun_client(aliyun_access_key_secret="not-the-secret")
    token = await login(client)
    body = await assert_error(await ask_code(client, token), 502, 70000, CODE_URL)
    assert body["msg"] == "发送短信失败: SignatureDoesNotMatch"
    assert fake.sent == [] and sms_keys(redis_sync, settings) == []


async def test_phone_of_another_user_is_refused_at_bind_after_its_code(aliyun_client, fake, sql, redis_sync, settings):
    client = await aliyun_client()
    owner = await login(client, "owner")
    sql("UPDATE users SET mobile = %s", PHONE)
    other = await login(client, "other")
    # Answered like any number (whose it is is not told before the code is verified), and counted.
    resp = await ask_code(client, other)
    assert resp.status == 200 and await resp.json() == ok_body(CODE_URL)
    assert [sms.phone for sms in fake.sent] == [PHONE] and sms_keys(redis_sync, settings)
    # The code proves the number; then it is refused as another account's (10006), and used up.
    code = fake.sent[-1].code
    await assert_error(await bind(client, other, code), 409, 10006, BIND_URL, "手机号码已被其他人使用")
    await assert_error(await bind(client, other, code), 404, 10009, BIND_URL)
    assert sql("SELECT username, mobile FROM users ORDER BY id") == [
        {"username": "dev-owner", "mobile": PHONE}, {"username": "dev-other", "mobile": None}]
    # The owner may still ask for a code for the own number.
    time_passes(fake, redis_sync, settings)
    assert (await ask_code(client, owner)).status == 200


async def test_bind_without_code(client, sql):
    token = await login(client)
    await assert_error(await bind(client, token, "123456"), 404, 10009, BIND_URL,
                       "手机验证码不存在或已失效，请重新获取")
    assert sql("SELECT mobile FROM users") == [{"mobile": None}]


async def test_code_for_another_phone_does_not_bind(aliyun_client, fake, sql):
    client = await aliyun_client()
    token = await login(client)
    assert (await ask_code(client, token)).status == 200
    await assert_error(await bind(client, token, fake.sent[0].code, "13900139000"), 404, 10009, BIND_URL)
    assert sql("SELECT mobile FROM users") == [{"mobile": None}]


async def test_five_wrong_codes_burn_it(aliyun_client, fake, sql, redis_sync, settings):
    client = await aliyun_client()
    token = await login(client)
    assert (await ask_code(client, token)).status == 200
    right = fake.sent[0].code
    wrong = f"{(int(right) + 1) % 1_000_000:06d}"
    (code_key,) = [k for k in sms_keys(redis_sync, settings) if ":code:" in k]
    for attempt in range(1, 5):
        await assert_error(await bind(client, token, wrong), 400, 10007, BIND_URL)
        assert redis_sync.hget(code_key, "attempts") == str(attempt)
    await assert_error(await bind(client, token, wrong), 400, 10007, BIND_URL, "验证码错误次数过多，已失效，请重新获取")
    assert not redis_sync.exists(code_key)
    await assert_error(await bind(client, token, right), 404, 10009, BIND_URL)
    assert sql("SELECT mobile FROM users") == [{"mobile": None}]


async def test_fourth_wrong_then_right_binds(aliyun_client, fake, sql):
    client = await aliyun_client()
    token = await login(client)
    assert (await ask_code(client, token)).status == 200
    right = fake.sent[0].code
    wrong = f"{(int(right) + 1) % 1_000_000:06d}"
    for _ in range(4):
        await assert_error(await bind(client, token, wrong), 400, 10007, BIND_URL)
    assert (await bind(client, token, right)).status == 200
    assert sql("SELECT mobile FROM users") == [{"mobile": PHONE}]


async def test_code_of_user_a_is_useless_to_user_b(aliyun_client, fake, sql):
    client = await aliyun_client()
    alice = await login(client, "alice")
    bob = await login(client, "bob")
    assert (await ask_code(client, alice)).status == 200
    code = fake.sent[0].code
    await assert_error(await bind(client, bob, code), 404, 10009, BIND_URL)
    assert sql("SELECT mobile FROM users WHERE mobile IS NOT NULL") == []
    # Bob's try did not spend Alice's code.
    assert (await bind(client, alice, code)).status == 200
    assert sql("SELECT username FROM users WHERE mobile = %s", PHONE) == [{"username": "dev-alice"}]


async def test_ten_concurrent_requests_send_one_sms(aliyun_client, fake):
    client = await aliyun_client()
    token = await login(client)
    responses = await asyncio.gather(*(ask_code(client, token) for _ in range(10)))
    statuses = sorted(r.status for r in responses)
    assert statuses == [200] + [429] * 9
    for resp in responses:
        if resp.status == 429:
            await assert_error(resp, 429, 10010, CODE_URL)
    assert len(fake.sent) == 1 and len(fake.requests) == 1


async def test_resend_within_a_minute_is_throttled(client, redis_sync, settings):
    token = await login(client)
    assert (await ask_code(client, token)).status == 200
    body = await assert_error(await ask_code(client, token, "+8613800138000"), 429, 10010, CODE_URL)
    assert "60秒" in body["msg"]
    day_keys = [k for k in sms_keys(redis_sync, settings) if ":day:" in k]
    assert sorted(redis_sync.get(k) for k in day_keys) == ["1", "1"]


async def test_daily_cap_per_phone(aliyun_client, fake, redis_sync, settings):
    client = await aliyun_client(sms_phone_daily_limit=2)
    token = await login(client)
    lock = f"{settings.redis_prefix}sms:lock:{PHONE}"
    for _ in range(2):
        assert (await ask_code(client, token)).status == 200
        time_passes(fake, redis_sync, settings)
    await assert_error(await ask_code(client, token), 429, 10010, CODE_URL,
                       "该手机号码今日获取验证码次数已达上限，请明天再试")
    assert len(fake.sent) == 2 and not redis_sync.exists(lock)
    # Another number from the same client is still fine.
    assert (await ask_code(client, token, "13900139000")).status == 200


@pytest.mark.parametrize("counter", ["phone", "ip"])
async def test_daily_caps_count_the_clubs_calendar_day(aliyun_client, fake, redis_sync, settings, counter):
    client = await aliyun_client(sms_phone_daily_limit=3, sms_ip_daily_limit=3)
    token = await login(client)
    today = dt.datetime.now(settings.tz).strftime("%Y%m%d")
    yesterday = (dt.datetime.now(settings.tz) - dt.timedelta(days=1)).strftime("%Y%m%d")
    who = PHONE if counter == "phone" else "127.0.0.1"
    # Full yesterday: no matter today.
    redis_sync.set(tagged(settings, ("sms", "day", yesterday), counter, who), 3)
    assert (await ask_code(client, token)).status == 200
    assert redis_sync.get(tagged(settings, ("sms", "day", today), counter, who)) == "1"
    # Full today (two more sent elsewhere): refused.
    redis_sync.incrby(tagged(settings, ("sms", "day", today), counter, who), 2)
    time_passes(fake, redis_sync, settings)
    body = await assert_error(await ask_code(client, token), 429, 10010, CODE_URL)
    assert body["msg"].endswith("今日获取验证码次数已达上限，请明天再试") and len(fake.sent) == 1


@pytest.mark.single_redis("the counters of versions before the hash tags exist only on a single Redis")
@pytest.mark.parametrize("counter", ["phone", "ip"])
async def test_the_days_counts_kept_by_an_earlier_version_still_count(aliyun_client, fake, redis_sync, settings,
                                                                        counter):
    """Versions before the hash tags counted the day's sends under `<prefix>sms:day:<date>:<counter>:<who>`: an
    upgrade in the middle of the day carries those counts over, so the cap is not granted twice."""
    client = await aliyun_client(sms_phone_daily_limit=3, sms_ip_daily_limit=3)
    token = await login(client)
    today = dt.datetime.now(settings.tz).strftime("%Y%m%d")
    who = PHONE if counter == "phone" else "127.0.0.1"
    earlier = f"{settings.redis_prefix}sms:day:{today}:{counter}:{who}"
    redis_sync.set(earlier, 2, ex=86400)
    assert (await ask_code(client, token)).status == 200
    assert redis_sync.get(tagged(settings, ("sms", "day", today), counter, who)) == "3"
    assert not redis_sync.exists(earlier)
    # An earlier version's process still counting during the upgrade: that count is carried too.
    redis_sync.set(earlier, 1, ex=86400)
    time_passes(fake, redis_sync, settings)
    body = await assert_error(await ask_code(client, token), 429, 10010, CODE_URL)
    assert body["msg"].endswith("今日获取验证码次数已达上限，请明天再试") and len(fake.sent) == 1
    assert redis_sync.get(tagged(settings, ("sms", "day", today), counter, who)) == "4"
    assert redis_sync.ttl(tagged(settings, ("sms", "day", today), counter, who)) > 86400


async def test_daily_cap_per_ip(aliyun_client, fake):
    client = await aliyun_client(sms_ip_daily_limit=2, trust_proxy=True)
    token = await login(client)
    via = {"X-Forwarded-For": "203.0.113.7, 10.0.0.1"}
    assert (await ask_code(client, token, "13800138001", **via)).status == 200
    assert (await ask_code(client, token, "13800138002", **via)).status == 200
    await assert_error(await ask_code(client, token, "13800138003", **via), 429, 10010, CODE_URL,
                       "当前网络今日获取验证码次数已达上限，请明天再试")
    assert [s.phone for s in fake.sent] == ["13800138001", "13800138002"]
    # The refused number was not locked or counted: it works from another address.
    other = {"X-Forwarded-For": "198.51.100.9"}
    assert (await ask_code(client, token, "13800138003", **other)).status == 200
    assert len(fake.sent) == 3


async def test_without_trust_proxy_the_daily_cap_per_ip_ignores_forwarded_for(aliyun_client, fake):
    client = await aliyun_client(sms_ip_daily_limit=2)
    token = await login(client)
    statuses = []
    for i in range(1, 5):
        # No proxy in front: the header is the client's own invention, whatever it says.
        resp = await ask_code(client, token, f"1380013800{i}", **{"X-Forwarded-For": f"198.51.100.{i}"})
        statuses.append(resp.status)
    assert statuses == [200, 200, 429, 429]
    assert len(fake.sent) == 2


async def test_daily_cap_per_ip_cannot_be_dodged_with_a_forged_forwarded_for(aliyun_client, fake):
    client = await aliyun_client(sms_ip_daily_limit=3, trust_proxy=True)
    token = await login(client)
    statuses = []
    for i in range(1, 7):
        # The client writes the left part; the proxy (the loopback peer) appends the real address.
        resp = await ask_code(client, token, f"1380013800{i}", **{"X-Forwarded-For": f"10.0.0.{i}, 198.51.100.7"})
        statuses.append(resp.status)
    assert statuses == [200, 200, 200, 429, 429, 429]
    assert len(fake.sent) == 3


# -- Aliyun's own limits (reference §4.3), on the fake's clock ------------------------------------

async def ask_later(client, token, fake, redis_sync, settings, seconds):
    """Ask again once our resend lock ran out and `seconds` passed at Aliyun (whose clock may lag ours)."""
    time_passes(fake, redis_sync, settings, 60)
    fake.advance(seconds - 60)
    return await ask_code(client, token)


@pytest.mark.parametrize(
    ("count", "gap", "wait", "msg"),
    [
        # Our minute ran out a little before Aliyun's: its minute level refuses.
        (1, 50, 11, "该手机号码获取验证码过于频繁，请稍后再试"),
        # Five codes an hour at most, a minute apart each: the sixth is refused by the hour level.
        (5, 61, 3600, "该手机号码获取验证码过于频繁，请稍后再试"),
        # Ten in a rolling day (a club that raised its own daily limit above Aliyun's).
        (10, 721, 86400, "该手机号码今日获取验证码次数已达上限，请明天再试"),
    ],
    ids=["minute", "hour", "day"],
)
async def test_aliyun_flow_control_is_10010_and_costs_no_count(
    aliyun_client, fake, redis_sync, settings, count, gap, wait, msg
):
    client = await aliyun_client(sms_phone_daily_limit=20)
    token = await login(client)
    assert (await ask_code(client, token)).status == 200
    for _ in range(count - 1):
        assert (await ask_later(client, token, fake, redis_sync, settings, gap)).status == 200
    body = await assert_error(await ask_later(client, token, fake, redis_sync, settings, gap), 429, 10010, CODE_URL)
    assert body["msg"] == msg
    assert len(fake.sent) == count and fake.requests[-1]["PhoneNumbers"] == PHONE
    # Nothing was sent: no new code, and neither our resend lock nor our daily counts keep it.
    assert not redis_sync.exists(f"{settings.redis_prefix}sms:lock:{PHONE}")
    day_keys = [k for k in sms_keys(redis_sync, settings) if ":day:" in k]
    assert sorted(redis_sync.get(k) for k in day_keys) == [str(count)] * 2
    # Once Aliyun's window has passed, the same request goes through.
    assert (await ask_later(client, token, fake, redis_sync, settings, wait)).status == 200
    assert len(fake.sent) == count + 1


async def test_aliyun_platform_limit_per_phone_is_10010(aliyun_client, fake, redis_sync, settings):
    # Forty codes from other senders on the platform today: Aliyun refuses a forty-first to the phone.
    fake.sent = [SentSms(PHONE, f"其他签名{i}", "SMS_1", {"code": "000000"}, fake.now()) for i in range(40)]
    client = await aliyun_client()
    token = await login(client)
    body = await assert_error(await ask_code(client, token), 429, 10010, CODE_URL)
    assert body["msg"] == "该手机号码今日获取验证码次数已达上限，请明天再试"
    assert len(fake.sent) == 40 and sms_keys(redis_sync, settings) == []
    # Another number is not concerned.
    assert (await ask_code(client, token, "13900139000")).status == 200


async def test_aliyun_refusing_our_timestamp_is_70000(aliyun_client, fake, redis_sync, settings):
    # Our clock 20 minutes behind Aliyun's: the gateway refuses the request as expired.
    fake.skew = dt.timedelta(minutes=20)
    client = await aliyun_client()
    token = await login(client)
    body = await assert_error(await ask_code(client, token), 502, 70000, CODE_URL)
    assert body["msg"] == "发送短信失败: InvalidTimeStamp.Expired"
    assert fake.sent == [] and sms_keys(redis_sync, settings) == []
    fake.skew = dt.timedelta(minutes=14)
    assert (await ask_code(client, token)).status == 200


async def test_second_user_binding_the_same_phone_gets_10006(aliyun_client, fake, sql, redis_sync, settings):
    client = await aliyun_client()
    alice = await login(client, "alice")
    bob = await login(client, "bob")
    assert (await ask_code(client, alice)).status == 200
    time_passes(fake, redis_sync, settings)
    assert (await ask_code(client, bob)).status == 200
    alice_code, bob_code = fake.codes_for(PHONE)
    assert (await bind(client, alice, alice_code)).status == 200
    await assert_error(await bind(client, bob, bob_code), 409, 10006, BIND_URL)
    assert sql("SELECT username, mobile FROM users ORDER BY id") == [
        {"username": "dev-alice", "mobile": PHONE},
        {"username": "dev-bob", "mobile": None},
    ]


async def test_two_users_binding_at_once_one_wins(aliyun_client, fake, sql, redis_sync, settings):
    client = await aliyun_client()
    alice = await login(client, "alice")
    bob = await login(client, "bob")
    assert (await ask_code(client, alice)).status == 200
    time_passes(fake, redis_sync, settings)
    assert (await ask_code(client, bob)).status == 200
    alice_code, bob_code = fake.codes_for(PHONE)
    responses = await asyncio.gather(bind(client, alice, alice_code), bind(client, bob, bob_code))
    assert sorted(r.status for r in responses) == [200, 409]
    loser = next(r for r in responses if r.status == 409)
    await assert_error(loser, 409, 10006, BIND_URL)
    assert len(sql("SELECT id FROM users WHERE mobile = %s", PHONE)) == 1


async def test_binding_own_phone_again_and_changing_it(aliyun_client, fake, sql, redis_sync, settings):
    client = await aliyun_client()
    token = await login(client)
    assert (await ask_code(client, token)).status == 200
    assert (await bind(client, token, fake.sent[-1].code)).status == 200
    time_passes(fake, redis_sync, settings)
    assert (await ask_code(client, token)).status == 200
    assert (await bind(client, token, fake.sent[-1].code)).status == 200
    assert sql("SELECT mobile FROM users") == [{"mobile": PHONE}]
    assert (await ask_code(client, token, "13900139000")).status == 200
    assert (await bind(client, token, fake.sent[-1].code, "13900139000")).status == 200
    assert sql("SELECT mobile FROM users") == [{"mobile": "13900139000"}]


async def test_openapi_lists_both_endpoints(client):
    paths = build_spec(client.app)["paths"]
    assert paths["/api/v1/identify/code"]["post"]["x-error-codes"] == [10000, 10003, 10010, 70000, 99999]
    assert paths["/api/v1/user/bind"]["post"]["x-error-codes"] == [10000, 10003, 10004, 10006, 10007, 10009, 99999]


async def test_disabled_user_cannot_bind(aliyun_client, fake, sql):
    client = await aliyun_client()
    token = await login(client)
    assert (await ask_code(client, token)).status == 200
    sql("UPDATE users SET is_disabled = true")
    await assert_error(await bind(client, token, fake.sent[-1].code), 404, 10004, BIND_URL)
    assert sql("SELECT mobile FROM users") == [{"mobile": None}]
