"""The live rooms: wiring of the hub, the Redis broker, presence and chat history into the app."""

from __future__ import annotations

import asyncio
import html
import logging
import time
import typing

import aiopg
from aiohttp import web
from redis.asyncio import Redis

from .. import encoding
from ..cache import rkey
from ..keys import content_cache_key, metrics_key, pg_key, realtime_key, redis_key, settings_key, tokens_key
from ..outages import Streak
from ..settings import Settings
from ..stopping import cancel_and_wait
from . import presence, protocol
from .broker import Broker, process_channel, room_channel
from .censor import BannedWords
from .history import History, history_ctx
from .hub import Conn, Hub
from .rooms import Rooms

if typing.TYPE_CHECKING:
    from ..auth import TokenStore
    from ..metrics import Metrics

logger = logging.getLogger(__name__)

# Frames an old no-room client is sent from every room (it filters by room_id itself); viewer
# counts are per room, so it gets the total instead.
LOBBY_TYPES = frozenset((protocol.SEND_ALL, protocol.LOGIN, protocol.LOGOUT, protocol.LIVE_STATUS))
CHAT_PATHS = ("/ws", "/")


def muted_key(settings: Settings) -> str:
    """The Redis set of the ids of users who may not send, with no end (an admin adds and removes them)."""
    return rkey(settings, "chat", "muted")


async def set_muted(redis: Redis, settings: Settings, user_id: int, muted: bool) -> None:
    if muted:
        await redis.sadd(muted_key(settings), user_id)
    else:
        await redis.srem(muted_key(settings), user_id)


def mute_key(settings: Settings, user_id: int, room_id: int | None) -> str:
    """A mute for a time, in one room or (room None) everywhere: the key lives as long as the mute.
    services/moderation.py keeps the mutes themselves (chat_mutes) and sets these keys from them."""
    return rkey(settings, "chat", "mute", user_id, "all" if room_id is None else room_id)


async def set_mute_until(redis: Redis, settings: Settings, user_id: int, room_id: int | None, seconds: int) -> None:
    """The mute of that scope ends in `seconds` (0 or less: it has ended)."""
    key = mute_key(settings, user_id, room_id)
    if seconds > 0:
        await redis.set(key, 1, ex=seconds)
    else:
        await redis.delete(key)


async def is_muted(redis: Redis, settings: Settings, user_id: int, room_id: int | None) -> bool:
    """Whether the user may not send in the room: muted with no end, everywhere for a time, or in this room."""
    keys = [mute_key(settings, user_id, None)] + ([mute_key(settings, user_id, room_id)] if room_id else [])
    async with redis.pipeline(transaction=False) as pipe:
        pipe.sismember(muted_key(settings), str(user_id))
        pipe.exists(*keys)
        forever, timed = await pipe.execute()
    return bool(forever) or bool(timed)


def peaks_key(settings: Settings) -> str:
    """A sorted set: each room's most viewers at once (as summed across processes), kept with ZADD GT."""
    return rkey(settings, "chat", "peaks")


class Realtime:
    """This process's part of the live rooms; also the broker's message handlers."""

    def __init__(self, settings: Settings, redis: Redis, pool: aiopg.Pool, tokens: TokenStore,
                 metrics: Metrics, rooms: Rooms, banned_words: BannedWords | None = None) -> None:
        self.settings = settings
        self.metrics = metrics
        # Words replaced by *** in what is sent (None: none).
        self.banned_words = banned_words
        self.redis = redis
        self.pool = pool
        self.tokens = tokens
        self.hub = Hub(settings.chat_buffer_limit, settings.chat_legacy_mode, settings.chat_batch_window)
        self.broker = Broker(settings.redis_url, settings, self.hub.process_id, self)
        self.history = History(redis, pool, settings)
        # the rooms that take messages (published lives)
        self.rooms = rooms
        self.hub.metrics = self.broker.metrics = self.history.metrics = metrics
        self.tasks: list[asyncio.Task[None]] = []
        # the counts last pushed to each room here, and connections still owed their first count
        self._pushed: dict[int | None, int] = {}
        self._owed: set[Conn] = set()

    # Room membership. The subscription follows the local sockets: on with the first, off with the last.

    async def connect(self, ws: web.WebSocketResponse, transport: typing.Any) -> Conn:
        conn = self.hub.connect(ws, transport)
        self._owed.add(conn)
        if conn in self.hub.lobby and len(self.hub.lobby) == 1:
            await self.broker.sync_lobby()
        return conn

    async def join(self, conn: Conn, room_id: int, room_ref: str | int | None) -> None:
        was_lobby = conn in self.hub.lobby
        if conn.room_id is not None and conn.room_id != room_id:
            await self.leave(conn)
        if self.hub.join(conn, room_id, room_ref):
            await self.broker.sync_room(room_id)
        if was_lobby and not self.hub.lobby:
            await self.broker.sync_lobby()
        self._owed.add(conn)

    async def leave(self, conn: Conn) -> None:
        """Out of its room, telling the room if it was told of the arrival."""
        room_id = conn.room_id
        if room_id is None:
            return
        if conn.announced:
            conn.announced = False
            frame = self.presence_frame(protocol.LOGOUT, conn, protocol.room_text(room_id), "离开直播间")
            await self.publish(room_id, frame)
        if self.hub.leave(conn):
            await self.broker.sync_room(room_id)

    async def disconnect(self, conn: Conn) -> None:
        had_lobby = bool(self.hub.lobby)
        try:
            await self.leave(conn)
        finally:
            self._owed.discard(conn)
            room_id = conn.room_id
            if self.hub.disconnect(conn) and room_id is not None:
                await self.broker.sync_room(room_id)
            if had_lobby and not self.hub.lobby:
                await self.broker.sync_lobby()

    def presence_frame(self, kind: str, conn: Conn, room_ref: str | int | None, action: str) -> dict[str, typing.Any]:
        profile = conn.shown or protocol.shown_profile({"username": "", "head_img": ""}, conn.default_avatar)
        return {
            "type": kind,
            "room_id": room_ref,
            "uuid": conn.uuid,
            # The pages render `content` as HTML: a name is text (WeChat nicknames may hold anything).
            "content": f"{html.escape(profile['username'] or '游客')} {action}",
            "user": profile,
            "msg_time": int(time.time()),
            "myself": False,
        }

    async def publish(self, room_id: int, frame: dict[str, typing.Any]) -> None:
        await self.redis.publish(room_channel(self.settings, room_id), encoding.dumps(frame))

    async def send_to_process(self, process_id: str, target: str, data: bytes) -> int:
        """A frame for a connection of another process; the number of processes listening (0 = gone)."""
        return int(await self.redis.publish(process_channel(self.settings, process_id), target.encode() + b" " + data))

    # Broker handlers: synchronous, they only write to local sockets.

    def wants_room(self, room_id: int) -> bool:
        return room_id in self.hub.rooms

    def wants_all_rooms(self) -> bool:
        return bool(self.hub.lobby)

    def wanted_rooms(self) -> typing.Iterable[int]:
        return list(self.hub.rooms)

    def on_room(self, room_id: int, data: bytes) -> None:
        if room_id in self.hub.rooms:
            self.hub.deliver_room(room_id, data, _sender(data))

    def on_any_room(self, room_id: int, data: bytes) -> None:
        if not self.hub.lobby:
            return
        try:
            frame = encoding.loads(data)
        except encoding.JSONDecodeError:
            return
        if isinstance(frame, dict) and frame.get("type") in LOBBY_TYPES:
            sender = frame.get("uuid")
            self.hub.deliver(self.hub.lobby, data, sender if isinstance(sender, str) else None)

    def on_process(self, data: bytes) -> None:
        target, _, frame = data.partition(b" ")
        conn = self.hub.conns.get(target.decode(errors="replace"))
        if conn is not None:
            self.hub.send(conn, frame)

    # Viewer counts.

    async def push_counts(self) -> None:
        """Publish this process's counts, read the sums, and push those that changed (or are owed)."""
        hub = self.hub
        await presence.publish_counts(self.redis, self.settings, hub.process_id, hub.counts())
        rooms = list(hub.rooms)
        viewers, total = await presence.viewers_with_total(self.redis, self.settings, rooms)
        self.metrics.chat_viewers.set(total)
        owed, self._owed = self._owed, set()
        if viewers:
            # The peak per live room, for the dashboard: only ever raised.
            await self.redis.zadd(peaks_key(self.settings), {str(r): n for r, n in viewers.items()}, gt=True)
        pushed: dict[int | None, int] = {}
        for room_id in rooms:
            members = hub.rooms.get(room_id)
            if not members:
                continue
            n = pushed[room_id] = viewers[room_id]
            data = protocol.online_frame(room_id, n)
            if self._pushed.get(room_id) != n:
                hub.deliver(members, data)
            else:
                hub.deliver(members & owed, data)
        if hub.lobby:
            pushed[None] = total
            data = protocol.online_frame(None, total)
            hub.deliver(hub.lobby if self._pushed.get(None) != total else hub.lobby & owed, data)
        self._pushed = pushed

    async def count_loop(self) -> None:
        streak = Streak(logger, "chat viewer counts")
        while True:
            await asyncio.sleep(self.settings.chat_online_interval)
            try:
                await self.push_counts()
            except Exception as exc:
                streak.failed(exc)
            else:
                streak.succeeded()


def _sender(data: bytes) -> str | None:
    """The `uuid` of a room frame: its sender, who got its own echo from its own process."""
    try:
        frame = encoding.loads(data)
    except encoding.JSONDecodeError:
        return None
    sender = frame.get("uuid") if isinstance(frame, dict) else None
    return sender if isinstance(sender, str) else None


async def realtime_ctx(app: web.Application) -> typing.AsyncIterator[None]:
    settings = app[settings_key]
    realtime = Realtime(settings, app[redis_key], app[pg_key], app[tokens_key], app[metrics_key],
                        Rooms(app[pg_key], app[content_cache_key]), BannedWords(app[pg_key], app[content_cache_key]))
    app[realtime_key] = realtime
    broker_task = asyncio.create_task(realtime.broker.run(), name="chat-broker")
    realtime.tasks += [
        broker_task,
        asyncio.create_task(realtime.hub.reap_slow(), name="chat-reaper"),
        asyncio.create_task(realtime.count_loop(), name="chat-counts"),
    ]
    try:
        await asyncio.wait_for(realtime.broker.connected.wait(), 10)
    except TimeoutError:
        logger.warning("chat: no Redis subscription yet; rooms start working once it connects")
    yield
    await cancel_and_wait(*realtime.tasks)
    try:
        await presence.withdraw(realtime.redis, settings, realtime.hub.process_id)
    except Exception:
        logger.warning("chat: could not withdraw the viewer counts; they expire on their own", exc_info=True)
    await realtime.broker.aclose()


async def close_sockets(app: web.Application) -> None:
    """on_shutdown: every chat socket closed with 1001 before the contexts close."""
    realtime = app.get(realtime_key)
    if realtime is not None:
        await realtime.hub.close_all()


def setup(app: web.Application) -> None:
    """Routes, contexts and the shutdown hook of the live rooms (after the Redis and PostgreSQL contexts)."""
    from .handler import chat

    app.cleanup_ctx.extend([realtime_ctx, history_ctx])
    app.on_shutdown.append(close_sockets)
    for path in CHAT_PATHS:
        app.router.add_get(path, chat)
