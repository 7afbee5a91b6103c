"""A user without an avatar (head_img "", as after a WeChat login whose profile has none) is shown the
default avatar, a picture of this server under /media/, wherever the API or the chat shows a user."""

from __future__ import annotations

import io
import json

import pytest
from PIL import Image

from jiandong.integrations.wechat import dev_openid
from tests.helpers.api import login
from tests.helpers.realtime import FAST, frame_of, join, rows_eventually, send, send_and_ack

pytestmark = pytest.mark.usefixtures("chat_rooms")

WECHAT_AVATAR = "https://thirdwx.qlogo.cn/mmopen/vi_32/abc/132"


def media_base(client) -> str:
    return str(client.make_url("/media/"))


async def assert_default_avatar(client, url: str, base: str | None = None) -> None:
    """`url` is the default avatar: under the server's /media/ (or `base`), and a picture it serves."""
    base = base or media_base(client)
    assert isinstance(url, str) and url.startswith(base), url
    resp = await client.get("/media/" + url[len(base):])
    assert resp.status == 200 and resp.content_type == "image/png"
    with Image.open(io.BytesIO(await resp.read())) as img:
        assert img.format == "PNG" and img.width == img.height >= 64


def add_card(sql, code: str) -> int:
    user_id = sql("SELECT id FROM users WHERE openid = %s", dev_openid(code))[0]["id"]
    sql("INSERT INTO players (user_id, cn_name) VALUES (%s, '张三')", user_id)
    return user_id


async def test_user_and_member_info_answer_the_default_avatar(client, sql):
    token = await login(client, "no-avatar")
    add_card(sql, "no-avatar")
    assert sql("SELECT head_img FROM users") == [{"head_img": ""}]
    headers = {"token": token}
    info = await (await client.get("/api/v1/user/info", headers=headers)).json()
    await assert_default_avatar(client, info["head_img"])
    card = await (await client.get("/api/v1/member/info", headers=headers)).json()
    assert card["head_img"] == info["head_img"]
    # Their own avatar, once they have one, as it is.
    sql("UPDATE users SET head_img = %s", WECHAT_AVATAR)
    resp = await client.post("/api/v1/user/save", data={"sex": "1"}, headers=headers)  # drops the cached answer
    assert resp.status == 200
    assert (await (await client.get("/api/v1/user/info", headers=headers)).json())["head_img"] == WECHAT_AVATAR
    assert (await (await client.get("/api/v1/member/info", headers=headers)).json())["head_img"] == WECHAT_AVATAR


async def test_the_default_avatar_follows_the_public_url(make_client, sql):
    client = await make_client(public_url="https://club.example.com/")
    token = await login(client, "no-avatar")
    info = await (await client.get("/api/v1/user/info", headers={"token": token})).json()
    assert info["head_img"].startswith("https://club.example.com/media/")
    await assert_default_avatar(client, info["head_img"], base="https://club.example.com/media/")


async def test_chat_frames_and_history_show_the_default_avatar(make_client, sql):
    one = await make_client(**FAST)
    two = await make_client(**FAST)
    token_a = await login(one, "ann")
    token_b = await login(two, "ben")
    watcher, uuid_b = await join(two, 9, token_b)
    a = await one.ws_connect("/ws")
    await send(a, type="LOGIN", room_id="9", token=token_a)
    echo = await frame_of(a, "LOGIN", myself=True)
    default = echo["user"]["head_img"]
    await assert_default_avatar(one, default)
    # Every frame that carries ann, on either process: LOGIN, SEND_ALL, SEND_ONE, LOGOUT.
    heard = [await frame_of(watcher, "LOGIN", uuid=echo["uuid"])]
    await send_and_ack(a, token_a, 9, "加油")
    heard.append(await frame_of(watcher, "SEND_ALL"))
    await send(a, type="SEND_ONE", room_id=9, send_to_one=uuid_b, content="悄悄话", token=token_a)
    heard.append(await frame_of(a, "SEND_ONE"))
    heard.append(await frame_of(watcher, "SEND_ONE"))
    await send(a, type="LOGOUT", room_id=9)
    heard.append(await frame_of(watcher, "LOGOUT"))
    assert [(f["type"], f["user"]) for f in heard] == [
        (kind, {"username": "dev-ann", "head_img": default})
        for kind in ("LOGIN", "SEND_ALL", "SEND_ONE", "SEND_ONE", "LOGOUT")
    ]
    # A viewer without a token is shown the default avatar beside its own arrival too.
    viewer = await two.ws_connect("/ws?room_id=9")
    await assert_default_avatar(two, (await frame_of(viewer, "LOGIN", myself=True))["user"]["head_img"])

    # Stored as the user had it, so the history answers the default of the server that reads it.
    (row,) = await rows_eventually(sql, 1)
    assert row["user_info"] == {"username": "dev-ann", "head_img": ""}
    # A message stored before senders' avatars were kept has no head_img at all.
    sql("INSERT INTO chat_messages (room_id, uuid, content, user_info, msg_time)"
        " VALUES (9, 'x-1', '老消息', '{}', now())")
    history = await (await two.get("/api/v1/guest/9", headers={"token": token_b})).json()
    assert [m["content"] for m in history] == ["加油", "老消息"]
    for message in history:
        user = json.loads(message["user"])
        assert user["head_img"] == media_base(two) + default[len(media_base(one)):]
    await assert_default_avatar(two, json.loads(history[0]["user"])["head_img"])
