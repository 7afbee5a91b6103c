"""Chat history of a live room (guest/:id)."""

from __future__ import annotations

from aiohttp import web

from ..keys import realtime_key, settings_key
from ..lib import encoding
from ..store import media
from ..web.auth import current_user_id
from ..web.fields import PathId, Spec
from ..web.openapi import array, boolean, describe, integer, obj, string
from ..web.params import MAX_ID
from ..web.responses import json_response

routes = web.RouteTableDef()

# Beyond bigint: no room has such an id, and the query must not fail on it.

CHAT_MESSAGE = obj(
    "聊天消息",
    type=string("消息类型，恒为 SEND_ALL"),
    room_id=integer("直播间（直播 ID）"),
    uuid=string("发送者当时的连接标识"),
    content=string("消息内容（已过滤，仅保留表情图片）"),
    user=string('发送者，JSON 字符串：{"username": ..., "head_img": ...}；发送者没有头像时 head_img 为本站的默认头像'),
    msg_time=integer("发送时间，unix 秒"),
    myself=boolean("是否当前用户发送"),
)


class LiveRoom(Spec):
    id = PathId("直播 ID（直播间）")


@routes.get(r"/api/v1/guest/{id:[0-9]+}")
@describe(
    "聊天记录",
    tag="视频与直播",
    params=LiveRoom,
    response=array(CHAT_MESSAGE, "最近的消息，按时间从早到晚"),
    description="返回直播间最近的群发消息（条数见配置 chat_history_size，默认 50），按时间从早到晚；"
    "user 为 JSON 字符串，myself 仅对当前用户自己发送的消息为 true。",
)
async def list_chat_history(request: web.Request) -> web.Response:
    user_id = current_user_id(request)
    room_id = (await LiveRoom.read(request)).id
    if not 1 <= room_id <= MAX_ID:
        return json_response([])
    limit = request.config_dict[settings_key].chat_history_size
    rows = await request.config_dict[realtime_key].history.recent(room_id, limit)
    return json_response(
        [
            {
                "type": "SEND_ALL",
                "room_id": room_id,
                "uuid": row["uuid"],
                "content": row["content"],
                # Rebuilt in a fixed key order: jsonb keeps its own, the stream the sender's.
                "user": encoding.dumps_str(
                    {"username": row["user_info"].get("username", ""),
                     "head_img": media.avatar(row["user_info"].get("head_img"))}
                ),
                "msg_time": int(row["msg_time"]),
                "myself": row["user_id"] == user_id,
            }
            for row in rows
        ]
    )
