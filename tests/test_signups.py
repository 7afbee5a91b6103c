"""Sign-ups per match: capacity and deadline through both apply routes, the last place under concurrency, the
console's sheet (list, staff additions and removals with a reason, attendance, CSV / XLSX exports), the
member page's season, and who may do what."""

from __future__ import annotations

import asyncio

from jiandong.integrations.wechat import dev_openid
from jiandong.web.openapi import build_spec
from tests.helpers.admin import add_admin, post_form, sign_in
from tests.helpers.api import login

COMMIT = "/api/v1/competition/apply/commit"
ALIAS = "/api/v1/competition/apply"
CANCEL = "/api/v1/competition/apply/cancel"
BEGINS = "/api/v1/competition/begins"


async def member(client, sql, code: str, name: str | None = None, phone: str | None = None) -> tuple[dict, int]:
    """A logged-in user with an active membership: (token header, user id)."""
    token = await login(client, code)
    user_id = sql("SELECT id FROM users WHERE openid = %s", dev_openid(code))[0]["id"]
    sql("UPDATE users SET member_status = 1, member_expire_time = now() + interval '1 year', username = %s,"
        " mobile = %s WHERE id = %s", name or code, phone, user_id)
    return {"token": token}, user_id


def user(sql, name: str, phone: str | None = None, active: bool = True) -> int:
    return sql("INSERT INTO users (openid, username, mobile, member_status, member_expire_time)"
               " VALUES (%s, %s, %s, %s, now() + interval '1 year') RETURNING id",
               f"o-{name}", name, phone, 1 if active else 0)[0]["id"]


def match(sql, title: str = "周末联赛", play_time: str = "now() + interval '7 days'", capacity: int | None = None,
          deadline: str = "NULL") -> int:
    return sql(f"INSERT INTO competitions (title, play_time, capacity, apply_deadline, status)"
               f" VALUES (%s, {play_time}, %s, {deadline}, 1) RETURNING id", title, capacity)[0]["id"]


def sign_up(sql, competition_id: int, user_id: int, when: str = "now()") -> int:
    return sql(f"INSERT INTO competition_applies (competition_id, user_id, created_at) VALUES (%s, %s, {when})"
               " RETURNING id", competition_id, user_id)[0]["id"]


def sheet_rows(sql, competition_id: int) -> list[dict]:
    return sql("SELECT user_id, attended, added_by, note FROM competition_applies WHERE competition_id = %s"
               " ORDER BY id", competition_id)


async def refused(resp, msg: str, url: str) -> None:
    assert resp.status == 400, await resp.text()
    assert await resp.json() == {"msg": msg, "error_code": 10000, "request_url": url}


async def console(make_client, sql, role: str = "editor"):
    client = await make_client()
    add_admin(sql, "boss", role)
    assert (await sign_in(client, "boss")).status == 302
    return client


# -- the H5 API ---------------------------------------------------------------------------------------------


async def test_a_full_match_refuses_through_both_routes(client, sql):
    competition = match(sql, capacity=2)
    for n, url in enumerate((COMMIT, ALIAS)):
        headers, _ = await member(client, sql, f"early-{n}")
        assert (await client.post(url, data={"id": str(competition)}, headers=headers)).status == 200
    for url in (COMMIT, ALIAS):
        headers, late = await member(client, sql, f"late-{url}")
        await refused(await client.post(url, data={"id": str(competition)}, headers=headers), "报名人数已满", url)
        assert late not in [r["user_id"] for r in sheet_rows(sql, competition)]
    assert len(sheet_rows(sql, competition)) == 2


async def test_the_deadline_refuses_through_both_routes_and_cancel_stays_open(client, sql):
    closed = match(sql, deadline="now() - interval '1 minute'")
    open_ = match(sql, "开放赛", deadline="now() + interval '1 day'")
    headers, user_id = await member(client, sql, "player")
    for url in (COMMIT, ALIAS):
        await refused(await client.post(url, data={"id": str(closed)}, headers=headers), "报名已截止", url)
    assert sheet_rows(sql, closed) == []
    assert (await client.post(COMMIT, data={"id": str(open_)}, headers=headers)).status == 200
    # Past the deadline a member may still withdraw, until the match starts.
    sign_up(sql, closed, user_id)
    assert (await client.post(CANCEL, data={"id": str(closed)}, headers=headers)).status == 200
    assert sheet_rows(sql, closed) == []


async def test_the_start_is_checked_before_the_deadline_and_a_duplicate_before_the_capacity(client, sql):
    started = match(sql, play_time="now() - interval '1 hour'", deadline="now() - interval '2 hours'")
    full = match(sql, capacity=1)
    headers, user_id = await member(client, sql, "player")
    await refused(await client.post(COMMIT, data={"id": str(started)}, headers=headers), "赛事已开始，不能报名", COMMIT)
    sign_up(sql, full, user_id)
    resp = await client.post(COMMIT, data={"id": str(full)}, headers=headers)
    assert resp.status == 409 and (await resp.json())["error_code"] == 30007


async def test_fifty_members_at_once_for_ten_places(client, sql):
    competition = match(sql, capacity=10)
    members = [(await member(client, sql, f"rush-{n}"))[0] for n in range(50)]
    responses = await asyncio.gather(*(client.post(COMMIT, data={"id": str(competition)}, headers=headers)
                                       for headers in members))
    bodies = [await r.json() for r in responses]
    assert sorted(r.status for r in responses) == [200] * 10 + [400] * 40
    assert sorted(b["msg"] for b in bodies if b["error_code"]) == ["报名人数已满"] * 40
    assert len(sheet_rows(sql, competition)) == 10


async def test_apply_status_of_a_full_match_is_still_the_readers_own(client, sql):
    competition = match(sql, capacity=1)
    inside, _ = await member(client, sql, "inside")
    outside, _ = await member(client, sql, "outside")
    assert (await client.post(COMMIT, data={"id": str(competition)}, headers=inside)).status == 200
    for headers, status in ((inside, 1), (outside, 0)):
        body = await (await client.get(BEGINS, headers=headers)).json()
        assert [(item["id"], item["apply_status"]) for item in body["data"]] == [(competition, status)]


async def test_the_apply_routes_document_the_refusals(client):
    paths = build_spec(client.app)["paths"]
    for path in (COMMIT, ALIAS):
        text = paths[path]["post"]["description"]
        assert "报名已截止" in text and "报名人数已满" in text and "10000" in text


# -- the console ------------------------------------------------------------------------------------------


async def test_the_match_form_saves_capacity_and_deadline(make_client, sql):
    client = await console(make_client, sql)
    competition = match(sql)
    form = {"title": "周末联赛", "play_time": "2031-05-01T19:30", "capacity": "12",
            "apply_deadline": "2031-05-01T12:00"}
    resp = await post_form(client, f"/admin/competitions/{competition}", form,
                           token_from=f"/admin/competitions/{competition}")
    assert resp.status == 302
    [row] = sql("SELECT capacity, to_char(apply_deadline AT TIME ZONE 'Asia/Shanghai', 'YYYY-MM-DD HH24:MI') d"
                " FROM competitions")
    assert row == {"capacity": 12, "d": "2031-05-01 12:00"}
    page = await (await client.get(f"/admin/competitions/{competition}")).text()
    assert f'href="/admin/competitions/{competition}/signups">报名 0 / 12</a>' in page
    # A deadline after the match is refused, and nothing changes.
    resp = await post_form(client, f"/admin/competitions/{competition}", {**form, "apply_deadline": "2031-05-02T12:00"},
                           token_from=f"/admin/competitions/{competition}")
    assert resp.status == 400 and "报名截止时间须不晚于比赛时间" in await resp.text()
    assert sql("SELECT capacity FROM competitions")[0]["capacity"] == 12
