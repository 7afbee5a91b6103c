"""Uploaded pictures keep their pixels only (jiandong.store.media): on every route that takes one, for every
kind of picture accepted, comments, EXIF, XMP, ICC profiles and text chunks are gone from what is stored."""

from __future__ import annotations

import base64
import itertools

import aiohttp
import pytest

from tests.helpers.admin import add_admin, csrf, sign_in
from tests.helpers.media import ACCEPTED, assert_pixels_only, hostile_gif

_names = itertools.count(1)

# Every console form that takes a picture: (path, the other fields it needs, the picture's field, folder).
CONSOLE_UPLOADS = [
    ("/admin/competitions/new", lambda: {"title": "决赛", "play_time": "2030-01-01T10:00"}, "cover", "competitions"),
    ("/admin/teams/new", lambda: {"name": f"球队{next(_names)}", "sort": "1"}, "logo_file", "teams"),
    ("/admin/players/new", lambda: {"cn_name": "林", "number": "23", "sex": "1"}, "photo_file", "players"),
    ("/admin/videos/new", lambda: {"title": "回放", "type": "1", "publish_time": "2030-01-01T10:00",
                                   "video_url": "https://cdn.example.com/h.mp4"}, "cover", "videos"),
    ("/admin/banners/new", lambda: {"title": "横幅", "position": "2", "sort": "1"}, "image", "banners"),
    ("/admin/lives/new", lambda: {"title": "直播", "app_name": "live", "stream_name": f"s{next(_names)}",
                                  "publish_time": "2030-01-01T10:00"}, "cover", "lives"),
]


def stored(settings, folder: str) -> list:
    return sorted((settings.media_path / folder).rglob("*.*"))


@pytest.mark.parametrize(("kind", "make", "ext", "_upright"), ACCEPTED, ids=[a[0] for a in ACCEPTED])
async def test_an_avatar_keeps_its_pixels_only(client, token, sql, settings, kind, make, ext, _upright):
    data = make()
    form = aiohttp.FormData()
    form.add_field("head_img", data, filename=f"a.{ext}", content_type="application/octet-stream")
    # As base64 text (what the pages send) and as a file: the same pixels, stored once.
    for body in ({"head_img": base64.b64encode(data).decode()}, form):
        resp = await client.post("/api/v1/user/save", data=body, headers={"token": token})
        assert resp.status == 200, await resp.text()
        files = stored(settings, "avatars")
        assert len(files) == 1 and files[0].suffix == f".{ext}"
        assert_pixels_only(files[0].read_bytes(), ext)
    (row,) = sql("SELECT head_img FROM users")
    assert row["head_img"].endswith(files[0].name)


@pytest.mark.parametrize(("path", "fields", "field", "folder"), CONSOLE_UPLOADS, ids=[c[3] for c in CONSOLE_UPLOADS])
async def test_a_console_picture_keeps_its_pixels_only(client, sql, settings, path, fields, field, folder):
    add_admin(sql, "writer", "editor")
    assert (await sign_in(client, "writer")).status == 302
    for kind, make, ext, _upright in ACCEPTED:
        form = aiohttp.FormData()
        form.add_field("csrf_token", await csrf(client))
        for name, value in fields().items():
            form.add_field(name, value)
        form.add_field(field, make(), filename=f"{kind}.{ext}", content_type="application/octet-stream")
        before = set(stored(settings, folder))
        resp = await client.post(path, data=form, allow_redirects=False)
        assert resp.status == 302, (kind, await resp.text())
        (new,) = set(stored(settings, folder)) - before
        assert new.suffix == f".{ext}"
        assert_pixels_only(new.read_bytes(), ext)


async def test_a_gif_is_refused_comment_and_all(client, token, sql, settings):
    resp = await client.post("/api/v1/user/save", data={"head_img": base64.b64encode(hostile_gif()).decode()},
                             headers={"token": token})
    assert resp.status == 400 and (await resp.json())["error_code"] == 99999
    assert not settings.media_path.joinpath("avatars").exists()
    assert sql("SELECT head_img FROM users") == [{"head_img": ""}]
