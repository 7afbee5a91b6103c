import datetime as dt
import logging
import re
from zoneinfo import ZoneInfo

from tests.helpers.api import login
from tests.helpers.orders import add_product

URL = "/api/v1/member/info"
WECHAT_AVATAR = "https://thirdwx.qlogo.cn/mmopen/vi_32/abc/132"
CLUB_TZ = ZoneInfo("Asia/Shanghai")


async def _user(client, sql, code="player-1"):
    token = await login(client, code)
    user_id = sql("SELECT id FROM users ORDER BY id DESC LIMIT 1")[0]["id"]
    return {"token": token}, user_id


def _player(sql, user_id, **fields):
    values = {"user_id": user_id, "cn_name": "张三", **fields}
    columns = ", ".join(values)
    marks = ", ".join(["%s"] * len(values))
    return sql(f"INSERT INTO players ({columns}) VALUES ({marks}) RETURNING id", *values.values())[0]["id"]


def _years_ago(years, days_later=0):
    """A date `years` before the club's today (+ days_later); `years` a multiple of 4 keeps 29 February valid."""
    day = dt.datetime.now(CLUB_TZ).date() + dt.timedelta(days=days_later)
    return day.replace(year=day.year - years)


async def test_member_info_requires_token(client):
    resp = await client.get(URL)
    assert resp.status == 401
    assert await resp.json() == {"msg": "Token已过期或无效Token", "error_code": 10003, "request_url": URL}


async def test_member_info_without_profile(client, sql):
    headers, _ = await _user(client, sql)
    resp = await client.get(URL, headers=headers)
    assert resp.status == 404
    assert await resp.json() == {"msg": "会员信息不存在或已被禁用", "error_code": 30002, "request_url": URL}


async def test_member_info_of_someone_elses_profile_is_not_mine(client, sql):
    _, other = await _user(client, sql, "someone-else")
    _player(sql, other)
    headers, _ = await _user(client, sql, "me")
    resp = await client.get(URL, headers=headers)
    assert resp.status == 404
    assert (await resp.json())["error_code"] == 30002


async def test_member_info_disabled_profile(client, sql):
    headers, user_id = await _user(client, sql)
    _player(sql, user_id, status=0)
    resp = await client.get(URL, headers=headers)
    assert resp.status == 404
    assert (await resp.json())["error_code"] == 30002


async def test_member_info_full_profile(client, sql):
    headers, user_id = await _user(client, sql)
    birthday = _years_ago(20)
    player = _player(
        sql, user_id, birthday=birthday, birth_addr="上海", mobile="13800000000", sex=1, stature=181, weight=72.5,
        native_place="江苏", nation="汉", photo="/media/p.jpg", individual="后卫", number="7", position="后卫",
        school="复旦", experience="十年", feature="速度快", honor="冠军", comment="好",
    )
    old_team = sql("INSERT INTO teams (name) VALUES ('旧队') RETURNING id")[0]["id"]
    team = sql("INSERT INTO teams (name, logo) VALUES ('建东一队', '/l.png') RETURNING id")[0]["id"]
    sql(
        "INSERT INTO team_members (team_id, player_id, joined_at, left_at)"
        " VALUES (%s, %s, now() - interval '3 years', now() - interval '1 year')",
        old_team, player,
    )
    sql("INSERT INTO team_members (team_id, player_id) VALUES (%s, %s)", team, player)
    sql("UPDATE users SET head_img = %s WHERE id = %s", WECHAT_AVATAR, user_id)

    resp = await client.get(URL, headers=headers)
    assert resp.status == 200
    body = await resp.json()
    assert body == {
        "cn_name": "张三",
        "birthday": birthday.isoformat(),
        "birth_addr": "上海",
        "mobile": "13800000000",
        "age": 20,
        "sex": "男",
        "sex_value": 1,
        "stature": 181,
        "weight": 72.5,
        "native_place": "江苏",
        "nation": "汉",
        "photo": str(client.make_url("/media/p.jpg")),
        "individual": "后卫",
        "team": "建东一队",
        "number": "7",
        "position": "后卫",
        "school": "复旦",
        "experience": "十年",
        "feature": "速度快",
        "honor": "冠军",
        "comment": "好",
        "order_id": "7",
        "head_img": WECHAT_AVATAR,
    }


async def test_member_info_sparse_profile_has_no_nulls(client, sql):
    headers, user_id = await _user(client, sql)
    _player(sql, user_id, sex=2)
    resp = await client.get(URL, headers=headers)
    assert resp.status == 200
    body = await resp.json()
    assert None not in body.values()
    assert body["birthday"] == "" and body["age"] == 0
    assert body["stature"] == "0" and body["weight"] == "0"
    assert body["team"] == "" and body["order_id"] == ""
    assert body["sex"] == "女" and body["sex_value"] == 2
    assert body["cn_name"] == "张三" and body["honor"] == ""


async def test_member_info_age_counts_whole_years_in_club_time_zone(client, sql):
    headers, user_id = await _user(client, sql)
    player = _player(sql, user_id, birthday=_years_ago(28, days_later=1))
    resp = await client.get(URL, headers=headers)
    assert resp.status == 200
    assert (await resp.json())["age"] == 27

    # The birthday itself (in the club's calendar, not UTC's) completes the year.
    sql("UPDATE players SET birthday = %s WHERE id = %s", _years_ago(28), player)
    resp = await client.get(URL, headers=headers)
    assert (await resp.json())["age"] == 28


async def test_member_info_team_is_only_the_current_enabled_team(client, sql):
    headers, user_id = await _user(client, sql)
    player = _player(sql, user_id)
    past = sql("INSERT INTO teams (name) VALUES ('旧队') RETURNING id")[0]["id"]
    sql(
        "INSERT INTO team_members (team_id, player_id, joined_at, left_at)"
        " VALUES (%s, %s, now() - interval '2 years', now() - interval '1 year')",
        past, player,
    )
    resp = await client.get(URL, headers=headers)
    assert (await resp.json())["team"] == ""

    current = sql("INSERT INTO teams (name, status) VALUES ('停用队', 0) RETURNING id")[0]["id"]
    sql("INSERT INTO team_members (team_id, player_id) VALUES (%s, %s)", current, player)
    resp = await client.get(URL, headers=headers)
    assert (await resp.json())["team"] == ""


async def _becomes_a_member(client, sql, caplog, code="newcomer"):
    """A new user as the pages take them: log in, bind a phone by SMS code, buy and pay (dev payment)."""
    caplog.set_level(logging.WARNING, logger="jiandong.integrations.sms")
    token = await login(client, code)
    headers = {"token": token}
    resp = await client.post("/api/v1/user/save", data={"username": "新来的球员", "sex": "1"}, headers=headers)
    assert resp.status == 200
    resp = await client.post("/api/v1/identify/code", data={"phone": "13912345678"}, headers=headers)
    assert resp.status == 200
    sent = [re.fullmatch(r"SMS code for .*: (\d{6})", r.getMessage()) for r in caplog.records]
    (sms_code,) = [m.group(1) for m in sent if m]
    resp = await client.post("/api/v1/user/bind", data={"phone": "13912345678", "code": sms_code}, headers=headers)
    assert resp.status == 200
    product = add_product(sql)
    resp = await client.post("/api/v1/order/commit", data={"business_id": product}, headers=headers)
    order = (await resp.json())["id"]
    assert (await client.post("/api/v1/pay/pre_order", data={"id": order}, headers=headers)).status == 200
    resp = await client.post("/api/v1/pay/dev/complete", data={"id": order}, headers=headers)
    assert resp.status == 200, await resp.json()
    return headers, order


async def test_paying_makes_a_member_with_a_prefilled_card_and_no_team(client, sql, caplog):
    headers, _ = await _becomes_a_member(client, sql, caplog)
    resp = await client.get(URL, headers=headers)
    assert resp.status == 200
    body = await resp.json()
    assert body == {
        "cn_name": "新来的球员", "birthday": "", "birth_addr": "", "mobile": "13912345678", "age": 0, "sex": "男",
        "sex_value": 1, "stature": "0", "weight": "0", "native_place": "", "nation": "", "photo": "",
        "individual": "", "team": "", "number": "", "position": "", "school": "", "experience": "",
        "feature": "", "honor": "", "comment": "", "order_id": "", "head_img": body["head_img"],
    }
    assert body["head_img"].endswith("/media/defaults/avatar.png")
    # The player-data pages show their "暂无数据" tip for exactly this answer.
    for path in ("/api/v1/team/by_user", "/api/v1/competition/by_member"):
        resp = await client.get(path, headers=headers)
        assert resp.status == 404
        assert await resp.json() == {"msg": "当前会员未加入任何球队", "error_code": 30003, "request_url": path}
    assert len(sql("SELECT id FROM players")) == 1

    # Renewing keeps the one card and what the staff wrote on it.
    sql("UPDATE players SET cn_name = '王五', number = '9'")

    product = add_product(sql, title="续费")
    resp = await client.post("/api/v1/order/commit", data={"business_id": product}, headers=headers)
    renewal = (await resp.json())["id"]
    await client.post("/api/v1/pay/pre_order", data={"id": renewal}, headers=headers)
    assert (await client.post("/api/v1/pay/dev/complete", data={"id": renewal}, headers=headers)).status == 200
    assert sql("SELECT cn_name, number FROM players") == [{"cn_name": "王五", "number": "9"}]


async def test_paying_leaves_a_card_the_staff_disabled_disabled(client, sql, caplog):
    _, user_id = await _user(client, sql, "newcomer")
    _player(sql, user_id, status=0)
    headers, _ = await _becomes_a_member(client, sql, caplog, "newcomer")
    assert sql("SELECT user_id, status FROM players") == [{"user_id": user_id, "status": 0}]
    resp = await client.get(URL, headers=headers)
    assert (resp.status, (await resp.json())["error_code"]) == (404, 30002)
    resp = await client.get("/api/v1/team/by_user", headers=headers)
    assert (resp.status, (await resp.json())["error_code"]) == (404, 30002)


async def test_no_card_until_paid(client, sql):
    headers, _ = await _user(client, sql)
    for path in (URL, "/api/v1/team/by_user", "/api/v1/competition/by_member"):
        resp = await client.get(path, headers=headers)
        assert (resp.status, (await resp.json())["error_code"]) == (404, 30002)


async def test_a_new_members_card_reads_unset_values_as_the_player_page_expects(client, sql, caplog):
    """The player page prints 年龄：{{age}}岁 unless age is the number 0, and 身高/体重 unless the value is the
    string "0": a card the staff have not completed answers exactly those, with their types."""
    headers, _ = await _becomes_a_member(client, sql, caplog)
    body = await (await client.get(URL, headers=headers)).json()
    assert type(body["age"]) is int and body["age"] == 0
    assert body["stature"] == "0" and body["weight"] == "0"
    assert body["order_id"] == "" and body["number"] == ""
    # Filled in by the staff: numbers again (integer centimetres, kilograms with one decimal).
    sql("UPDATE players SET birthday = %s, stature = 188, weight = 82.5", _years_ago(24))
    body = await (await client.get(URL, headers=headers)).json()
    assert type(body["age"]) is int and body["age"] == 24
    assert type(body["stature"]) is int and body["stature"] == 188
    assert type(body["weight"]) is float and body["weight"] == 82.5


async def test_order_id_carries_the_jersey_number(client, sql, caplog):
    """The player page prints {{order_id}}号 beside the position: the jersey number, "" for none."""
    headers, _ = await _becomes_a_member(client, sql, caplog)
    body = await (await client.get(URL, headers=headers)).json()
    assert body["order_id"] == "" and body["number"] == ""
    sql("UPDATE players SET number = '23', position = '得分后卫'")
    body = await (await client.get(URL, headers=headers)).json()
    assert body["order_id"] == "23" and body["number"] == "23" and body["position"] == "得分后卫"
