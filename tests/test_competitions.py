import asyncio

import pytest

from jiandong.web.openapi import build_spec
from tests.helpers.api import login

BY_MEMBER = "/api/v1/competition/by_member"
BEGINS = "/api/v1/competition/begins"
COMMIT = "/api/v1/competition/apply/commit"
ALIAS = "/api/v1/competition/apply"
CANCEL = "/api/v1/competition/apply/cancel"


async def _user(client, sql, code="player-1", member_status=None, expires="1 year"):
    """Log in; member_status 1 with `expires` ("-1 day" = expired) makes a member."""
    token = await login(client, code)
    user_id = sql("SELECT id FROM users ORDER BY id DESC LIMIT 1")[0]["id"]
    if member_status is not None:
        sql(
            "UPDATE users SET member_status = %s, member_expire_time = now() + %s::interval WHERE id = %s",
            member_status, expires, user_id,
        )
    return {"token": token}, user_id


def _competition(sql, title="春季赛", play_time="now() + interval '7 days'", status=1, teams=(), **fields):
    values = {"title": title, "main_img_url": f"/img/{title}.jpg", "status": status, **fields}
    columns = ", ".join([*values, "play_time"])
    marks = ", ".join(["%s"] * len(values))
    competition_id = sql(
        f"INSERT INTO competitions ({columns}) VALUES ({marks}, {play_time}) RETURNING id", *values.values()
    )[0]["id"]
    for team_id in teams:
        sql("INSERT INTO competition_teams (competition_id, team_id) VALUES (%s, %s)", competition_id, team_id)
    return competition_id


def _applies(sql, competition_id=None):
    if competition_id is None:
        return sql("SELECT competition_id, user_id FROM competition_applies ORDER BY id")
    return sql("SELECT user_id FROM competition_applies WHERE competition_id = %s", competition_id)


def _apply(sql, competition_id, user_id):
    sql("INSERT INTO competition_applies (competition_id, user_id) VALUES (%s, %s)", competition_id, user_id)


async def _error(resp, status, code, msg=None):
    assert resp.status == status, await resp.text()
    body = await resp.json()
    assert body["error_code"] == code
    if msg is not None:
        assert body["msg"] == msg
    assert body["request_url"] == resp.url.path
    return body


# Token required ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "method, url",
    [
        ("GET", BY_MEMBER), ("GET", "/api/v1/competition/1"), ("GET", BEGINS), ("POST", BEGINS),
        ("POST", COMMIT), ("POST", ALIAS), ("POST", CANCEL),
    ],
)
async def test_token_required(client, method, url):
    resp = await client.request(method, url, data={"id": "1"})
    await _error(resp, 401, 10003, "Token已过期或无效Token")


# 17 detail ----------------------------------------------------------------------------------


async def test_detail(client, sql):
    headers, _ = await _user(client, sql)
    competition = _competition(
        sql, "决赛", "'2024-06-01 19:30:00+08'", summary="简介", description="<p>数据</p>", score="3:2",
        notes="备注", is_hot=1,
    )
    resp = await client.get(f"/api/v1/competition/{competition}", headers=headers)
    assert resp.status == 200
    assert await resp.json() == {
        "id": competition,
        "title": "决赛",
        "summary": "简介",
        "description": "<p>数据</p>",
        "score": "3:2",
        "main_img_url": "/img/决赛.jpg",
        "play_time": "2024-06-01 19:30:00",
        "notes": "备注",
        "is_hot": 1,
    }


async def test_detail_unknown_or_unpublished(client, sql):
    headers, _ = await _user(client, sql)
    draft = _competition(sql, "草稿", status=0)
    for competition_id in (draft, draft + 100, 2**63, 10**30):
        resp = await client.get(f"/api/v1/competition/{competition_id}", headers=headers)
        await _error(resp, 404, 30000, "赛事不存在")


async def test_detail_route_does_not_shadow_named_routes(client, sql):
    headers, _ = await _user(client, sql)
    for name in ("video", "live", "play"):
        resp = await client.get(f"/api/v1/competition/{name}", headers=headers)
        assert (await resp.json()).get("error_code") != 30000


# 7 by_member --------------------------------------------------------------------------------


async def test_by_member_without_profile(client, sql):
    headers, user_id = await _user(client, sql)
    await _error(await client.get(BY_MEMBER, headers=headers), 404, 30002, "会员信息不存在或已被禁用")
    sql("INSERT INTO players (user_id, cn_name, status) VALUES (%s, '张三', 0)", user_id)
    await _error(await client.get(BY_MEMBER, headers=headers), 404, 30002)


async def test_by_member_without_team(client, sql):
    headers, user_id = await _user(client, sql)
    sql("INSERT INTO players (user_id, cn_name) VALUES (%s, '张三')", user_id)
    await _error(await client.get(BY_MEMBER, headers=headers), 404, 30003, "当前会员未加入任何球队")


async def test_by_member_teams_with_their_published_matches(client, sql):
    headers, user_id = await _user(client, sql)
    player = sql("INSERT INTO players (user_id, cn_name) VALUES (%s, '张三') RETURNING id", user_id)[0]["id"]
    old, current, idle = (
        sql("INSERT INTO teams (name, logo) VALUES (%s, %s) RETURNING id", name, f"/{name}.png")[0]["id"]
        for name in ("旧队", "现役队", "空队")
    )
    for team_id, joined, left in ((old, "5 years", "2 years"), (idle, "2 years", "1 year"), (current, "1 year", None)):
        sql(
            "INSERT INTO team_members (team_id, player_id, joined_at, left_at)"
            " VALUES (%s, %s, now() - %s::interval, now() - %s::interval)",
            team_id, player, joined, left,
        )
    derby = _competition(sql, "德比", "'2023-05-01 10:00:00+08'", teams=(old, current))
    final = _competition(sql, "决赛", "'2024-05-01 10:00:00+08'", teams=(current,))
    early = _competition(sql, "早赛", "'2021-05-01 10:00:00+08'", teams=(old,))
    _competition(sql, "草稿", "'2024-06-01 10:00:00+08'", status=0, teams=(current, old))

    resp = await client.get(BY_MEMBER, headers=headers)
    assert resp.status == 200

    def item(competition_id, title, when):
        return {"id": competition_id, "title": title, "main_img_url": f"/img/{title}.jpg", "play_time": when}

    assert await resp.json() == [
        {
            "id": current, "name": "现役队", "logo": "/现役队.png",
            "competitions": [item(final, "决赛", "2024-05-01 10:00:00"), item(derby, "德比", "2023-05-01 10:00:00")],
        },
        {"id": idle, "name": "空队", "logo": "/空队.png", "competitions": []},
        {
            "id": old, "name": "旧队", "logo": "/旧队.png",
            "competitions": [item(derby, "德比", "2023-05-01 10:00:00"), item(early, "早赛", "2021-05-01 10:00:00")],
        },
    ]


# 18 begins ----------------------------------------------------------------------------------


async def test_begins_upcoming_soonest_first_with_apply_status(client, sql):
    headers, user_id = await _user(client, sql)
    _, other = await _user(client, sql, "other")
    later = _competition(sql, "后赛", "now() + interval '10 days'", summary="后")
    sooner = _competition(sql, "先赛", "now() + interval '1 day'", summary="先")
    _competition(sql, "已赛", "now() - interval '1 minute'")
    _competition(sql, "草稿", "now() + interval '2 days'", status=0)
    _apply(sql, later, user_id)
    _apply(sql, sooner, other)
    play_times = {
        r["id"]: r["t"]
        for r in sql("SELECT id, to_char(play_time AT TIME ZONE 'Asia/Shanghai', 'YYYY-MM-DD HH24:MI:SS') t"
                     " FROM competitions")
    }

    resp = await client.get(BEGINS, headers=headers)
    assert resp.status == 200
    assert await resp.json() == {
        "total": 2,
        "per_page": 30,
        "current_page": 1,
        "last_page": 1,
        "data": [
            {"id": sooner, "title": "先赛", "summary": "先", "main_img_url": "/img/先赛.jpg",
             "play_time": play_times[sooner], "apply_status": 0},
            {"id": later, "title": "后赛", "summary": "后", "main_img_url": "/img/后赛.jpg",
             "play_time": play_times[later], "apply_status": 1},
        ],
    }


async def test_begins_paging_by_get_and_post(client, sql):
    headers, _ = await _user(client, sql)
    ids = [_competition(sql, f"赛{i}", f"now() + interval '{i + 1} days'") for i in range(5)]

    resp = await client.get(BEGINS, params={"page": "2", "size": "2"}, headers=headers)
    body = await resp.json()
    assert resp.status == 200
    assert (body["total"], body["per_page"], body["current_page"], body["last_page"]) == (5, 2, 2, 3)
    assert [item["id"] for item in body["data"]] == ids[2:4]

    resp = await client.post(BEGINS, data={"page": "3", "size": "2"}, headers=headers)
    body = await resp.json()
    assert (body["total"], body["current_page"], body["last_page"]) == (5, 3, 3)
    assert [item["id"] for item in body["data"]] == ids[4:]

    # Past the last page: no items, still the real total.
    resp = await client.post(f"{BEGINS}?page=9&size=2", headers=headers)
    body = await resp.json()
    assert (body["total"], body["current_page"], body["last_page"], body["data"]) == (5, 9, 3, [])


async def test_begins_empty(client, sql):
    headers, _ = await _user(client, sql)
    resp = await client.get(BEGINS, headers=headers)
    assert await resp.json() == {"total": 0, "per_page": 30, "current_page": 1, "last_page": 1, "data": []}


async def test_begins_bad_paging(client, sql):
    headers, _ = await _user(client, sql)
    for query in ({"size": "101"}, {"page": "0"}, {"page": "x"}):
        await _error(await client.get(BEGINS, params=query, headers=headers), 400, 99999)


# 19-1 apply ---------------------------------------------------------------------------------


async def test_apply_by_active_member(client, sql):
    headers, user_id = await _user(client, sql, member_status=1)
    competition = _competition(sql)
    resp = await client.post(COMMIT, data={"id": str(competition)}, headers=headers)
    assert resp.status == 200
    assert await resp.json() == {"msg": "success", "error_code": 0, "request_url": COMMIT}
    assert _applies(sql) == [{"competition_id": competition, "user_id": user_id}]

    resp = await client.post(COMMIT, data={"id": str(competition)}, headers=headers)
    await _error(resp, 409, 30007, "重复提交赛事报名")
    assert len(_applies(sql)) == 1

    # And begins now shows it.
    body = await (await client.get(BEGINS, headers=headers)).json()
    assert body["data"][0]["apply_status"] == 1


async def test_apply_alias_and_json_body(client, sql):
    headers, user_id = await _user(client, sql, member_status=1)
    competition = _competition(sql)
    resp = await client.post(ALIAS, json={"id": competition}, headers=headers)
    assert resp.status == 200
    assert await resp.json() == {"msg": "success", "error_code": 0, "request_url": ALIAS}
    assert _applies(sql) == [{"competition_id": competition, "user_id": user_id}]


@pytest.mark.parametrize("url", [COMMIT, ALIAS])
async def test_apply_bad_id(client, sql, url):
    headers, _ = await _user(client, sql, member_status=1)
    for data in ({}, {"id": ""}, {"id": "abc"}, {"id": "0"}, {"id": str(2**63)}):
        await _error(await client.post(url, data=data, headers=headers), 400, 99999)
    assert _applies(sql) == []


async def test_apply_unknown_or_unpublished(client, sql):
    headers, _ = await _user(client, sql, member_status=1)
    draft = _competition(sql, status=0)
    for competition_id in (draft, draft + 1):
        resp = await client.post(COMMIT, data={"id": str(competition_id)}, headers=headers)
        await _error(resp, 404, 30000, "赛事不存在")
    assert _applies(sql) == []


@pytest.mark.parametrize(
    "member_status, expires",
    [(None, "1 year"), (1, "-1 day"), (2, "1 year"), (0, "1 year")],
    ids=["never-member", "expired", "disabled", "none"],
)
async def test_apply_needs_an_active_membership(client, sql, member_status, expires):
    headers, _ = await _user(client, sql, member_status=member_status, expires=expires)
    competition = _competition(sql)
    resp = await client.post(COMMIT, data={"id": str(competition)}, headers=headers)
    await _error(resp, 403, 10001, "仅限有效会员报名")
    assert _applies(sql) == []


async def test_apply_refused_once_started(client, sql):
    headers, _ = await _user(client, sql, member_status=1)
    started = _competition(sql, play_time="now() - interval '1 second'")
    resp = await client.post(COMMIT, data={"id": str(started)}, headers=headers)
    await _error(resp, 400, 10000, "赛事已开始，不能报名")
    assert _applies(sql) == []


@pytest.mark.parametrize("url", [COMMIT, ALIAS])
async def test_apply_check_order(client, sql, url):
    # Unknown match before membership; membership before "started"; "started" before duplicate.
    headers, user_id = await _user(client, sql)
    draft = _competition(sql, "草稿", status=0)
    started = _competition(sql, "已赛", play_time="now() - interval '1 hour'")
    await _error(await client.post(url, data={"id": str(draft)}, headers=headers), 404, 30000)
    await _error(await client.post(url, data={"id": str(started)}, headers=headers), 403, 10001)
    sql("UPDATE users SET member_status = 1, member_expire_time = now() + interval '1 year' WHERE id = %s", user_id)
    _apply(sql, started, user_id)
    await _error(await client.post(url, data={"id": str(started)}, headers=headers), 400, 10000)


async def test_concurrent_applies_give_one_row(client, sql):
    headers, user_id = await _user(client, sql, member_status=1)
    competition = _competition(sql)
    responses = await asyncio.gather(
        client.post(COMMIT, data={"id": str(competition)}, headers=headers),
        client.post(ALIAS, data={"id": str(competition)}, headers=headers),
    )
    assert sorted(r.status for r in responses) == [200, 409]
    codes = sorted([(await r.json())["error_code"] for r in responses])
    assert codes == [0, 30007]
    assert _applies(sql) == [{"competition_id": competition, "user_id": user_id}]


async def test_two_members_apply_to_the_same_match(client, sql):
    first, first_id = await _user(client, sql, "first", member_status=1)
    second, second_id = await _user(client, sql, "second", member_status=1)
    competition = _competition(sql)
    for headers in (first, second):
        assert (await client.post(COMMIT, data={"id": str(competition)}, headers=headers)).status == 200
    assert sorted(r["user_id"] for r in _applies(sql, competition)) == [first_id, second_id]


# 19-2 cancel --------------------------------------------------------------------------------


async def test_cancel_sign_up(client, sql):
    headers, user_id = await _user(client, sql, member_status=1)
    _, other = await _user(client, sql, "other")
    competition = _competition(sql)
    _apply(sql, competition, user_id)
    _apply(sql, competition, other)
    resp = await client.post(CANCEL, data={"id": str(competition)}, headers=headers)
    assert resp.status == 200
    assert await resp.json() == {"msg": "success", "error_code": 0, "request_url": CANCEL}
    assert _applies(sql, competition) == [{"user_id": other}]

    resp = await client.post(CANCEL, data={"id": str(competition)}, headers=headers)
    await _error(resp, 404, 30008, "赛事报名不存在")
    assert _applies(sql, competition) == [{"user_id": other}]


async def test_cancel_allowed_after_membership_lapsed(client, sql):
    headers, user_id = await _user(client, sql, member_status=1, expires="-1 day")
    competition = _competition(sql)
    _apply(sql, competition, user_id)
    assert (await client.post(CANCEL, data={"id": str(competition)}, headers=headers)).status == 200
    assert _applies(sql) == []


async def test_cancel_bad_id_unknown_match(client, sql):
    headers, user_id = await _user(client, sql)
    for data in ({}, {"id": "x"}, {"id": "-1"}):
        await _error(await client.post(CANCEL, data=data, headers=headers), 400, 99999)
    draft = _competition(sql, status=0)
    _apply(sql, draft, user_id)
    for competition_id in (draft, draft + 1):
        await _error(await client.post(CANCEL, data={"id": str(competition_id)}, headers=headers), 404, 30000)
    assert len(_applies(sql)) == 1


async def test_cancel_refused_once_started(client, sql):
    headers, user_id = await _user(client, sql)
    started = _competition(sql, play_time="now() - interval '1 second'")
    _apply(sql, started, user_id)
    resp = await client.post(CANCEL, data={"id": str(started)}, headers=headers)
    await _error(resp, 400, 10000, "赛事已开始，不能取消报名")
    assert _applies(sql) == [{"competition_id": started, "user_id": user_id}]


# Documentation ------------------------------------------------------------------------------


async def test_endpoints_are_documented(client):
    paths = build_spec(client.app)["paths"]
    # 10000 and 99999 on every operation: another method (405) and a body over the limit (413).
    expected = {
        ("/api/v1/member/info", "get"): {10000, 10003, 30002, 99999},
        ("/api/v1/competition/by_member", "get"): {10000, 10003, 30002, 30003, 99999},
        ("/api/v1/competition/{id}", "get"): {10000, 10003, 30000, 99999},
        ("/api/v1/competition/begins", "get"): {10000, 10003, 99999},
        ("/api/v1/competition/begins", "post"): {10000, 10003, 99999},
        ("/api/v1/competition/apply/commit", "post"): {10000, 10001, 10003, 30000, 30007, 99999},
        ("/api/v1/competition/apply", "post"): {10000, 10001, 10003, 30000, 30007, 99999},
        ("/api/v1/competition/apply/cancel", "post"): {10000, 10003, 30000, 30008, 99999},
        ("/api/v1/team/by_user", "get"): {10000, 10003, 30002, 30003, 99999},
        ("/api/v1/team/{id}/competitions", "get"): {10000, 10003, 30001, 30006, 99999},
    }
    for (path, method), codes in expected.items():
        operation = paths[path][method]
        assert set(operation["x-error-codes"]) == codes, path
        assert operation["responses"]["200"]["content"]["application/json"]["schema"]["type"] in ("object", "array")
