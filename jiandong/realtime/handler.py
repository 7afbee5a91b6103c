"""The chat websocket: LOGIN, SEND_ALL, SEND_ONE and LOGOUT of one connection (DESIGN.md §4)."""

from __future__ import annotations

import logging
import time
import typing

import psycopg2
from aiohttp import WSMsgType, web
from redis.exceptions import RedisError
from yarl import URL

from ..errors import (
    ApiError,
    Forbidden,
    InternalError,
    LiveNotFound,
    OperationError,
    Throttled,
    TokenInvalid,
)
from ..keys import outages_key, realtime_key
from ..lib import encoding
from ..lib.logthrottle import JUNK
from ..services.standing import Action, check_standing
from ..store import db
from ..store.mutes import is_muted, muted_for_good
from ..store.outages import Outages, dependency_of
from ..web.h5 import DOCS_PATH, H5_PREFIX
from ..web.params import on_chat_port
from ..web.public_urls import public_base
from . import history, protocol
from .admission import ChatFull, UserFull, address_group
from .facade import shown
from .gate import MUTED_MSG, THROTTLED_MSG
from .hub import Conn

if typing.TYPE_CHECKING:
    from .facade import Realtime

logger = logging.getLogger(__name__)

HEARTBEAT = protocol.HEARTBEAT.encode()
# A sender's name, avatar and permission (and whether muted with no end) are re-read this often (an admin's
# disable, or an operator's SADD to the set of users muted with no end, applies this fast).
USER_CHECK_TTL = 5.0
USER_SQL = "SELECT username, head_img, is_disabled, member_status FROM users WHERE id = %s"


async def chat(request: web.Request) -> web.StreamResponse:
    """Item 26: one websocket connection, from the upgrade to its last frame."""
    realtime: Realtime = request.config_dict[realtime_key]
    outages = request.config_dict[outages_key]
    settings = realtime.settings
    ws = web.WebSocketResponse(
        heartbeat=settings.chat_heartbeat,
        max_msg_size=settings.chat_frame_limit,
        # Off: a broadcast is encoded once and the same bytes go to every socket.
        compress=False,
    )
    if not ws.can_prepare(request).ok:
        if request.path == "/":
            # A browser opening the server's address: to the pages when they are hosted, else to the docs.
            # From the chat port, which serves nothing else, to the HTTP port.
            target = H5_PREFIX if settings.h5_dir else DOCS_PATH
            if on_chat_port(request):
                if settings.public_url:
                    target = f"{public_base(request)}{target}"
                else:
                    # Development mode: the HTTP port of the host the client asked for (if it looks like one).
                    base = URL(public_base(request))
                    target = str(base.with_port(settings.port).with_path(target))
            raise web.HTTPFound(target)
        raise web.HTTPBadRequest(text="websocket upgrade expected")
    # Counted before the upgrade, refused with the API's error body (429, 503): a refused socket is never
    # a viewer, nor a connection held. request.remote: the client's address, behind trusted proxies the
    # forwarded one (proxies.py).
    group = address_group(request.remote or "")
    try:
        realtime.admission.admit(group)
    except ApiError as exc:
        realtime.metrics.chat_refused.labels("share" if isinstance(exc, ChatFull) else "address").inc()
        raise
    try:
        await ws.prepare(request)
        conn = await realtime.connect(ws, request.transport, request.remote)
        conn.media_base = public_base(request)
    except BaseException:
        realtime.admission.release(group)
        raise
    try:
        room_ref = request.query.get("room_id")
        if room_ref:
            await _run(realtime, outages, conn, _join_by_query(realtime, conn, room_ref))
        async for msg in ws:
            if msg.type is WSMsgType.TEXT:
                if msg.data == protocol.HEARTBEAT:
                    realtime.hub.send(conn, HEARTBEAT)
                    continue
                await _run(realtime, outages, conn, _handle(realtime, conn, msg.data))
                if conn.closing:
                    break
            elif msg.type is WSMsgType.BINARY:
                realtime.hub.send(conn, protocol.error_frame(protocol.FrameError("参数错误: 只接受文本帧")).encode())
    finally:
        realtime.admission.release(group)
        try:
            await realtime.disconnect(conn)
        except Exception:
            logger.warning("chat: could not announce that %s left", conn.uuid, exc_info=True)
    if conn.closing and not ws.closed:
        await ws.close()
    return ws


async def _run(
    realtime: Realtime, outages: Outages, conn: Conn, step: typing.Coroutine[typing.Any, typing.Any, None]
) -> None:
    """One client frame; its failure, whatever it is, is answered on this socket alone with an error frame,
    and the socket stays open: one frame's bug must not cut its sender off, let alone every sender."""
    try:
        await step
    except ApiError as exc:
        realtime.hub.send(conn, protocol.error_frame(exc).encode())
        if isinstance(exc, UserFull):
            # One user's sockets are capped like one address's: this one goes, the user's others stay.
            conn.closing = True
    except Exception as exc:
        dependency = dependency_of(exc) if isinstance(exc, (RedisError, OSError, psycopg2.Error)) else None
        if dependency is not None:
            # Logged once per outage, like a refused request.
            error: ApiError = outages.refused(dependency, exc)
        else:
            # With its traceback; held back (logthrottle) when a flood of frames sets off the same bug.
            logger.exception("chat: a frame of %s failed", conn.uuid, extra=JUNK)
            error = InternalError("发送失败，请稍后重试")
        realtime.hub.send(conn, protocol.error_frame(error).encode())


async def _handle(realtime: Realtime, conn: Conn, text: str) -> None:
    frame = protocol.parse(text)
    realtime.metrics.chat_received.labels(frame.type).inc()
    if frame.type == protocol.LOGIN:
        await _join(realtime, conn, frame)
    elif frame.type == protocol.SEND_ALL:
        await _send_all(realtime, conn, frame)
    elif frame.type == protocol.SEND_ONE:
        await _send_one(realtime, conn, frame)
    else:
        await realtime.leave(conn)
        conn.closing = True


async def _join_by_query(realtime: Realtime, conn: Conn, room_ref: str) -> None:
    await _join(realtime, conn, protocol.Frame(protocol.LOGIN, protocol.parse_room(room_ref), room_ref, "", "", ""))


async def _join(realtime: Realtime, conn: Conn, frame: protocol.Frame) -> None:
    """LOGIN or ?room_id=: into the room; the joiner learns its uuid from its own LOGIN echo."""
    token_error = None
    if frame.token:
        try:
            await _identify(realtime, conn, frame.token)
        except UserFull:
            raise
        except ApiError as exc:
            # Watching needs no token: join anyway, and say the token is no good for sending.
            token_error = exc
    if frame.room_id is None and not realtime.settings.chat_legacy_mode:
        raise protocol.FrameError("参数错误: 缺少 room_id")
    recovered = None
    if frame.room_id is not None and frame.room_id != conn.room_id:
        recovered = await realtime.join(conn, frame.room_id, frame.room_ref, frame.since)
    event = realtime.presence_frame(protocol.LOGIN, conn, protocol.room_text(frame.room_id), "进入直播间")
    if frame.room_id is not None and conn.profile is not None and not conn.announced:
        # Only identified viewers are announced: thousands of anonymous arrivals would drown the chat. The
        # text carries the user's own name: a user muted there is not announced (nor, then, their leaving).
        assert conn.user_id is not None
        if not conn.muted_for_good and not await is_muted(realtime.redis, realtime.settings, conn.user_id,
                                                          [frame.room_id]):
            conn.announced = True
            await realtime.publish(frame.room_id, event)
    # The joiner's own echo keeps the room_id as it wrote it.
    event["myself"] = True
    event["room_id"] = frame.room_ref
    if recovered is not None:
        # The messages after the client's `seq` came before this echo (all of them), or none did.
        event["recovered"] = recovered
    realtime.hub.send(conn, encoding.dumps(event))
    if token_error is not None:
        raise token_error


async def _identify(realtime: Realtime, conn: Conn, token: str) -> dict[str, str]:
    """The sender's {username, head_img}, checking the token and that the user may send."""
    token = token or conn.token
    user_id = await realtime.tokens.resolve(token) if token else None
    if user_id is None:
        raise TokenInvalid()
    now = time.monotonic()
    if user_id != conn.user_id or now >= conn.checked_until:
        row = check_standing(await db.fetchone(realtime.pool, USER_SQL, (user_id,)), Action.CHAT)
        for_good = await muted_for_good(realtime.redis, realtime.settings, user_id)
        try:
            realtime.admission.sign_in(conn.user_id, user_id)
        except UserFull:
            realtime.metrics.chat_refused.labels("user").inc()
            raise
        conn.user_id = user_id
        conn.profile = {"username": row["username"], "head_img": row["head_img"]}
        conn.muted_for_good = for_good
        conn.checked_until = now + USER_CHECK_TTL
    conn.token = token
    assert conn.profile is not None
    return conn.profile


async def _sender(realtime: Realtime, conn: Conn, frame: protocol.Frame, rooms: typing.Iterable[int | None]
                  ) -> tuple[dict[str, str], str]:
    """Checks every send passes, in order: this socket's rate, token and user, then in one Redis step the
    mutes for every room the message reaches (`rooms`, None for no room) and the rate limits of the user
    and of the client's address across sockets and processes; the sender and the clean, censored content."""
    settings = realtime.settings
    now = time.monotonic()
    sent = conn.sent
    while sent and sent[0] <= now - settings.chat_rate_window:
        sent.popleft()
    if len(sent) >= settings.chat_rate_count:
        raise Throttled(THROTTLED_MSG)
    sent.append(now)
    profile = await _identify(realtime, conn, frame.token)
    assert conn.user_id is not None
    await realtime.gate.admit(conn.user_id, conn.address, rooms, conn.muted_for_good)
    content = protocol.sanitize(frame.content, settings.chat_emoji_path)
    if realtime.banned_words is not None:
        content = await realtime.banned_words.apply(content)
    if not content.strip():
        raise protocol.FrameError("参数错误: 消息内容不能为空")
    return profile, content


async def _send_all(realtime: Realtime, conn: Conn, frame: protocol.Frame) -> None:
    assert frame.room_id is not None
    if conn.room_id is not None and frame.room_id != conn.room_id:
        raise protocol.FrameError("参数错误: room_id 不是当前所在的直播间")
    # What is stored is bounded by the club's lives, not by the room ids clients make up.
    if not await realtime.rooms.takes_messages(frame.room_id):
        raise LiveNotFound()
    profile, content = await _sender(realtime, conn, frame, (frame.room_id,))
    assert conn.user_id is not None
    now = time.time()
    message = {
        "type": protocol.SEND_ALL,
        "room_id": frame.room_ref,
        "uuid": conn.uuid,
        "content": content,
        "user": shown(conn),
        "msg_time": int(now),
        "myself": False,
    }
    # Stored and published in one step, and only then echoed: the echo is the acknowledgement.
    seq, prev = await realtime.send_all(
        frame.room_id, history.entry(frame.room_id, conn.user_id, conn.uuid, content, profile, now), message
    )
    message["myself"] = True
    message["seq"], message["prev"] = seq, prev
    realtime.hub.send(conn, encoding.dumps(message))


async def _send_one(realtime: Realtime, conn: Conn, frame: protocol.Frame) -> None:
    """A private message: held to the sender's mutes for its own room and for the recipient's (a mute
    holds however a message reaches the room's viewers), censored like any other."""
    process_id = protocol.UUID_RE.match(frame.send_to_one).group(1)  # type: ignore[union-attr]
    local = process_id == realtime.hub.process_id
    target = realtime.hub.conns.get(frame.send_to_one) if local else None
    # The recipient of another process is checked there (Realtime.deliver_whisper): only it knows the room.
    rooms = {conn.room_id, frame.room_id, target.room_id if target is not None else None}
    _, content = await _sender(realtime, conn, frame, rooms)
    if local and target is None:
        raise OperationError("对方不在线")
    message = {
        "type": protocol.SEND_ONE,
        "room_id": frame.room_ref if frame.room_id is not None else conn.room_ref,
        "uuid": conn.uuid,
        "send_to_one": frame.send_to_one,
        "content": content,
        "user": shown(conn),
        "msg_time": int(time.time()),
        "myself": False,
    }
    if target is None:
        if not await realtime.whisper_to_process(process_id, conn, frame.send_to_one, message):
            raise OperationError("对方不在线")
        return  # that process answers: the echo once delivered, or an error frame
    if realtime.hub.conns.get(frame.send_to_one) is not target:
        raise OperationError("对方不在线")
    if target.room_id not in rooms:
        # It moved to another room while the checks ran.
        assert conn.user_id is not None
        if await is_muted(realtime.redis, realtime.settings, conn.user_id, [target.room_id]):
            raise Forbidden(MUTED_MSG)
    realtime.hub.send(target, encoding.dumps(message))
    message["myself"] = True
    realtime.hub.send(conn, encoding.dumps(message))
