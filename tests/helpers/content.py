"""Content as the console would have published it: files, competitions, videos, lives, banners."""

from __future__ import annotations

import asyncio

from tests.helpers.api import get_json

NOTIFY = "/api/v1/competition/play_notify"


def add_file(sql, name: str, *, cate: str = "video", original: str = "match.mp4", size: int = 1234) -> int:
    return sql(
        "INSERT INTO files (cate, name, original, size) VALUES (%s, %s, %s, %s) RETURNING id",
        cate, name, original, size,
    )[0]["id"]


def add_competition(sql, title: str = "联赛", play_time: str = "2024-05-20 19:30:00+08") -> int:
    return sql("INSERT INTO competitions (title, play_time) VALUES (%s, %s) RETURNING id", title, play_time)[0]["id"]


def add_video(sql, title: str, *, summary: str = "", published: str = "2024-05-01 10:00:00+08", file_id=None,
              competition_id=None, type: int = 1, status: int = 1, browse_num: int = 0,
              main_img_url: str = "") -> int:
    return sql(
        "INSERT INTO videos (title, summary, publish_time, file_id, competition_id, type, status, browse_num,"
        " main_img_url) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING id",
        title, summary, published, file_id, competition_id, type, status, browse_num, main_img_url,
    )[0]["id"]


def add_live(sql, title: str, *, summary: str = "", published: str = "2024-05-01 10:00:00+08", live_status: int = 0,
             status: int = 1, competition_id=None, browse_num: int = 0, online_show: int = 1,
             plug_flow: str = "rtmp://push.example.com/live/s?auth_key=SECRET-PUSH-KEY") -> int:
    stream = f"s{len(sql('SELECT id FROM lives')) + 1}"
    return sql(
        "INSERT INTO lives (title, summary, publish_time, live_status, status, competition_id, browse_num, stream_name,"
        " play_rtmp, play_flv, play_m3u8, plug_flow, online_show, main_img_url)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING id",
        title, summary, published, live_status, status, competition_id, browse_num, stream,
        f"rtmp://play.example.com/live/{stream}", f"https://play.example.com/live/{stream}.flv",
        f"https://play.example.com/live/{stream}.m3u8", plug_flow, online_show, f"/media/{stream}.jpg",
    )[0]["id"]


def add_banner(sql, position=1, *, title="t", img_id=None, img_url="", sort=0, status=1, jump_url=""):
    return sql(
        "INSERT INTO banners (title, description, position, img_id, img_url, jump_url, sort, status)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s) RETURNING id",
        title, f"{title} 描述", position, img_id, img_url, jump_url, sort, status,
    )[0]["id"]


async def play(client, token, item_id: int, kind: int, times: int = 1) -> None:
    results = await asyncio.gather(
        *(get_json(client, NOTIFY, token, method="POST", data={"id": item_id, "type": kind}) for _ in range(times))
    )
    assert all(body["error_code"] == 0 for body in results)
