import pytest

from tests.helpers.api import get_json
from tests.helpers.content import NOTIFY, add_file, add_live, add_video

SEARCH = "/api/v1/competition/play"
SECRET = "SECRET-PUSH-KEY"


@pytest.fixture
async def client(make_client):
    return await make_client(counter_flush_interval=3600)


def pending(redis_sync, settings, kind: str) -> dict[str, str]:
    return redis_sync.hgetall(f"{settings.redis_prefix}{{views:{kind}}}")


async def test_routes_need_a_token(client):
    for method, path in (("POST", NOTIFY), ("GET", SEARCH), ("POST", SEARCH)):
        resp = await client.request(method, path, data={"id": "1", "type": "1", "search": "x"})
        assert resp.status == 401
        assert (await resp.json())["error_code"] == 10003


async def test_play_notify_counts_in_redis(client, token, sql, redis_sync, settings):
    video_id = add_video(sql, "回放", browse_num=5)
    live_id = add_live(sql, "直播", browse_num=1)
    for _ in range(2):
        body = await get_json(client, NOTIFY, token, method="POST", data={"id": str(video_id), "type": "1"})
        assert body == {"msg": "success", "error_code": 0, "request_url": NOTIFY}
    await get_json(client, NOTIFY, token, method="POST", json={"id": live_id, "type": 2})
    assert pending(redis_sync, settings, "video") == {str(video_id): "2"}
    assert pending(redis_sync, settings, "live") == {str(live_id): "1"}
    # The rows stay untouched until a flush.
    assert sql("SELECT browse_num FROM videos") == [{"browse_num": 5}]
    assert sql("SELECT browse_num FROM lives") == [{"browse_num": 1}]


async def test_play_notify_unknown_or_unpublished(client, token, sql, redis_sync, settings):
    hidden_video = add_video(sql, "隐藏", status=0)
    hidden_live = add_live(sql, "隐藏", status=0)
    live_id = add_live(sql, "直播")
    cases = [
        ({"id": hidden_video, "type": 1}, 30004, "赛事视频不存在"),
        ({"id": 4242, "type": 1}, 30004, "赛事视频不存在"),
        # A live id is not a video id.
        ({"id": live_id, "type": 1}, 30004, "赛事视频不存在"),
        ({"id": hidden_live, "type": 2}, 30005, "赛事直播不存在"),
        ({"id": 4242, "type": 2}, 30005, "赛事直播不存在"),
    ]
    for data, code, msg in cases:
        body = await get_json(client, NOTIFY, token, status=404, method="POST", data=data)
        assert body == {"msg": msg, "error_code": code, "request_url": NOTIFY}
    assert pending(redis_sync, settings, "video") == {} and pending(redis_sync, settings, "live") == {}


@pytest.mark.parametrize(
    "data",
    [{}, {"id": "1"}, {"type": "1"}, {"id": "1", "type": "3"}, {"id": "x", "type": "1"}, {"id": "0", "type": "1"},
     {"id": str(2**64), "type": "2"}, {"id": "1", "type": "video"}],
)
async def test_play_notify_bad_parameters(client, token, data):
    body = await get_json(client, NOTIFY, token, status=400, method="POST", data=data)
    assert body["error_code"] == 99999 and body["request_url"] == NOTIFY


async def test_search_needs_a_term(client, token):
    for data in ({}, {"search": ""}, {"search": "   "}, {"search": "长" * 51}):
        body = await get_json(client, SEARCH, token, status=400, method="POST", data=data)
        assert body["error_code"] == 99999 and body["request_url"] == SEARCH


async def test_search_lives_first_then_videos_paged_as_one_list(client, token, sql):
    # Lives in list order (live now, then ended; none still to come), then videos newest first.
    ended = add_live(sql, "建东杯 已结束", live_status=2, published="2024-05-09 10:00:00+08")
    live = add_live(sql, "建东杯 直播中", live_status=1, published="2024-05-01 10:00:00+08")
    ended_old = add_live(sql, "建东杯 早前的直播", live_status=2, published="2024-05-02 10:00:00+08")
    add_live(sql, "建东杯 未开始", live_status=0, published="2024-05-03 10:00:00+08")
    add_live(sql, "别的直播")
    add_live(sql, "建东杯 未发布", status=0)
    file_id = add_file(sql, "/media/v1.mp4")
    v_new = add_video(sql, "建东杯 集锦", type=2, published="2024-05-08 10:00:00+08", file_id=file_id)
    v_mid = add_video(sql, "回放", summary="建东杯第一轮", published="2024-05-07 10:00:00+08")
    v_old = add_video(sql, "建东杯 回放", published="2024-05-06 10:00:00+08")
    add_video(sql, "别的视频")

    expected = [live, ended, ended_old, v_new, v_mid, v_old]
    seen = []
    for page in (1, 2, 3):
        resp = await client.post(f"{SEARCH}?page={page}&size=2", data={"search": "建东杯"}, headers={"token": token})
        assert resp.status == 200
        assert SECRET not in await resp.text()
        body = await resp.json()
        assert body["total"] == 6 and body["last_page"] == 3 and body["current_page"] == page
        seen.extend(item["id"] for item in body["data"])
        for item in body["data"]:
            is_live = item["type"] == 3
            # The pages tell the two apart by shape.
            assert ("file" in item) is not is_live and ("live_status" in item) is is_live
            assert "plug_flow" not in item
    assert seen == expected

    everything = await get_json(client, SEARCH, token, method="POST", data={"search": "建东杯"})
    assert [item["id"] for item in everything["data"]] == expected
    live_item, video_item = everything["data"][0], everything["data"][3]
    assert set(live_item) == {
        "id", "title", "summary", "main_img_url", "competition_id", "browse_num", "play_rtmp", "play_flv",
        "play_m3u8", "type", "play_time", "live_status", "online_num",
    }
    assert video_item == {
        "id": v_new, "title": "建东杯 集锦", "summary": "", "main_img_url": "", "competition_id": "", "browse_num": 0,
        "type": 2, "publish_time": "2024-05-08 10:00:00", "play_time": "",
        "file": {"cate": "video", "name": str(client.make_url("/media/v1.mp4")), "original": "match.mp4", "size": 1234},
    }
    # A window that starts among the videos, and one past the end.
    page = await get_json(client, SEARCH + "?page=2&size=4", token, method="POST", data={"search": "建东杯"})
    assert [item["id"] for item in page["data"]] == [v_mid, v_old] and page["total"] == 6
    page = await get_json(client, SEARCH + "?page=4&size=2", token, method="POST", data={"search": "建东杯"})
    assert page["data"] == [] and page["total"] == 6
    # GET with the term in the query string.
    page = await get_json(client, SEARCH + "?search=%E5%BB%BA%E4%B8%9C%E6%9D%AF&size=3", token)
    assert [item["id"] for item in page["data"]] == [live, ended, ended_old] and page["total"] == 6


async def test_search_only_videos_or_only_lives(client, token, sql):
    video_id = add_video(sql, "Replay 回放")
    live_id = add_live(sql, "Live 直播", live_status=2)
    body = await get_json(client, SEARCH, token, method="POST", data={"search": "REPLAY"})
    assert [item["id"] for item in body["data"]] == [video_id] and body["total"] == 1
    body = await get_json(client, SEARCH, token, method="POST", data={"search": "直播"})
    assert [item["id"] for item in body["data"]] == [live_id] and body["total"] == 1
    body = await get_json(client, SEARCH, token, method="POST", data={"search": "%"})
    assert body == {"total": 0, "per_page": 30, "current_page": 1, "last_page": 1, "data": []}


async def test_search_shows_pending_views(client, token, sql):
    video_id = add_video(sql, "决赛回放", browse_num=1)
    live_id = add_live(sql, "决赛直播", browse_num=2, live_status=1)
    await get_json(client, NOTIFY, token, method="POST", data={"id": video_id, "type": 1})
    await get_json(client, NOTIFY, token, method="POST", data={"id": live_id, "type": 2})
    body = await get_json(client, SEARCH, token, method="POST", data={"search": "决赛"})
    assert [(item["id"], item["browse_num"]) for item in body["data"]] == [(live_id, 3), (video_id, 2)]


async def test_every_play_item_carries_the_play_time_of_its_match(client, token, sql):
    """The search page prints 比赛时间：{{play_time}} under every result: each live and video answers its match's
    play_time as the match lists format it, and "" when it belongs to no match; the lists share the items."""
    match = sql("INSERT INTO competitions (title, play_time, status) VALUES ('决赛', '2024-05-20 19:30:00+08', 1)"
                " RETURNING id")[0]["id"]
    live = add_live(sql, "决赛 直播", live_status=1, competition_id=match)
    ended = add_live(sql, "决赛 直播回看", live_status=2)
    replay = add_video(sql, "决赛 回放", competition_id=match, published="2024-05-21 10:00:00+08")
    highlight = add_video(sql, "决赛 集锦", type=2, published="2024-05-20 10:00:00+08")
    expected = {live: "2024-05-20 19:30:00", ended: "", replay: "2024-05-20 19:30:00", highlight: ""}
    # As the match itself answers it.
    assert (await get_json(client, f"/api/v1/competition/{match}", token))["play_time"] == expected[live]

    body = await get_json(client, SEARCH, token, method="POST", data={"search": "决赛"})
    assert {item["id"]: item["play_time"] for item in body["data"]} == expected
    lives = await get_json(client, "/api/v1/competition/live", token)
    videos = await get_json(client, "/api/v1/competition/video", token)
    for item in lives["data"] + videos["data"]:
        assert type(item["play_time"]) is str and item["play_time"] == expected[item["id"]]
