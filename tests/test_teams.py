from tests.helpers.api import login

BY_USER = "/api/v1/team/by_user"


async def _user(client, sql, code="player-1"):
    token = await login(client, code)
    user_id = sql("SELECT id FROM users ORDER BY id DESC LIMIT 1")[0]["id"]
    return {"token": token}, user_id


def _player(sql, user_id, status=1):
    return sql(
        "INSERT INTO players (user_id, cn_name, status) VALUES (%s, '张三', %s) RETURNING id", user_id, status
    )[0]["id"]


def _team(sql, name, status=1):
    return sql(
        "INSERT INTO teams (name, logo, status) VALUES (%s, %s, %s) RETURNING id", name, f"/logo/{name}.png", status
    )[0]["id"]


def _membership(sql, team_id, player_id, joined, left=None):
    """Joined `joined` ago; left `left` ago, or still in the team when None."""
    sql(
        "INSERT INTO team_members (team_id, player_id, joined_at, left_at)"
        " VALUES (%s, %s, now() - %s::interval, now() - %s::interval)",
        team_id, player_id, joined, left,
    )


def _competition(sql, title, play_time, status=1, teams=()):
    competition_id = sql(
        "INSERT INTO competitions (title, main_img_url, play_time, status) VALUES (%s, %s, %s, %s) RETURNING id",
        title, f"/img/{title}.jpg", play_time, status,
    )[0]["id"]
    for team_id in teams:
        sql("INSERT INTO competition_teams (competition_id, team_id) VALUES (%s, %s)", competition_id, team_id)
    return competition_id


async def test_teams_require_token(client, sql):
    team = _team(sql, "一队")
    for url in (BY_USER, f"/api/v1/team/{team}/competitions"):
        resp = await client.get(url)
        assert resp.status == 401
        assert (await resp.json())["error_code"] == 10003


async def test_by_user_without_profile(client, sql):
    headers, user_id = await _user(client, sql)
    resp = await client.get(BY_USER, headers=headers)
    assert resp.status == 404
    assert await resp.json() == {"msg": "会员信息不存在或已被禁用", "error_code": 30002, "request_url": BY_USER}

    # A disabled profile counts as none, even when it has teams.
    player = _player(sql, user_id, status=0)
    _membership(sql, _team(sql, "一队"), player, "1 year")
    resp = await client.get(BY_USER, headers=headers)
    assert resp.status == 404
    assert (await resp.json())["error_code"] == 30002


async def test_by_user_without_team(client, sql):
    headers, user_id = await _user(client, sql)
    player = _player(sql, user_id)
    resp = await client.get(BY_USER, headers=headers)
    assert resp.status == 404
    assert await resp.json() == {"msg": "当前会员未加入任何球队", "error_code": 30003, "request_url": BY_USER}

    # Only disabled teams: nothing to show either.
    _membership(sql, _team(sql, "停用队", status=0), player, "1 year")
    resp = await client.get(BY_USER, headers=headers)
    assert resp.status == 404
    assert (await resp.json())["error_code"] == 30003


async def test_by_user_lists_every_team_once_current_first(client, sql):
    headers, user_id = await _user(client, sql)
    player = _player(sql, user_id)
    first, second, current, hidden = (_team(sql, n) for n in ("最早队", "上一队", "现役队", "停用队"))
    sql("UPDATE teams SET status = 0 WHERE id = %s", hidden)
    _membership(sql, first, player, "6 years", "5 years")
    _membership(sql, second, player, "5 years", "1 year")
    _membership(sql, current, player, "1 year")
    # Left and came back to the first team for a while: listed once, by its latest stay.
    _membership(sql, first, player, "4 years", "3 years")
    _membership(sql, hidden, player, "4 years", "2 years")
    # Someone else's team never shows.
    _, other_user = await _user(client, sql, "other")
    _membership(sql, _team(sql, "别人的队"), _player(sql, other_user), "1 year")

    resp = await client.get(BY_USER, headers=headers)
    assert resp.status == 200
    assert await resp.json() == [
        {"id": current, "name": "现役队", "logo": "/logo/现役队.png"},
        {"id": second, "name": "上一队", "logo": "/logo/上一队.png"},
        {"id": first, "name": "最早队", "logo": "/logo/最早队.png"},
    ]


async def test_team_competitions_newest_first(client, sql):
    headers, _ = await _user(client, sql)
    team, rival = _team(sql, "一队"), _team(sql, "二队")
    old = _competition(sql, "春季赛", "2023-04-01 15:00:00+08", teams=(team, rival))
    new = _competition(sql, "秋季赛", "2023-10-01 09:30:00+08", teams=(team,))
    _competition(sql, "草稿", "2024-01-01 10:00:00+08", status=0, teams=(team,))
    _competition(sql, "别队的赛", "2024-02-01 10:00:00+08", teams=(rival,))
    url = f"/api/v1/team/{team}/competitions"
    resp = await client.get(url, headers=headers)
    assert resp.status == 200
    assert await resp.json() == [
        {"id": new, "title": "秋季赛", "main_img_url": "/img/秋季赛.jpg", "play_time": "2023-10-01 09:30:00"},
        {"id": old, "title": "春季赛", "main_img_url": "/img/春季赛.jpg", "play_time": "2023-04-01 15:00:00"},
    ]


async def test_team_competitions_unknown_or_disabled_team(client, sql):
    headers, _ = await _user(client, sql)
    disabled = _team(sql, "停用队", status=0)
    _competition(sql, "赛", "2023-04-01 15:00:00+08", teams=(disabled,))
    for team_id in (disabled + 1000, disabled, 2**63, 10**30):
        url = f"/api/v1/team/{team_id}/competitions"
        resp = await client.get(url, headers=headers)
        assert resp.status == 404
        assert await resp.json() == {"msg": "球队信息不存在", "error_code": 30001, "request_url": url}


async def test_team_competitions_none_published(client, sql):
    headers, _ = await _user(client, sql)
    team = _team(sql, "一队")
    url = f"/api/v1/team/{team}/competitions"
    resp = await client.get(url, headers=headers)
    assert resp.status == 404
    assert await resp.json() == {"msg": "当前球队未参与任何赛事", "error_code": 30006, "request_url": url}

    _competition(sql, "草稿", "2023-04-01 15:00:00+08", status=0, teams=(team,))
    resp = await client.get(url, headers=headers)
    assert resp.status == 404
    assert (await resp.json())["error_code"] == 30006


async def test_team_competitions_needs_a_numeric_id(client, sql):
    headers, _ = await _user(client, sql)
    resp = await client.get("/api/v1/team/abc/competitions", headers=headers)
    assert resp.status == 404
    assert (await resp.json())["error_code"] == 10000
