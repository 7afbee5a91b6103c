
import pytest

from jiandong.keys import content_cache_key
from tests.helpers.api import get_json, login
from tests.helpers.content import NOTIFY, add_competition, add_file, add_video

LIST = "/api/v1/competition/video"


def detail_path(video_id: int) -> str:
    return f"/api/v1/competitionvideo/{video_id}"




@pytest.fixture
async def client(make_client):
    # No background flush during a test: each test flushes (or not) on purpose.
    return await make_client(counter_flush_interval=3600)




async def test_routes_need_a_token(client, sql):
    video_id = add_video(sql, "决赛")
    for method, path in (("GET", LIST), ("POST", LIST), ("GET", detail_path(video_id))):
        resp = await client.request(method, path)
        assert resp.status == 401
        assert await resp.json() == {"msg": "Token已过期或无效Token", "error_code": 10003, "request_url": path}


async def test_list_newest_first_paged_with_files(client, token, sql):
    competition = add_competition(sql)
    file_id = add_file(sql, "/media/videos/final.mp4", original="final.mp4", size=99)
    old = add_video(sql, "小组赛", published="2024-04-01 09:00:00+08", file_id=file_id, competition_id=competition,
                    main_img_url="/media/a.jpg", browse_num=7)
    same_time_1 = add_video(sql, "半决赛上", published="2024-05-01 10:00:00+08", type=2)
    same_time_2 = add_video(sql, "半决赛下", published="2024-05-01 10:00:00+08")
    add_video(sql, "隐藏", published="2024-06-01 10:00:00+08", status=0)

    first = await get_json(client, LIST + "?page=1&size=2", token)
    assert first["total"] == 3 and first["per_page"] == 2 and first["current_page"] == 1 and first["last_page"] == 2
    # Same publish time: the later id first.
    assert [item["id"] for item in first["data"]] == [same_time_2, same_time_1]
    assert first["data"][1] == {
        "id": same_time_1,
        "title": "半决赛上",
        "summary": "",
        "main_img_url": "",
        "competition_id": "",
        "browse_num": 0,
        "type": 2,
        "publish_time": "2024-05-01 10:00:00",
        "play_time": "",
        "file": {"cate": "", "name": "", "original": "", "size": 0},
    }
    # Page and size from the body of a POST as well.
    second = await get_json(client, LIST, token, method="POST", data={"page": "2", "size": "2"})
    assert second["current_page"] == 2 and second["total"] == 3
    assert second["data"] == [
        {
            "id": old,
            "title": "小组赛",
            "summary": "",
            # Stored as paths on this site, answered as absolute URLs (here: the test server's host).
            "main_img_url": str(client.make_url("/media/a.jpg")),
            "competition_id": competition,
            "browse_num": 7,
            "type": 1,
            "publish_time": "2024-04-01 09:00:00",
            "play_time": "2024-05-20 19:30:00",
            "file": {"cate": "video", "name": str(client.make_url("/media/videos/final.mp4")), "original": "final.mp4",
                     "size": 99},
        }
    ]
    past_end = await get_json(client, LIST + "?page=5&size=2", token)
    assert past_end["data"] == [] and past_end["total"] == 3 and past_end["last_page"] == 2
    empty_default = await get_json(client, LIST, token)
    assert empty_default["per_page"] == 30 and empty_default["total"] == 3 and len(empty_default["data"]) == 3


async def test_list_filters(client, token, sql):
    c1, c2 = add_competition(sql, "一"), add_competition(sql, "二")
    replay = add_video(sql, "回放", competition_id=c1, type=1)
    highlight = add_video(sql, "集锦", competition_id=c1, type=2, published="2024-05-02 10:00:00+08")
    other = add_video(sql, "别的", competition_id=c2, type=1)

    body = await get_json(client, LIST, token, method="POST", data={"competition_id": str(c1)})
    assert [item["id"] for item in body["data"]] == [highlight, replay] and body["total"] == 2
    body = await get_json(client, LIST, token, method="POST", json={"competition_id": c1, "type": 1})
    assert [item["id"] for item in body["data"]] == [replay]
    body = await get_json(client, LIST + "?type=2", token)
    assert [item["id"] for item in body["data"]] == [highlight]
    body = await get_json(client, LIST, token, method="POST", data={"type": "1", "competition_id": ""})
    assert {item["id"] for item in body["data"]} == {replay, other}
    body = await get_json(client, LIST, token, method="POST", data={"competition_id": "999"})
    assert body == {"total": 0, "per_page": 30, "current_page": 1, "last_page": 1, "data": []}


@pytest.mark.parametrize(
    "data",
    [
        {"type": "3"},
        {"type": "0"},
        {"type": "x"},
        {"competition_id": "abc"},
        {"competition_id": "0"},
        {"competition_id": str(2**64)},
        {"size": "101"},
        {"page": "0"},
        {"search": "长" * 51},
        {"search": "a\x00b"},
    ],
)
async def test_list_bad_parameters(client, token, data):
    body = await get_json(client, LIST, token, status=400, method="POST", data=data)
    assert body["error_code"] == 99999 and body["request_url"] == LIST


async def test_search_title_or_summary_chinese_and_case(client, token, sql):
    in_title = add_video(sql, "建东杯 Final 决赛回放", published="2024-05-03 10:00:00+08")
    in_summary = add_video(sql, "第二轮", summary="精彩的建东杯比赛", published="2024-05-02 10:00:00+08")
    add_video(sql, "无关", summary="别的比赛")
    add_video(sql, "建东杯隐藏", status=0)

    async def found(term: str) -> list[int]:
        body = await get_json(client, LIST, token, method="POST", data={"search": term})
        assert body["total"] == len(body["data"])
        return [item["id"] for item in body["data"]]

    assert await found("建东杯") == [in_title, in_summary]
    assert await found("东") == [in_title, in_summary]  # one character: no trigram, still right
    assert await found("fINAL") == [in_title]
    assert await found("  final  ") == [in_title]  # trimmed
    assert await found("决赛回放") == [in_title]
    assert await found("不存在的词") == []
    # The term matches within one field, not by gluing the title to the summary.
    assert await found("第二轮精彩") == []


async def test_search_like_metacharacters_match_literally(client, token, sql):
    percent = add_video(sql, "胜率 100% 的队伍", published="2024-05-03 10:00:00+08")
    underscore = add_video(sql, "file_name 视频", published="2024-05-02 10:00:00+08")
    backslash = add_video(sql, "路径 a\\b", published="2024-05-01 10:00:00+08")
    add_video(sql, "filexname 100 分")

    async def found(term: str) -> list[int]:
        body = await get_json(client, LIST + "?size=100", token, method="POST", data={"search": term})
        return [item["id"] for item in body["data"]]

    assert await found("%") == [percent]
    assert await found("0%") == [percent]
    assert await found("_") == [underscore]
    assert await found("e_n") == [underscore]
    assert await found("\\") == [backslash]
    assert await found("a\\b") == [backslash]


async def test_detail_with_file_and_play_url(client, token, sql):
    competition = add_competition(sql)
    file_id = add_file(sql, "/media/videos/final.mp4", original="决赛.mp4", size=2048)
    video_id = add_video(sql, "决赛", summary="简介", file_id=file_id, competition_id=competition, type=2,
                         browse_num=3, main_img_url="/media/cover.jpg")
    body = await get_json(client, detail_path(video_id), token)
    host = client.make_url("/").host
    port = client.make_url("/").port
    assert body == {
        "id": video_id,
        "title": "决赛",
        "summary": "简介",
        "main_img_url": f"http://{host}:{port}/media/cover.jpg",
        "competition_id": competition,
        "browse_num": 3,
        "type": 2,
        "publish_time": "2024-05-01 10:00:00",
        "play_time": "2024-05-20 19:30:00",
        "file": {"cate": "video", "name": f"http://{host}:{port}/media/videos/final.mp4", "original": "决赛.mp4",
                 "size": 2048},
        "play_url": f"http://{host}:{port}/media/videos/final.mp4",
    }


async def test_detail_play_url_uses_public_url_and_keeps_absolute_urls(make_client, sql):
    client = await make_client(counter_flush_interval=3600, public_url="https://club.example.com/")
    token = await login(client)
    relative = add_video(sql, "相对", file_id=add_file(sql, "/media/v.mp4"))
    absolute = add_video(sql, "绝对", file_id=add_file(sql, "https://cdn.example.com/v.mp4"))
    no_file = add_video(sql, "无文件")
    assert (await get_json(client, detail_path(relative), token))["play_url"] == "https://club.example.com/media/v.mp4"
    assert (await get_json(client, detail_path(absolute), token))["play_url"] == "https://cdn.example.com/v.mp4"
    body = await get_json(client, detail_path(no_file), token)
    assert body["play_url"] == "" and body["file"] == {"cate": "", "name": "", "original": "", "size": 0}


async def test_detail_not_found(client, token, sql):
    hidden = add_video(sql, "隐藏", status=0)
    for video_id in (hidden, 12345, 2**64):
        path = detail_path(video_id)
        body = await get_json(client, path, token, status=404)
        assert body == {"msg": "赛事视频不存在", "error_code": 30004, "request_url": path}


async def test_views_show_before_they_are_flushed(client, token, sql):
    video_id = add_video(sql, "决赛", browse_num=10)
    for _ in range(3):
        body = await get_json(client, NOTIFY, token, method="POST", data={"id": video_id, "type": 1})
        assert body["error_code"] == 0
    assert (await get_json(client, detail_path(video_id), token))["browse_num"] == 13
    assert (await get_json(client, LIST, token))["data"][0]["browse_num"] == 13
    # Not in the database yet: counted in Redis until the next flush.
    assert sql("SELECT browse_num FROM videos WHERE id = %s", video_id) == [{"browse_num": 10}]


async def test_pages_and_totals_are_cached_until_videos_change(client, token, sql):
    ids = [add_video(sql, f"视频{i}", published=f"2024-05-0{i + 1} 10:00:00+08") for i in range(3)]
    first = await get_json(client, LIST + "?size=2", token)
    assert [item["id"] for item in first["data"]] == [ids[2], ids[1]] and first["total"] == 3
    newest = add_video(sql, "新视频", published="2024-06-01 10:00:00+08")
    # The page and its total are served from the cache until a content change is announced.
    assert await get_json(client, LIST + "?size=2", token) == first
    # Searches are never cached.
    found = await get_json(client, LIST + "?size=2", token, method="POST", data={"search": "视频"})
    assert found["data"][0]["id"] == newest
    await client.server.app[content_cache_key].invalidate("video")
    body = await get_json(client, LIST + "?size=2", token)
    assert [item["id"] for item in body["data"]] == [newest, ids[2]] and body["total"] == 4
