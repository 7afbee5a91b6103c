from jiandong.demo import load_demo


def count(sql, table):
    return sql(f"SELECT count(*) AS n FROM {table}")[0]["n"]


async def test_demo_data_is_populated_and_idempotent(settings, sql):
    assert load_demo(settings.database_url) is True
    counts = {t: count(sql, t) for t in ("teams", "players", "competitions", "videos", "lives", "banners",
                                         "config_values", "businesses", "team_members")}
    assert counts["teams"] >= 3 and counts["players"] >= 30 and counts["competitions"] >= 30
    assert counts["videos"] >= 30 and counts["lives"] >= 3 and counts["businesses"] == 1
    upcoming = sql("SELECT count(*) AS n FROM competitions WHERE play_time > now()")[0]["n"]
    assert 0 < upcoming < counts["competitions"]
    assert {r["live_status"] for r in sql("SELECT DISTINCT live_status FROM lives")} == {0, 1, 2}
    codes = {r["code"] for r in sql("SELECT code FROM config_values")}
    assert {"index_title", "seo_title", "description", "copyright", "ICP", "agreement_user",
            "agreement_privacy", "agreement_member"} <= codes
    assert load_demo(settings.database_url) is False
    assert {t: count(sql, t) for t in counts} == counts


async def test_demo_login_code_has_a_player_card(client, settings, sql):
    load_demo(settings.database_url)
    from tests.conftest import login

    token = await login(client, "demo")
    resp = await client.get("/api/v1/user/info", headers={"token": token})
    assert resp.status == 200
    assert (await resp.json())["username"] == "演示球员"
    players = sql("SELECT p.cn_name FROM players p JOIN users u ON u.id = p.user_id")
    assert players == [{"cn_name": "林建东"}]
