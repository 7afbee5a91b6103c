"""This process's part of the live rooms (the Realtime facade): rooms, private messages, viewer counts,
and the handlers the Redis broker calls."""

from __future__ import annotations

import asyncio
import html
import logging
import time
import typing

import aiopg
from aiohttp import web
from redis.asyncio import Redis

from ..errors import ApiError, Forbidden, OperationError
from ..lib import encoding
from ..lib.logthrottle import JUNK
from ..services.banned_words import BannedWords
from ..settings import Settings
from ..store import media, presence
from ..store.kv import is_cluster
from ..store.kv import publish as kv_publish
from ..store.mutes import is_muted
from ..store.outages import Streak
from ..store.presence import peaks_key
from ..store.room_channels import lobby_channel, lobby_listeners, process_channel, room_channel
from . import history, protocol
from .admission import Admission
from .broker import Broker
from .gate import MUTED_MSG, Gate
from .history import History
from .hub import Conn, Hub
from .rooms import Rooms

if typing.TYPE_CHECKING:
    from ..ops.metrics import Metrics
    from ..web.auth import TokenStore

logger = logging.getLogger(__name__)

# Frames an old no-room client is sent from every room (it filters by room_id itself); viewer
# counts are per room, so it gets the total instead.
LOBBY_TYPES = frozenset((protocol.SEND_ALL, protocol.LOGIN, protocol.LOGOUT, protocol.LIVE_STATUS))
# A private message for a connection of another process starts with this byte, then JSON (whisper_request);
# a frame for a connection (an echo, an error) is "<uuid> <frame>", and a uuid never starts with it.
WHISPER = b"?"
# Private messages from other processes waiting for their recipient's mute check; past it they are dropped.
WHISPER_QUEUE = 10_000
# A reconnecting client is sent at most this many missed messages (Centrifugo's default); past it, none.
RECOVERY_LIMIT = 300
# Reads of the stream while the room's messages keep coming, before the join goes ahead without them.
RECOVERY_TRIES = 3


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
        self.gate = Gate(redis, settings)
        self.whispers: asyncio.Queue[dict[str, typing.Any]] = asyncio.Queue(WHISPER_QUEUE)
        self.admission = Admission(settings)
        self.broker = Broker(settings, self.hub.process_id, self, cluster=is_cluster(redis))
        self.history = History(redis, pool, settings)
        # the rooms that take messages (published lives)
        self.rooms = rooms
        self.hub.metrics = self.broker.metrics = self.history.metrics = metrics
        self.tasks: list[asyncio.Task[None]] = []
        # the counts last pushed to each room here, and connections still owed their first count
        self._pushed: dict[int | None, int] = {}
        self._owed: set[Conn] = set()
        # Whether some process holds no-room sockets (then every room frame also goes to the lobby channel),
        # as read from Redis with the viewer counts; and whether this one told Redis it does.
        self.lobby_heard = False
        self._lobby_listed = False

    # Room membership. The subscription follows the local sockets: on with the first, off with the last.

    async def connect(self, ws: web.WebSocketResponse, transport: typing.Any, address: str | None = None) -> Conn:
        """A new connection, from `address` (the client's, behind trusted proxies the forwarded one)."""
        conn = self.hub.connect(ws, transport, address)
        self._owed.add(conn)
        return conn

    async def join(self, conn: Conn, room_id: int, room_ref: str | int | None, since: str = "") -> bool | None:
        """Into a room (out of its previous one). With `since`, the `seq` of the last message the client saw
        there, the messages after it first: whether they all were (None without `since`)."""
        was_lobby = conn in self.hub.lobby
        if conn.room_id is not None and conn.room_id != room_id:
            await self.leave(conn)
        recovered = None
        if since:
            recovered = await self._recover(conn, room_id, room_ref, since)
        elif self.hub.join(conn, room_id, room_ref):
            await self.broker.sync_room(room_id)
        if was_lobby and not self.hub.lobby:
            await self.broker.sync_lobby()
        self._owed.add(conn)
        return recovered

    async def _recover(self, conn: Conn, room_id: int, room_ref: str | int | None, since: str) -> bool:
        """Send a joining socket the room's messages after `since`, then put it in the room, with nothing missed
        or sent twice between them; False (and only the join) when they cannot all be sent (Centrifugo's
        recovery: never a partial one, redis-cluster.md §3).

        The room's messages after `since` are read from its stream up to the last one this process delivered
        to the room; when no other arrived meanwhile, the socket gets them and joins the room in one
        synchronous step, so the next message the room gets is the next one it gets.
        """
        hub = self.hub
        try:
            if hub.reserve(room_id):
                await self.broker.sync_room(room_id)
            for _ in range(RECOVERY_TRIES):
                until = self.broker.heard(room_id)
                if until is None:
                    return False
                frames = await self.broker.since(room_id, since, until, RECOVERY_LIMIT)
                if frames is None:
                    return False
                if self.broker.heard(room_id) != until:
                    continue
                hub.flush(room_id)
                for data in frames:
                    hub.send(conn, data)
                hub.join(conn, room_id, room_ref)
                return True
            return False
        finally:
            if conn.room_id != room_id:
                hub.join(conn, room_id, room_ref)

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
            if conn.user_id is not None:
                self.admission.sign_out(conn.user_id)
            if self.hub.disconnect(conn) and room_id is not None:
                await self.broker.sync_room(room_id)
            if had_lobby and not self.hub.lobby:
                await self.broker.sync_lobby()

    def presence_frame(self, kind: str, conn: Conn, room_ref: str | int | None, action: str) -> dict[str, typing.Any]:
        profile = shown(conn)
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
        await self.publish_frame(room_id, encoding.dumps(frame))

    async def publish_frame(self, room_id: int, data: bytes) -> None:
        """A frame for everyone in a room (not a chat message: those go through send_all), and the lobby."""
        await kv_publish(self.redis, room_channel(self.settings, room_id), data)
        await self._to_lobby(room_id, data)

    async def send_all(self, room_id: int, message: bytes, frame: dict[str, typing.Any]) -> tuple[str, str]:
        """A chat message: stored in the room's stream and published to the room in one step (history.append),
        then to the lobby; its seq and prev. Once this returns the message is acknowledged."""
        seq, prev = await self.history.append(room_id, message, frame)
        await self._to_lobby(room_id, history.with_seq(history.open_frame(frame), seq, prev))
        return seq.decode(), prev.decode()

    async def _to_lobby(self, room_id: int, data: bytes) -> None:
        """Every room's frames for old no-room sockets, while some process holds one: `<room id> <frame>`.

        Not replayed after a lost subscription, unlike a room's messages: those clients reload on their own.
        """
        if self.lobby_heard or self.hub.lobby:
            await kv_publish(self.redis, lobby_channel(self.settings), b"%d %b" % (room_id, data))

    async def _list_lobby(self) -> None:
        """Tell every process whether this one holds no-room sockets (for chat_presence_ttl), and learn
        whether any does."""
        key, now = lobby_listeners(self.settings), time.time()
        if self.hub.lobby:
            await self.redis.zadd(key, {self.hub.process_id: now + self.settings.chat_presence_ttl})
            self._lobby_listed = True
        elif self._lobby_listed:
            await self.redis.zrem(key, self.hub.process_id)
            self._lobby_listed = False
        self.lobby_heard = bool(await self.redis.zcount(key, now, "+inf"))

    async def send_to_process(self, process_id: str, target: str, data: bytes) -> int:
        """A frame for a connection of another process; the number of processes listening (0 = gone)."""
        return await kv_publish(self.redis, process_channel(self.settings, process_id), target.encode() + b" " + data)

    async def answer(self, uuid: str, data: bytes) -> None:
        """A frame for a connection of this process or another (an echo, an error); lost if it is gone."""
        process_id = uuid.partition("-")[0]
        if process_id == self.hub.process_id:
            conn = self.hub.conns.get(uuid)
            if conn is not None:
                self.hub.send(conn, data)
        else:
            await self.send_to_process(process_id, uuid, data)

    async def whisper_to_process(self, process_id: str, sender: Conn, target: str, message: dict[str, typing.Any]
                                 ) -> int:
        """A SEND_ONE for a connection of another process, which checks the sender's mute in its recipient's
        room and answers the sender (the echo, or an error frame); the number of processes listening."""
        request = {"to": target, "from": sender.uuid, "user_id": sender.user_id, "message": message}
        return await kv_publish(self.redis, process_channel(self.settings, process_id),
                                WHISPER + encoding.dumps(request))

    async def deliver_whisper(self, request: dict[str, typing.Any]) -> None:
        """A private message from another process to its recipient here, unless the sender is muted where
        the recipient is; the sender is answered either way."""
        message, sender = request["message"], request["from"]
        target = self.hub.conns.get(request["to"])
        error: ApiError | None = None
        if target is None:
            error = OperationError("对方不在线")
        elif await is_muted(self.redis, self.settings, request["user_id"], [target.room_id]):
            error = Forbidden(MUTED_MSG)
        else:
            self.hub.send(target, encoding.dumps(message))
        answer = protocol.error_frame(error).encode() if error else encoding.dumps({**message, "myself": True})
        await self.answer(sender, answer)

    async def whisper_loop(self) -> None:
        """Deliver other processes' private messages to their recipients here, one at a time, in order."""
        while True:
            request = await self.whispers.get()
            try:
                await self.deliver_whisper(request)
            except Exception:
                logger.warning("chat: a private message from another process was not delivered", exc_info=True,
                               extra=JUNK)

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
        if data[:1] == WHISPER:
            try:
                request = encoding.loads(data[1:])
                self.whispers.put_nowait(request)
            except asyncio.QueueFull:
                logger.warning("chat: too many private messages from other processes waiting; one dropped",
                               extra=JUNK)
            return
        target, _, frame = data.partition(b" ")
        conn = self.hub.conns.get(target.decode(errors="replace"))
        if conn is not None:
            self.hub.send(conn, frame)

    # Viewer counts.

    async def push_counts(self) -> None:
        """Publish this process's counts, read the sums, and push those that changed (or are owed)."""
        hub = self.hub
        await presence.publish_counts(self.redis, self.settings, hub.process_id, hub.counts())
        settled = hub.settle_lobby()
        if settled:
            # They are owed the total now, changed or not.
            self._owed |= settled
            await self.broker.sync_lobby()
        await self._list_lobby()
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
                await self.history.relist()
                await self.push_counts()
            except Exception as exc:
                streak.failed(exc)
            else:
                streak.succeeded()


def shown(conn: Conn) -> dict[str, str]:
    """The `user` of the frames a socket's user sends: their profile with the avatar as an absolute URL
    (stored as a /media/ path; the frames reach pages on other origins)."""
    profile = conn.profile or {"username": "", "head_img": ""}
    # An anonymous viewer's join shows the default avatar too, like a user without one of their own.
    head_img = media.absolute(media.avatar(profile["head_img"]), conn.media_base)
    return {"username": profile["username"], "head_img": head_img}


def _sender(data: bytes) -> str | None:
    """The `uuid` of a room frame: its sender, who got its own echo from its own process."""
    try:
        frame = encoding.loads(data)
    except encoding.JSONDecodeError:
        return None
    sender = frame.get("uuid") if isinstance(frame, dict) else None
    return sender if isinstance(sender, str) else None
