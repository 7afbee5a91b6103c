"""Migrations that seed or back-fill data, each applied to a database of its own as on a real install."""

from __future__ import annotations

import shutil
import typing
from urllib.parse import urlsplit

import psycopg2
import psycopg2.extras

from jiandong.integrations.wechat import dev_openid
from jiandong.store.db import SQL_DIR, migration_files
from tests.helpers.api import login

AGREEMENTS = {
    "service_agreement": "《服务协议》正文尚未发布，请以俱乐部公布的版本为准。",
    "purchase_agreement": "《视频购买观看协议》正文尚未发布，请以俱乐部公布的版本为准。",
    "membership_agreement": "《尊享会员服务协议》正文尚未发布，请以俱乐部公布的版本为准。",
}


def migrate_up_to(url: str, version: int, tmp_path) -> None:
    """Apply the migrations numbered up to `version`, as an install of that version did."""
    from jiandong.store.db import migrate

    older = tmp_path / "sql"
    older.mkdir()
    for number, _, path in migration_files(SQL_DIR):
        if number <= version:
            shutil.copy(path, older / path.name)
    migrate(url, older)


def run(url: str, query: str, *args: typing.Any) -> list[dict[str, typing.Any]]:
    with psycopg2.connect(url) as conn, conn.cursor(cursor_factory=psycopg2.extras.RealDictCursor) as cur:
        cur.execute(query, args)
        return [dict(row) for row in cur.fetchall()] if cur.description else []


async def test_every_install_has_the_three_agreements(make_client, fresh_database):
    client = await make_client(database_url=fresh_database)
    token = await login(client, "reader")
    # As the agreement page (protocol.html?type=1|2|3) asks for each.
    for code, text in AGREEMENTS.items():
        resp = await client.post("/api/v1/config/value", data={"code[]": code, "tags": "1"}, headers={"token": token})
        assert resp.status == 200
        assert await resp.json() == {code: text}
    resp = await client.post("/api/v1/config/value", data={"code": "membership_agreement"}, headers={"token": token})
    assert await resp.json() == {"value": f"<p>{AGREEMENTS['membership_agreement']}</p>"}


async def test_an_agreement_the_club_wrote_before_is_kept(make_client, fresh_database, tmp_path):
    migrate_up_to(fresh_database, 3, tmp_path)
    run(fresh_database, "INSERT INTO config_values (code, name, value)"
                        " VALUES ('service_agreement', '服务协议', '本俱乐部协议')")
    client = await make_client(database_url=fresh_database)
    token = await login(client, "reader")
    resp = await client.post("/api/v1/config/value", data={"code[]": ["service_agreement", "purchase_agreement"]},
                             headers={"token": token})
    assert await resp.json() == {"service_agreement": "本俱乐部协议",
                                 "purchase_agreement": f"<p>{AGREEMENTS['purchase_agreement']}</p>"}


async def test_members_from_before_get_a_prefilled_player_card(make_client, fresh_database, tmp_path):
    migrate_up_to(fresh_database, 3, tmp_path)

    def user(code: str, **fields: typing.Any) -> int:
        values = {"openid": dev_openid(code), "username": code, **fields}
        columns = ", ".join(values)
        marks = ", ".join(["%s"] * len(values))
        rows = run(fresh_database, f"INSERT INTO users ({columns}) VALUES ({marks}) RETURNING id", *values.values())
        return rows[0]["id"]

    active = user("active", mobile="13800138000", sex=2, member_status=1, member_expire_time="2099-01-01")
    expired = user("expired", member_status=1, member_expire_time="2020-01-01")
    disabled = user("disabled", member_status=2, member_expire_time="2099-01-01")
    with_card = user("with-card", member_status=1, member_expire_time="2099-01-01")
    run(fresh_database, "INSERT INTO players (user_id, cn_name, number) VALUES (%s, '张三', '7')", with_card)
    disabled_card = user("disabled-card", member_status=1, member_expire_time="2099-01-01")
    run(fresh_database, "INSERT INTO players (user_id, cn_name, status) VALUES (%s, '李四', 0)", disabled_card)
    user("never-paid")

    client = await make_client(database_url=fresh_database)  # migrates the rest on start
    cards = run(fresh_database, "SELECT user_id, cn_name, mobile, sex, number, status FROM players ORDER BY user_id")
    assert cards == [
        {"user_id": active, "cn_name": "active", "mobile": "13800138000", "sex": 2, "number": "", "status": 1},
        {"user_id": expired, "cn_name": "expired", "mobile": "", "sex": 0, "number": "", "status": 1},
        {"user_id": disabled, "cn_name": "disabled", "mobile": "", "sex": 0, "number": "", "status": 1},
        {"user_id": with_card, "cn_name": "张三", "mobile": "", "sex": 0, "number": "7", "status": 1},
        {"user_id": disabled_card, "cn_name": "李四", "mobile": "", "sex": 0, "number": "", "status": 0},
    ]

    async def get(code: str, path: str) -> tuple[int, dict[str, typing.Any]]:
        resp = await client.get(path, headers={"token": await login(client, code)})
        return resp.status, await resp.json()

    status, body = await get("active", "/api/v1/member/info")
    assert status == 200
    assert (body["cn_name"], body["mobile"], body["sex"], body["team"], body["photo"]) == (
        "active", "13800138000", "女", "", "")
    status, body = await get("active", "/api/v1/team/by_user")
    assert (status, body["error_code"]) == (404, 30003)
    status, body = await get("never-paid", "/api/v1/member/info")
    assert (status, body["error_code"]) == (404, 30002)
    status, body = await get("disabled-card", "/api/v1/member/info")
    assert (status, body["error_code"]) == (404, 30002)


async def test_orders_from_before_know_when_they_were_prepaid_and_closed_at_wechat(
    make_client, fresh_database, tmp_path
):
    migrate_up_to(fresh_database, 6, tmp_path)
    [user] = run(fresh_database, "INSERT INTO users (openid, username) VALUES ('o-before', 'before') RETURNING id")
    [product] = run(fresh_database, "INSERT INTO businesses (title, price) VALUES ('会员', 19900) RETURNING id")

    def order(number: str, status: int, prepaid: bool) -> None:
        run(fresh_database,
            "INSERT INTO orders (order_no, user_id, business_id, price, total_price, status, snap_items, prepay_id,"
            " prepay_expires_at, closed_at) VALUES (%s, %s, %s, 19900, 19900, %s, '[]', %s,"
            " CASE WHEN %s THEN now() + interval '1 hour' END, CASE WHEN %s <> 0 THEN now() END)",
            number, user["id"], product["id"], status, "wx-prepay" if prepaid else None, prepaid, status)

    order("AWAITING0000001", 0, True)
    order("CANCELLED000001", 5, True)  # closed at WeChat Pay before it was ended, as every order was
    order("CANCELLED000002", 5, False)
    await make_client(database_url=fresh_database)  # migrates the rest on start
    rows = run(fresh_database, "SELECT order_no, prepaid_at = prepay_expires_at - interval '2 hours' AS prepaid,"
                               " wechat_closed_at = closed_at AS closed_at_wechat FROM orders ORDER BY order_no")
    assert rows == [
        {"order_no": "AWAITING0000001", "prepaid": True, "closed_at_wechat": None},
        {"order_no": "CANCELLED000001", "prepaid": True, "closed_at_wechat": True},
        {"order_no": "CANCELLED000002", "prepaid": None, "closed_at_wechat": None},
    ]


def test_search_advice_says_what_to_run_and_that_is_enough(fresh_database):
    from jiandong.store.db import migrate, search_advice

    migrate(fresh_database)
    assert search_advice(fresh_database) is None
    run(fresh_database, "DROP EXTENSION pg_trgm CASCADE")
    advice = search_advice(fresh_database)
    database = urlsplit(fresh_database).path.lstrip("/")
    assert advice.startswith("search scans every row: pg_trgm is not installed in this database")
    command = f'psql -d {database} -c "CREATE EXTENSION pg_trgm"'
    assert command in advice
    # Doing what it says (the statement, then a start's or `server.py migrate`'s migrate) brings the indexes back.
    run(fresh_database, "CREATE EXTENSION pg_trgm")
    migrate(fresh_database)
    assert search_advice(fresh_database) is None
    indexes = run(fresh_database, "SELECT indexname FROM pg_indexes WHERE indexname LIKE '%%search_idx' ORDER BY 1")
    assert indexes == [{"indexname": "lives_search_idx"}, {"indexname": "videos_search_idx"}]


def test_stored_media_urls_of_our_own_files_become_paths(fresh_database, tmp_path):
    """Absolute URLs of our /media/ files, stored under any host (a Host header's too), become /media/ paths;
    outside URLs stay as they are."""
    migrate_up_to(fresh_database, 9, tmp_path)
    ours = {
        "avatar": "http://evil.example/media/avatars/202501/" + "a" * 64 + ".jpg",
        "logo": "https://club.example.com/media/teams/202412/" + "b" * 64 + ".png",
        "demo": "http://localhost:8080/media/demo/players/1-23.jpg",
        "video": "http://127.0.0.1:8080/media/videos/202501/" + "c" * 32 + ".mp4",
    }
    outside = {
        "wechat": "https://thirdwx.qlogo.cn/mmopen/vi_32/abc/132",
        "cdn": "https://cdn.example.com/media/teams/logo.png",
        "query": "https://club.example.com/media/teams/202412/" + "b" * 64 + ".png?x=1",
    }
    for label, url in {**ours, **outside}.items():
        run(fresh_database, "INSERT INTO users (openid, username, head_img) VALUES (%s, %s, %s)", label, label, url)
        run(fresh_database, "INSERT INTO teams (name, logo) VALUES (%s, %s)", label, url)
        run(fresh_database, "INSERT INTO files (cate, name) VALUES ('image', %s)", url)
        run(fresh_database, "INSERT INTO chat_messages (room_id, user_id, content, user_info, msg_time)"
            " SELECT 1, id, 'x', jsonb_build_object('username', username, 'head_img', head_img), now() FROM users"
            " WHERE openid = %s", label)
    from jiandong.store.db import migrate

    migrate(fresh_database)
    expected = {**{k: "/media/" + v.split("/media/", 1)[1] for k, v in ours.items()}, **outside}
    assert {r["openid"]: r["head_img"] for r in run(fresh_database, "SELECT openid, head_img FROM users")} \
        == expected
    assert {r["name"]: r["logo"] for r in run(fresh_database, "SELECT name, logo FROM teams")} == expected
    assert sorted(r["name"] for r in run(fresh_database, "SELECT name FROM files")) == sorted(expected.values())
    assert sorted(r["h"] for r in run(fresh_database, "SELECT user_info->>'head_img' AS h FROM chat_messages")) \
        == sorted(expected.values())
