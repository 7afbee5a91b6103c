import pytest

from tests.helpers.api import get_json, login
from tests.helpers.content import NOTIFY, add_competition, add_live

LIST = "/api/v1/competition/live"
SECRET = "SECRET-PUSH-KEY"


def detail_path(live_id: int) -> str:
    return f"/api/v1/competitionlive/{live_id}"


@pytest.fixture
async def client(make_client):
    return await make_client(counter_flush_interval=3600)


async def test_routes_need_a_token(client, sql):
    live_id = add_live(sql, "直播")
    for method, path in (("GET", LIST), ("POST", LIST), ("GET", detail_path(live_id))):
        resp = await client.request(method, path)
        assert resp.status == 401
        assert (await resp.json())["error_code"] == 10003


async def test_list_live_first_then_ended_and_no_upcoming(client, token, sql):
    ended_new = add_live(sql, "已结束新", live_status=2, published="2024-05-05 10:00:00+08")
    add_live(sql, "未开始旧", live_status=0, published="2024-05-01 10:00:00+08")
    ended_old = add_live(sql, "已结束旧", live_status=2, published="2024-04-05 10:00:00+08")
    live_old = add_live(sql, "直播中旧", live_status=1, published="2024-05-02 10:00:00+08")
    add_live(sql, "未开始新", live_status=0, published="2024-05-04 10:00:00+08")
    live_new = add_live(sql, "直播中新", live_status=1, published="2024-05-03 10:00:00+08")
    add_live(sql, "未发布", live_status=1, status=0, published="2024-06-01 10:00:00+08")

    resp = await client.get(LIST, headers={"token": token})
    assert resp.status == 200
    assert SECRET not in await resp.text() and "plug_flow" not in await resp.text()
    body = await resp.json()
    assert body["total"] == 4 and body["last_page"] == 1
    assert [item["id"] for item in body["data"]] == [live_new, live_old, ended_new, ended_old]
    assert body["data"][0] == {
        "id": live_new,
        "title": "直播中新",
        "summary": "",
        "main_img_url": str(client.make_url("/media/s6.jpg")),
        "competition_id": "",
        "browse_num": 0,
        "play_rtmp": "rtmp://play.example.com/live/s6",
        "play_flv": "https://play.example.com/live/s6.flv",
        "play_m3u8": "https://play.example.com/live/s6.m3u8",
        "type": 3,
        "play_time": "",
        "live_status": 1,
        "online_num": 0,
    }
    page2 = await get_json(client, LIST + "?size=3", token, method="POST", data={"page": "2"})
    assert [item["id"] for item in page2["data"]] == [ended_old]
    assert page2["total"] == 4 and page2["last_page"] == 2


async def test_list_filters_and_search(client, token, sql):
    c1 = add_competition(sql)
    a = add_live(sql, "建东杯 GROUP A", competition_id=c1, published="2024-05-02 10:00:00+08", live_status=2)
    b = add_live(sql, "友谊赛", summary="建东杯热身 50%", published="2024-05-01 10:00:00+08", live_status=2)
    add_live(sql, "别的比赛", live_status=2)

    async def found(**data) -> list[int]:
        body = await get_json(client, LIST, token, method="POST", data=data)
        assert body["total"] == len(body["data"])
        return [item["id"] for item in body["data"]]

    assert await found(competition_id=str(c1)) == [a]
    assert await found(search="建东杯") == [a, b]
    assert await found(search="group a") == [a]
    assert await found(search="建东杯", competition_id=str(c1)) == [a]
    assert await found(search="%") == [b]
    assert await found(search="_") == []
    body = await get_json(client, LIST, token, status=400, method="POST", data={"competition_id": "x"})
    assert body["error_code"] == 99999
    body = await get_json(client, LIST, token, status=400, method="POST", data={"search": "x" * 51})
    assert body["error_code"] == 99999


async def test_detail(client, token, sql):
    competition = add_competition(sql)
    live_id = add_live(sql, "决赛直播", summary="简介", live_status=1, competition_id=competition, browse_num=4,
                       online_show=0)
    resp = await client.get(detail_path(live_id), headers={"token": token})
    assert resp.status == 200
    assert SECRET not in await resp.text()
    assert await resp.json() == {
        "id": live_id,
        "title": "决赛直播",
        "summary": "简介",
        "competition_id": competition,
        "main_img_url": str(client.make_url("/media/s1.jpg")),
        "browse_num": 4,
        "play_rtmp": "rtmp://play.example.com/live/s1",
        "play_flv": "https://play.example.com/live/s1.flv",
        "play_m3u8": "https://play.example.com/live/s1.m3u8",
        "publish_time": "2024-05-01 10:00:00",
        "play_time": "2024-05-20 19:30:00",
        "type": 3,
        "live_status": 1,
        "online_show": 0,
    }


async def test_detail_not_found(client, token, sql):
    hidden = add_live(sql, "未发布", status=0)
    for live_id in (hidden, 999, 2**64):
        path = detail_path(live_id)
        body = await get_json(client, path, token, status=404)
        assert body == {"msg": "赛事直播不存在", "error_code": 30005, "request_url": path}


async def test_views_show_before_they_are_flushed(client, token, sql):
    live_id = add_live(sql, "直播", browse_num=2, live_status=1)
    for _ in range(2):
        await get_json(client, NOTIFY, token, method="POST", data={"id": live_id, "type": 2})
    assert (await get_json(client, detail_path(live_id), token))["browse_num"] == 4
    assert (await get_json(client, LIST, token))["data"][0]["browse_num"] == 4
    assert sql("SELECT browse_num FROM lives WHERE id = %s", live_id) == [{"browse_num": 2}]


async def test_an_upcoming_live_is_listed_only_once_it_starts(make_client, sql):
    """The live list and the search label every live_status but 1 "已过期": a live still to come (0) is in
    neither until it starts (upcoming matches have their own list); its detail still answers."""
    client = await make_client(live_push_secret="push-secret", counter_flush_interval=3600)
    token = await login(client)
    on_air = add_live(sql, "决赛 直播中", live_status=1, published="2024-05-01 10:00:00+08")
    upcoming = add_live(sql, "决赛 未开始", live_status=0, published="2024-05-03 10:00:00+08")
    ended = add_live(sql, "决赛 已结束", live_status=2, published="2024-05-02 10:00:00+08")

    async def listed() -> set[tuple[int, ...]]:
        lists = [
            await get_json(client, LIST, token),
            await get_json(client, LIST, token, method="POST", data={"search": "决赛"}),
            await get_json(client, "/api/v1/competition/play", token, method="POST", data={"search": "决赛"}),
        ]
        for body in lists:
            assert body["total"] == len(body["data"])
            assert {item["live_status"] for item in body["data"]} <= {1, 2}
        return {tuple(item["id"] for item in body["data"]) for body in lists}

    assert await listed() == {(on_air, ended)}
    assert (await get_json(client, detail_path(upcoming), token))["live_status"] == 0
    # The stream starts (the streaming server's callback): listed at once, among the lives on air.
    (stream,) = sql("SELECT stream_name FROM lives WHERE id = %s", upcoming)
    resp = await client.post("/api/v1/live/callback/srs", json={
        "action": "on_publish", "app": "live", "stream": stream["stream_name"], "param": "?token=push-secret"})
    assert resp.status == 200 and (await resp.json())["code"] == 0
    assert await listed() == {(upcoming, on_air, ended)}
