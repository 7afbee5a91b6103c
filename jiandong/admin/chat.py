"""聊天管理 (moderators): the live rooms, a room's recent messages kept up to date in the page (static/live.js
polls a fragment), deleting a message, muting a user in the room or everywhere, the banned words."""

from __future__ import annotations

import re
from urllib.parse import urlencode

from aiohttp import web
from aiohttp_session import get_session

from ..keys import pg_key
from ..realtime.protocol import sanitize
from ..services import members, moderation
from ..services.admins import MODERATOR
from ..services.lives import STATUS_LABELS
from .errors import PageError
from .forms import read_form
from .inputs import path_id
from .render import flash, render, render_fragment
from .security import actor, requires

routes = web.RouteTableDef()

# An emoji tag as protocol.sanitize writes it.
_EMOJI_TAG = re.compile(r'<img class="emoji" src="[^"]*">')


def chat_html(content: str, emoji_path: str, emoji_served: bool) -> str:
    """A message as the pages show it (sanitised: text and emoji images); where this server does not serve
    the emoji images (no H5 build at /h5/), each emoji named instead of a broken image."""
    cleaned = sanitize(content, emoji_path)
    return cleaned if emoji_served else _EMOJI_TAG.sub('<span class="emoji-name">[表情]</span>', cleaned)


BASE = "/admin/chat"
# Durations offered by the mute form, in minutes.
DURATIONS = {10: "10 分钟", 60: "1 小时", 24 * 60: "1 天", 7 * 24 * 60: "7 天", 30 * 24 * 60: "30 天"}


def _room_id(request: web.Request) -> int:
    return path_id(request, "room", "直播间不存在")


@routes.get("/chat")
@requires(MODERATOR)
async def chat_rooms(request: web.Request) -> web.Response:
    pool = request.config_dict[pg_key]
    return await render(request, "admin/chat_rooms.html", {
        "rooms": await moderation.rooms(pool), "live_labels": STATUS_LABELS,
        "banned_words": await moderation.banned_words(pool)})


@routes.post("/chat/banned-words")
@requires(MODERATOR)
async def save_banned_words(request: web.Request) -> web.Response:
    words = await moderation.set_banned_words(request.config_dict, actor(request),
                                              (await read_form(request)).get("words")[:100_000])
    flash(await get_session(request), f"屏蔽词已保存（{len(words)} 个），对之后发送的消息生效")
    raise web.HTTPFound(BASE)


async def _room_context(request: web.Request, room_id: int) -> dict[str, object]:
    return {"room_id": room_id, "chat": await moderation.recent_messages(request.config_dict, room_id)}


@routes.get(r"/chat/{room:[0-9]+}")
@requires(MODERATOR)
async def chat_room(request: web.Request) -> web.Response:
    room_id = _room_id(request)
    pool = request.config_dict[pg_key]
    room = next((r for r in await moderation.rooms(pool) if r["id"] == room_id), None)
    mute_user = request.query.get("mute", "")[:18]
    # Who the form is about to mute, by name: a moderator checks before pressing.
    named = await members.get_user(pool, int(mute_user)) if mute_user.isdigit() and int(mute_user) > 0 else None
    return await render(request, "admin/chat_room.html", {
        **await _room_context(request, room_id), "room": room, "durations": DURATIONS,
        "mute_user": mute_user, "mute_name": named and (named["username"] or f"#{named['id']}"),
        "mute_reason": request.query.get("reason", "")[:200],
        "mutes": await moderation.active_mutes(pool, room_id)})


@routes.get(r"/chat/{room:[0-9]+}/messages")
@requires(MODERATOR)
async def chat_messages(request: web.Request) -> web.Response:
    """The message list alone, for the page to fetch every few seconds."""
    return await render_fragment(request, "admin/chat_messages.html", await _room_context(request, _room_id(request)))


@routes.post(r"/chat/{room:[0-9]+}/delete")
@requires(MODERATOR)
async def delete_message(request: web.Request) -> web.Response:
    room_id = _room_id(request)
    form = await read_form(request)
    # "stream_id": what the page sent before messages without one could be deleted.
    ref = (form.get("message") or form.get("stream_id"))[:40]
    try:
        await moderation.delete_message(request.config_dict, actor(request), room_id, ref)
    except moderation.ModerationError as exc:
        raise PageError(404, str(exc)) from None
    flash(await get_session(request), "消息已删除")
    raise web.HTTPFound(f"{BASE}/{room_id}")


@routes.post(r"/chat/{room:[0-9]+}/mute")
@requires(MODERATOR)
async def mute_user(request: web.Request) -> web.Response:
    room_id = _room_id(request)
    form = await read_form(request)
    user_raw, minutes_raw, reason = form.get("user_id").strip(), form.get("minutes"), form.get("reason")
    session = await get_session(request)
    # Refused: back to the room with the form as it was (the user, the reason), saying why.
    again = f"{BASE}/{room_id}?" + urlencode({"mute": user_raw[:18], "reason": reason[:200]}) + "#mute"
    if not (user_raw.isdigit() and len(user_raw) < 19):
        flash(session, "未能禁言：用户 ID 须为数字", refused=True, todo="点消息旁的「禁言」可自动填入用户 ID。")
        raise web.HTTPFound(again)
    if not (minutes_raw.isdigit() and len(minutes_raw) < 8):
        flash(session, "未能禁言：时长无效", refused=True, todo="请从列表中选择时长。")
        raise web.HTTPFound(again)
    scope = None if form.get("scope") == "all" else room_id
    try:
        await moderation.mute(request.config_dict, actor(request), int(user_raw), scope, int(minutes_raw), reason)
    except moderation.ModerationError as exc:
        flash(session, f"未能禁言：{exc}", refused=True, todo="请核对用户和时长后重试。")
        raise web.HTTPFound(again) from None
    flash(session, "已禁言" + ("（全部直播间）" if scope is None else "（本直播间）"))
    raise web.HTTPFound(f"{BASE}/{room_id}")


@routes.post(r"/chat/{room:[0-9]+}/mutes/{mute:[0-9]+}/lift")
@requires(MODERATOR)
async def lift_mute(request: web.Request) -> web.Response:
    room_id = _room_id(request)
    mute_id = path_id(request, "mute", "禁言不存在或已解除")
    try:
        await moderation.lift(request.config_dict, actor(request), mute_id)
    except moderation.ModerationError as exc:
        raise PageError(404, str(exc)) from None
    flash(await get_session(request), "禁言已解除")
    raise web.HTTPFound(f"{BASE}/{room_id}")
