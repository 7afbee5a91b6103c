import base64
import hashlib
import io
import re
from pathlib import Path
from urllib.parse import urlencode, urlsplit

import aiohttp
import pytest
from PIL import Image

from jiandong.keys import content_cache_key
from tests.helpers.api import login
from tests.helpers.content_cache import listening
from tests.helpers.waiting import until


async def test_user_info_requires_token(client):
    resp = await client.get("/api/v1/user/info")
    assert resp.status == 401
    assert await resp.json() == {
        "msg": "Token已过期或无效Token",
        "error_code": 10003,
        "request_url": "/api/v1/user/info",
    }


async def test_user_info_unknown_token(client):
    resp = await client.get("/api/v1/user/info", headers={"token": "0" * 32})
    assert resp.status == 401
    assert (await resp.json())["error_code"] == 10003


async def test_dev_login_then_user_info(client, sql):
    token = await login(client, "alice-code")
    assert len(token) == 32 and token == token.lower()
    resp = await client.get("/api/v1/user/info", headers={"token": token})
    assert resp.status == 200
    body = await resp.json()
    assert body["username"] == "dev-alice-code"
    assert body["mobile"] == "" and body["sex"] == "保密" and body["sex_value"] == 0
    assert body["member_status"] == 0 and body["is_member"] == 0 and body["member_expire_time"] == ""
    again = await login(client, "alice-code")
    assert again != token
    assert len(sql("SELECT id FROM users")) == 1


# user/save ---------------------------------------------------------------------------------------

SAVE = "/api/v1/user/save"
MIB = 1024 * 1024


def image_bytes(fmt: str, size: tuple[int, int] = (3, 2), color: tuple[int, int, int] = (200, 30, 30)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, fmt)
    return buf.getvalue()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


async def post_big_form(client, token: str, fields: dict[str, str]):
    """A form-urlencoded POST as jQuery sends it; streamed, as aiohttp wants for bodies over 1 MiB."""
    body = io.BytesIO(urlencode(fields).encode())
    headers = {"token": token, "Content-Type": "application/x-www-form-urlencoded"}
    return await client.post(SAVE, data=body, headers=headers)


def user_row(sql):
    (row,) = sql("SELECT username, sex, head_img, profile_edited FROM users")
    return row


async def assert_param_error(resp):
    assert resp.status == 400, await resp.text()
    body = await resp.json()
    assert body["error_code"] == 99999 and body["request_url"] == SAVE
    return body


async def test_save_username_and_sex(client, token, sql):
    resp = await client.post(SAVE, data={"username": "  张三李四  ", "sex": "2"}, headers={"token": token})
    assert resp.status == 200
    assert await resp.json() == {"msg": "success", "error_code": 0, "request_url": SAVE}
    row = user_row(sql)
    assert row["username"] == "张三李四" and row["sex"] == 2 and row["profile_edited"] is True
    info = await (await client.get("/api/v1/user/info", headers={"token": token})).json()
    assert info["username"] == "张三李四" and info["sex"] == "女" and info["sex_value"] == 2
    # Once edited, a new login no longer copies WeChat's nickname over the user's choice.
    await login(client)
    assert (user_row(sql))["username"] == "张三李四"


async def test_save_only_the_given_fields(client, token, sql):
    before = user_row(sql)
    resp = await client.post(SAVE, json={"sex": 1}, headers={"token": token})
    assert resp.status == 200
    row = user_row(sql)
    assert row["sex"] == 1 and row["username"] == before["username"] and row["head_img"] == before["head_img"]
    assert row["profile_edited"] is True


async def test_save_username_bounds_are_characters(client, token, sql):
    resp = await client.post(SAVE, data={"username": "a" * 25}, headers={"token": token})
    assert resp.status == 200
    assert (user_row(sql))["username"] == "a" * 25
    resp = await client.post(SAVE, data={"username": "四个汉字"}, headers={"token": token})
    assert resp.status == 200
    assert (user_row(sql))["username"] == "四个汉字"


async def test_save_username_too_short_or_long_saves_nothing(client, token, sql):
    before = user_row(sql)
    for name in ("abc", "三个字", "a" * 26, " " * 2 + "abc" + " " * 2, "ab\x00cd"):
        resp = await client.post(SAVE, data={"username": name, "sex": "1"}, headers={"token": token})
        await assert_param_error(resp)
    assert user_row(sql) == before
    assert before["sex"] == 0 and before["profile_edited"] is False


async def test_save_sex_invalid(client, token, sql):
    before = user_row(sql)
    for sex in ("3", "-1", "x", "1.5"):
        resp = await client.post(SAVE, data={"sex": sex, "username": "valid name"}, headers={"token": token})
        await assert_param_error(resp)
    assert user_row(sql) == before


async def test_save_nothing_given(client, token, sql):
    await assert_param_error(await client.post(SAVE, data={}, headers={"token": token}))
    await assert_param_error(
        await client.post(SAVE, data={"username": " ", "sex": "", "head_img": ""}, headers={"token": token})
    )
    assert (user_row(sql))["profile_edited"] is False


async def test_save_requires_token(client):
    resp = await client.post(SAVE, data={"sex": "1"})
    assert resp.status == 401
    assert (await resp.json())["error_code"] == 10003


async def check_stored_avatar(client, settings, sql, token, url: str, data: bytes, ext: str, mime: str,
                              base: str | None = None):
    """The avatar is on disk, served at its path, recorded in files and shown by user/info as an absolute URL
    under `base` (the public URL; by default the test server's own address)."""
    path = urlsplit(url).path
    stored = Path(settings.media_path) / path.removeprefix("/media/")
    kept = stored.read_bytes()
    sha = hashlib.sha256(kept).hexdigest()
    assert re.fullmatch(rf"/media/avatars/\d{{6}}/{sha}\.{ext}", path), url
    # Re-encoded (metadata dropped), but the same picture.
    with Image.open(io.BytesIO(kept)) as got, Image.open(io.BytesIO(data)) as sent:
        assert got.size == sent.size and got.format == {"jpg": "JPEG", "png": "PNG"}[ext]
    resp = await client.get(path)
    assert resp.status == 200
    assert await resp.read() == kept
    data = kept
    (row,) = sql("SELECT cate, name, size, mime, sha256, user_id FROM files")
    (user,) = sql("SELECT id, head_img, profile_edited FROM users")
    assert row == {"cate": "image", "name": url, "size": len(data), "mime": mime, "sha256": sha, "user_id": user["id"]}
    assert user["head_img"] == url and user["profile_edited"] is True
    info = await (await client.get("/api/v1/user/info", headers={"token": token})).json()
    assert info["head_img"] == (base + url if base else str(client.make_url(url)))


async def test_save_base64_png(client, token, sql, settings):
    data = image_bytes("PNG")
    resp = await client.post(SAVE, data={"head_img": b64(data)}, headers={"token": token})
    assert resp.status == 200, await resp.text()
    (user,) = sql("SELECT head_img FROM users")
    # Stored as a path on this site; without a public_url (development mode) answered under the request's host.
    assert user["head_img"].startswith("/media/avatars/")
    await check_stored_avatar(client, settings, sql, token, user["head_img"], data, "png", "image/png")


async def test_save_base64_jpeg_with_data_prefix_and_public_url(make_client, settings, sql):
    client = await make_client(public_url="https://club.example.com/")
    token = await login(client)
    data = image_bytes("JPEG", size=(8, 8))
    resp = await client.post(
        SAVE, json={"head_img": "data:image/jpeg;base64," + b64(data)}, headers={"token": token}
    )
    assert resp.status == 200, await resp.text()
    (user,) = sql("SELECT head_img FROM users")
    assert user["head_img"].startswith("/media/avatars/")
    await check_stored_avatar(client, settings, sql, token, user["head_img"], data, "jpg", "image/jpeg",
                              "https://club.example.com")


async def test_save_same_image_twice_is_one_file(client, token, sql, settings):
    data = image_bytes("PNG")
    for _ in range(2):
        resp = await client.post(SAVE, data={"head_img": b64(data)}, headers={"token": token})
        assert resp.status == 200
    assert len(sql("SELECT id FROM files")) == 1
    files = [p for p in Path(settings.media_path, "avatars").rglob("*") if p.is_file()]
    assert len(files) == 1 and files[0].name == hashlib.sha256(files[0].read_bytes()).hexdigest() + ".png"


async def test_save_multipart_upload(client, token, sql, settings):
    data = image_bytes("PNG", size=(5, 5))
    # Unquoted, as browsers send file names (some older ones with the full local path).
    form = aiohttp.FormData(quote_fields=False)
    form.add_field("head_img", data, filename="C:\\photos\\me.png", content_type="image/png")
    form.add_field("sex", "1")
    resp = await client.post(SAVE, data=form, headers={"token": token})
    assert resp.status == 200, await resp.text()
    (user,) = sql("SELECT head_img, sex FROM users")
    assert user["sex"] == 1
    await check_stored_avatar(client, settings, sql, token, user["head_img"], data, "png", "image/png")
    assert sql("SELECT original FROM files") == [{"original": "me.png"}]


async def test_save_rejects_what_is_not_a_jpeg_or_png(client, token, sql, settings):
    before = user_row(sql)
    gif = image_bytes("GIF")
    broken = bytearray(image_bytes("PNG", size=(16, 16)))
    broken[-20] ^= 0xFF  # corrupts the image data: its checksum no longer matches
    bad = [
        b64(b"definitely not an image"),
        "not base64 at all!",
        b64(gif),
        "data:image/gif;base64," + b64(gif),
        b64(bytes(broken)),
        b64(image_bytes("PNG")[:30]),
        "javascript:alert(1)",
    ]
    for value in bad:
        body = await assert_param_error(
            await client.post(SAVE, data={"head_img": value, "sex": "1"}, headers={"token": token})
        )
        assert body["msg"].startswith("参数错误")
    form = aiohttp.FormData()
    form.add_field("head_img", b"plain text", filename="x.png", content_type="image/png")
    await assert_param_error(await client.post(SAVE, data=form, headers={"token": token}))
    assert user_row(sql) == before
    assert sql("SELECT id FROM files") == []
    assert not Path(settings.media_path, "avatars").exists()


async def test_save_rejects_too_many_pixels(client, token, sql):
    # 25 megapixels of one colour compress to a few KiB: a small upload that would decode huge.
    buf = io.BytesIO()
    Image.new("1", (5000, 5000)).save(buf, "PNG")
    assert len(buf.getvalue()) < 100_000
    await assert_param_error(await client.post(SAVE, data={"head_img": b64(buf.getvalue())}, headers={"token": token}))
    assert sql("SELECT id FROM files") == []


async def test_save_size_limit_is_2_mib(client, token, sql):
    png = image_bytes("PNG")
    # Bytes after the PNG's end chunk are ignored by decoders, so this is a valid 2 MiB PNG file.
    exact = png + b"\0" * (2 * MIB - len(png))
    resp = await post_big_form(client, token, {"head_img": b64(exact)})
    assert resp.status == 200, await resp.text()
    # Stored re-encoded: the trailing bytes are gone.
    (stored,) = sql("SELECT size FROM files")
    assert 0 < stored["size"] < MIB
    over = exact + b"\0"
    body = await assert_param_error(await post_big_form(client, token, {"head_img": b64(over)}))
    assert "2 MiB" in body["msg"]
    form = aiohttp.FormData()
    form.add_field("head_img", io.BytesIO(over), filename="big.png", content_type="image/png")
    await assert_param_error(await client.post(SAVE, data=form, headers={"token": token}))
    assert len(sql("SELECT id FROM files")) == 1


async def test_save_unwritable_media_dir(client, token, sql, settings):
    # A regular file where the avatars directory should be: creating it fails, even as root.
    Path(settings.media_path, "avatars").write_bytes(b"")
    before = user_row(sql)
    resp = await client.post(
        SAVE, data={"username": "new name", "head_img": b64(image_bytes("PNG"))}, headers={"token": token}
    )
    assert resp.status == 500
    assert await resp.json() == {"msg": "保存图片失败", "error_code": 40001, "request_url": SAVE}
    assert user_row(sql) == before
    assert sql("SELECT id FROM files") == []


async def test_save_head_img_url_as_is(client, token, sql):
    url = "https://thirdwx.qlogo.cn/mmopen/abc/132?x=1"
    resp = await client.post(SAVE, data={"head_img": url}, headers={"token": token})
    assert resp.status == 200
    row = user_row(sql)
    assert row["head_img"] == url and row["profile_edited"] is True
    assert sql("SELECT id FROM files") == []
    for bad in ("https://" + "a" * 493 + ".png", "http://", "https://exa mple.com/a.png"):
        await assert_param_error(await client.post(SAVE, data={"head_img": bad}, headers={"token": token}))
    assert (user_row(sql))["head_img"] == url
    longest = "https://" + "a" * 488 + ".png"
    assert len(longest) == 500
    assert (await client.post(SAVE, data={"head_img": longest}, headers={"token": token})).status == 200


async def test_save_camera_jpeg_with_preview(client, token, sql, settings):
    # Phones write JPEGs with an embedded preview image (MPO); they are JPEG files and accepted as such.
    buf = io.BytesIO()
    first, second = Image.new("RGB", (8, 8), (1, 2, 3)), Image.new("RGB", (4, 4), (4, 5, 6))
    first.save(buf, "MPO", save_all=True, append_images=[second])
    data = buf.getvalue()
    assert Image.open(io.BytesIO(data)).format == "MPO"
    resp = await client.post(SAVE, data={"head_img": b64(data)}, headers={"token": token})
    assert resp.status == 200, await resp.text()
    (user,) = sql("SELECT head_img FROM users")
    await check_stored_avatar(client, settings, sql, token, user["head_img"], data, "jpg", "image/jpeg")


async def test_save_disabled_user(client, token, sql):
    sql("UPDATE users SET is_disabled = true")
    resp = await client.post(SAVE, data={"sex": "1", "head_img": b64(image_bytes("PNG"))}, headers={"token": token})
    assert resp.status == 404
    assert await resp.json() == {"msg": "用户不存在或被禁用", "error_code": 10004, "request_url": SAVE}
    row = user_row(sql)
    assert row["sex"] == 0 and row["head_img"] == "" and row["profile_edited"] is False
    assert sql("SELECT id FROM files") == []


async def test_user_info_cache_follows_changes_in_other_processes(make_client, sql, redis_sync, settings):
    first = await make_client()
    second = await make_client()
    await until(lambda: listening(redis_sync, settings, 2), "both cache listeners")
    token = await login(first, "cache-code")
    headers = {"token": token}
    assert (await (await second.get("/api/v1/user/info", headers=headers)).json())["sex"] == "保密"
    resp = await first.post("/api/v1/user/save", data={"sex": "2"}, headers=headers)
    assert resp.status == 200

    async def changed() -> bool:
        return (await (await second.get("/api/v1/user/info", headers=headers)).json())["sex"] == "女"

    await until(changed, "the second process to serve the new profile")


async def test_cached_membership_turns_expired_on_time(client, sql):
    token = await login(client, "expiring-member")
    sql("UPDATE users SET member_status = 1, member_expire_time = now() + interval '1 second'")
    client.server.app[content_cache_key].drop_local()
    headers = {"token": token}
    body = await (await client.get("/api/v1/user/info", headers=headers)).json()
    assert body["member_status"] == 1 and body["is_member"] == 1
    assert sql("SELECT member_expire_time > now() AS ahead FROM users") == [{"ahead": True}]

    async def expired() -> bool:
        body = await (await client.get("/api/v1/user/info", headers=headers)).json()
        return body["member_status"] == 3 and body["is_member"] == 0

    # The cached answer (kept 30 s) turns as the membership runs out, not when the entry does.
    await until(expired, "the membership to show expired", wait=10)


async def test_avatar_loses_its_metadata_and_stands_upright(client, token, sql, settings):
    img = Image.new("RGB", (40, 20), "red")
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90° to display
    exif[0x8825] = {1: "N", 2: (39.0, 54.0, 0.0)}  # GPS position
    out = io.BytesIO()
    img.save(out, "JPEG", exif=exif)
    resp = await client.post(SAVE, data={"head_img": b64(out.getvalue())}, headers={"token": token})
    assert resp.status == 200, await resp.text()
    (user,) = sql("SELECT head_img FROM users")
    stored = Path(settings.media_path) / urlsplit(user["head_img"]).path.removeprefix("/media/")
    with Image.open(stored) as kept:
        assert kept.size == (20, 40)
        assert not kept.getexif()
        assert b"Exif" not in stored.read_bytes()


async def test_large_avatar_is_scaled_down(client, token, sql, settings):
    out = io.BytesIO()
    Image.new("RGB", (3000, 1500), "blue").save(out, "PNG")
    resp = await client.post(SAVE, data={"head_img": b64(out.getvalue())}, headers={"token": token})
    assert resp.status == 200, await resp.text()
    (user,) = sql("SELECT head_img FROM users")
    stored = Path(settings.media_path) / urlsplit(user["head_img"]).path.removeprefix("/media/")
    with Image.open(stored) as kept:
        assert kept.size == (1024, 512)


async def test_disabled_user_is_10004(client, token, sql):
    sql("UPDATE users SET is_disabled = true")
    client.server.app[content_cache_key].drop_local()
    resp = await client.get("/api/v1/user/info", headers={"token": token})
    assert resp.status == 404
    assert (await resp.json())["error_code"] == 10004


@pytest.mark.parametrize("name", ["<svg onload=alert(1)>", "Zhang<b>San", 'say "hi" now', "tab\there", "a\u2028bcd"])
async def test_save_refuses_markup_and_control_characters_in_names(client, token, sql, name):
    before = user_row(sql)
    await assert_param_error(await client.post(SAVE, data={"username": name, "sex": "1"}, headers={"token": token}))
    assert user_row(sql) == before


@pytest.mark.parametrize(
    "value",
    [
        "javascript:alert(1)",
        "JavaScript:alert(document.cookie)//.png",
        "data:text/html,<script>alert(1)</script>",
        "data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==",
        "vbscript:msgbox(1)",
        'https://cdn.example.com/a.png" onerror="alert(1)',
        "https://cdn.example.com/a.png'><script>alert(1)</script>",
        "http:///no-host.png",
    ],
)
async def test_save_head_img_takes_only_http_urls_or_images(client, token, sql, value):
    before = user_row(sql)
    await assert_param_error(await client.post(SAVE, data={"head_img": value, "sex": "1"}, headers={"token": token}))
    assert user_row(sql) == before
