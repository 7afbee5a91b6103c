"""This process's websocket connections and rooms, and the loop that writes one frame to many sockets."""

from __future__ import annotations

import asyncio
import collections
import itertools
import logging
import math
import secrets
import struct
import time
import typing

from aiohttp import WSCloseCode, web

if typing.TYPE_CHECKING:
    from ..ops.metrics import Metrics

logger = logging.getLogger(__name__)

# A reader that fell this far behind gets this long to take its close frame, then loses the TCP connection.
SLOW_CLOSE_WAIT = 2.0
SHUTDOWN_CLOSE_WAIT = 5.0
# A room smaller than this here is written at once: its broadcast costs well under a millisecond,
# so batching would delay its messages for nothing.
BATCH_MIN_MEMBERS = 100
# A room's message rate is a count decayed with this time constant (seconds): it follows a change of
# pace within a few seconds and is not fooled by two messages that happen to come close together.
RATE_TAU = 2.0
# A room batches only while this many further frames are expected within a window (rate x window):
# below it, a batch would mostly carry one frame and save no write, only delay it.
BATCH_GAIN = 1.0
_LEN1 = struct.Struct("!BB").pack
_LEN2 = struct.Struct("!BBH").pack
_LEN3 = struct.Struct("!BBQ").pack


def text_frame(data: bytes) -> bytes:
    """The websocket frame a server sends for a text message: final, unmasked, uncompressed (RFC 6455 §5.2).

    The same bytes go to every socket of a broadcast, so they are built once rather than per socket.
    """
    n = len(data)
    if n < 126:
        header = _LEN1(0x81, n)
    elif n < 65536:
        header = _LEN2(0x81, 126, n)
    else:
        header = _LEN3(0x81, 127, n)
    return header + data


def viewers(conns: typing.Iterable[Conn]) -> int:
    """How many people the sockets are: signed-in users once each, anonymous sockets one each."""
    users: set[int] = set()
    anonymous = 0
    for conn in conns:
        if conn.user_id is None:
            anonymous += 1
        else:
            users.add(conn.user_id)
    return anonymous + len(users)


class Conn:
    """One websocket: its id, its room (None = none) and who sends on it."""

    __slots__ = (
        "address",
        "announced",
        "checked_until",
        "closing",
        "media_base",
        "muted_for_good",
        "profile",
        "room_id",
        "room_ref",
        "sent",
        "token",
        "transport",
        "user_id",
        "uuid",
        "ws",
    )

    def __init__(self, ws: web.WebSocketResponse, transport: asyncio.Transport | None, uuid: str,
                 address: str | None = None) -> None:
        self.ws = ws
        # the client's address (behind trusted proxies, the forwarded one), for the rate limit per address
        self.address = address
        self.transport = transport
        self.uuid = uuid
        self.room_id: int | None = None
        self.room_ref: str | int | None = None
        self.user_id: int | None = None
        self.token = ""
        # {username, head_img} of user_id as stored (head_img a /media/ path, or an outside URL), re-read
        # with its send permission when checked_until passes
        self.profile: dict[str, str] | None = None
        # whether user_id is in the set of users muted with no end, read with the profile
        self.muted_for_good = False
        # the base URL of the media URLs in the frames this socket's user sends (web/public_urls.public_base)
        self.media_base = ""
        self.checked_until = 0.0
        # monotonic times of this socket's recent sends: a flood is refused here before it costs Redis work
        self.sent: collections.deque[float] = collections.deque()
        self.closing = False
        # whether the room was told this user came in (so it is told when they leave)
        self.announced = False


class Batch:
    """A room's frames waiting for the end of its batch window, and the room's message rate."""

    __slots__ = ("frames", "last", "rate", "seen", "skips", "timer")

    def __init__(self) -> None:
        self.frames: list[bytes] = []
        # per frame, the uuid of the socket that must not get it (its sender)
        self.skips: list[str | None] = []
        self.last = float("-inf")  # the loop time of the room's last write
        self.timer: asyncio.TimerHandle | None = None
        self.rate = 0.0  # frames per second, decayed with RATE_TAU
        self.seen = 0.0  # the loop time of the room's last frame

    def count(self, now: float) -> float:
        """Count a frame at loop time `now`; the room's rate (frames per second) with it."""
        self.rate = self.rate * math.exp((self.seen - now) / RATE_TAU) + 1 / RATE_TAU
        self.seen = now
        return self.rate


class Hub:
    """Local state only: which sockets this process holds and in which rooms; other processes reach
    them through the broker. Every method here is synchronous, so no other code runs while a set is
    walked and the sets need no snapshot."""

    def __init__(self, buffer_limit: int, legacy_mode: bool, batch_window: float = 0.0,
                 batch_min_members: int = BATCH_MIN_MEMBERS, batch_gain: float = BATCH_GAIN) -> None:
        self.process_id = secrets.token_hex(6)
        self.buffer_limit = buffer_limit
        self.legacy_mode = legacy_mode
        self.batch_window = batch_window
        self.batch_min_members = batch_min_members
        self.batch_gain = batch_gain
        self._batches: dict[int, Batch] = {}
        self.conns: dict[str, Conn] = {}
        self.rooms: dict[int, set[Conn]] = {}
        # connections in no room: old clients that get every room's messages (legacy mode), once they stayed in
        # no room through a whole count round (settle_lobby)
        self.lobby: set[Conn] = set()
        # connections in no room not in the lobby yet: those that came before the last round, and those since
        self._arrived: set[Conn] = set()
        self._arriving: set[Conn] = set()
        self._seq = itertools.count(1)
        self._slow: list[Conn] = []
        self._slow_added = asyncio.Event()
        # Set by the app (realtime_ctx); a hub alone (a test's) counts nothing.
        self.metrics: Metrics | None = None

    def connect(self, ws: web.WebSocketResponse, transport: asyncio.Transport | None,
                address: str | None = None) -> Conn:
        conn = Conn(ws, transport, f"{self.process_id}-{next(self._seq)}", address)
        self.conns[conn.uuid] = conn
        if self.legacy_mode:
            self._arriving.add(conn)
        return conn

    def disconnect(self, conn: Conn) -> bool:
        """Forget a connection; True when it was the last one of its room here."""
        self.conns.pop(conn.uuid, None)
        self._out_of_lobby(conn)
        return self.leave(conn)

    def join(self, conn: Conn, room_id: int, room_ref: str | int | None) -> bool:
        """Put a connection in a room (out of its previous one); True when the room is new here."""
        self._out_of_lobby(conn)
        members = self.rooms.get(room_id)
        first = members is None
        if members is None:
            members = self.rooms[room_id] = set()
        members.add(conn)
        conn.room_id, conn.room_ref = room_id, room_ref
        return first

    def settle_lobby(self) -> set[Conn]:
        """Once a count round: the connections still in no room a whole round after they came go into the lobby;
        those.

        The club's pages connect and then join at once (LOGIN); were each page load in the lobby for that
        moment, every process would publish every room's frames to the lobby channel (one cluster node) all
        through a crowd's arrival. An old client, which never joins, hears the rooms a round or two later.
        """
        settled = self._arrived
        self.lobby |= settled
        self._arrived, self._arriving = self._arriving, set()
        return settled

    def _out_of_lobby(self, conn: Conn) -> None:
        self.lobby.discard(conn)
        self._arrived.discard(conn)
        self._arriving.discard(conn)

    def reserve(self, room_id: int) -> bool:
        """Make the room known here (so the broker subscribes to it) before a connection joins it; True when
        it is new here. The connection must join (`join`) or the room stays empty until it is left."""
        if room_id in self.rooms:
            return False
        self.rooms[room_id] = set()
        return True

    def flush(self, room_id: int) -> None:
        """Send the frames a room's batch holds now, to its members of now."""
        batch = self._batches.get(room_id)
        if batch is not None and batch.timer is not None:
            batch.timer.cancel()
            self._flush(room_id)

    def leave(self, conn: Conn) -> bool:
        """Take a connection out of its room; True when the room has no connection here any more."""
        room_id = conn.room_id
        if room_id is None:
            return False
        conn.room_id = conn.room_ref = None
        members = self.rooms.get(room_id)
        if members is None:
            return False
        members.discard(conn)
        if not members:
            del self.rooms[room_id]
            batch = self._batches.pop(room_id, None)
            if batch is not None and batch.timer is not None:
                batch.timer.cancel()
            return True
        return False

    def counts(self) -> dict[str, int]:
        """Viewers here by room id, and `all` for every connection (rooms and no room alike).

        A signed-in user is one viewer however many sockets (tabs, devices) they watch from; a socket
        that never signed in is one viewer each (the pages watch without a token).
        """
        counts = {str(room_id): viewers(members) for room_id, members in self.rooms.items()}
        counts["all"] = viewers(self.conns.values())
        return counts

    def send(self, conn: Conn, data: bytes) -> None:
        """Queue one text frame on one socket without ever waiting for it (see `_write_all`)."""
        self._write_all((conn,), text_frame(data), None)

    def deliver(self, conns: typing.Iterable[Conn], data: bytes, skip: str | None = None) -> None:
        """The same bytes to many sockets at once; `skip` is the sender, who got its own echo already."""
        self._write_all(conns, text_frame(data), {skip: b""} if skip else None)

    def deliver_room(self, room_id: int, data: bytes, skip: str | None = None) -> None:
        """A frame for every socket of a room here, coalesced with the room's next ones when that saves writes.

        Each write costs a system call and a TCP segment per socket, several times the Python work of
        the loop, so a busy room sends its sockets at most one write per window, carrying every frame
        that came meanwhile. Only a room busy enough for a window to gather more than one frame
        (rate x window >= BATCH_GAIN) is batched: a quiet room's frames go out at once, as do a small
        room's. A frame after a quiet window goes out at once too: batching only ever delays a frame
        that follows another within the window, and by less than the window (the latency budget).
        """
        members = self.rooms.get(room_id)
        if not members:
            return
        window = self.batch_window
        if window <= 0:
            self.deliver(members, data, skip)
            return
        loop = asyncio.get_running_loop()
        now = loop.time()
        batch = self._batches.get(room_id)
        if batch is None:
            batch = self._batches[room_id] = Batch()
        rate = batch.count(now)
        # While frames wait, later ones wait behind them whatever the room's size or pace: order is kept.
        if batch.timer is None and (now - batch.last >= window or len(members) < self.batch_min_members
                                    or rate * window < self.batch_gain):
            batch.last = now
            self.deliver(members, data, skip)
            return
        batch.frames.append(text_frame(data))
        batch.skips.append(skip)
        if batch.timer is None:
            batch.timer = loop.call_at(batch.last + window, self._flush, room_id)

    def _flush(self, room_id: int) -> None:
        """Write a room's queued frames, in one write per socket."""
        batch = self._batches.get(room_id)
        if batch is None:
            return
        frames, skips = batch.frames, batch.skips
        batch.frames, batch.skips, batch.timer = [], [], None
        batch.last = asyncio.get_running_loop().time()
        members = self.rooms.get(room_id)
        if not members or not frames:
            return
        # A sender skips its own frames, and only those: its bytes are the batch without them.
        special = {
            uuid: b"".join(frame for frame, skip in zip(frames, skips, strict=True) if skip != uuid)
            for uuid in set(skips)
            if uuid
        }
        if self.metrics is not None:
            self.metrics.chat_batch_frames.observe(len(frames))
        self._write_all(members, b"".join(frames), special or None)

    def flush_all(self) -> None:
        """Write every room's queued frames now (before the sockets close)."""
        for room_id, batch in list(self._batches.items()):
            if batch.timer is not None:
                batch.timer.cancel()
                self._flush(room_id)

    def _write_all(self, conns: typing.Iterable[Conn], data: bytes, special: dict[str, bytes] | None) -> None:
        """The same bytes to many sockets, but `special[uuid]` to those it names (b"" = nothing).

        A socket whose queue is over the buffer limit is not written to but closed (1008): its reader
        has fallen too far behind, and waiting for it would hold up everybody else. The loop body is
        the whole cost of a broadcast per viewer, apart from the system call.
        """
        limit = self.buffer_limit
        written = 0
        for conn in conns:
            out = special.get(conn.uuid, data) if special else data
            if not out:
                continue
            transport = conn.transport
            # ws.closed: a close frame went out, and nothing may follow it on the wire.
            if conn.closing or transport is None or transport.is_closing() or conn.ws.closed:
                continue
            if transport.get_write_buffer_size() > limit:
                self._drop_slow(conn)
                continue
            # Straight to the transport, as aiohttp's writer would without compression: a write never
            # waits, and a failed one closes the transport, which the handler task sees and unregisters.
            transport.write(out)
            written += 1
        # Once per broadcast, not per socket: the loop above is the hot path of a busy room.
        if written and self.metrics is not None:
            self.metrics.chat_deliveries.inc(written)

    def _drop_slow(self, conn: Conn) -> None:
        conn.closing = True
        if self.metrics is not None:
            self.metrics.chat_slow_dropped.inc()
        self._slow.append(conn)
        self._slow_added.set()
        logger.info("closing chat connection %s: %d bytes unread", conn.uuid,
                    conn.transport.get_write_buffer_size() if conn.transport else 0)

    async def reap_slow(self) -> None:
        """Close the sockets that fell behind, in batches, until cancelled."""
        while True:
            await self._slow_added.wait()
            self._slow_added.clear()
            slow, self._slow = self._slow, []
            await asyncio.gather(*(self._close_slow(conn) for conn in slow))

    async def _close_slow(self, conn: Conn) -> None:
        try:
            await asyncio.wait_for(
                conn.ws.close(code=WSCloseCode.POLICY_VIOLATION, message=b"too slow", drain=False), SLOW_CLOSE_WAIT
            )
        except (TimeoutError, ConnectionError, RuntimeError):
            logger.debug("slow chat connection %s closed without a close handshake", conn.uuid)
        finally:
            # The close frame sits behind everything it did not read: cut the connection.
            if conn.transport is not None and not conn.transport.is_closing():
                conn.transport.abort()

    async def close_all(self, code: int = WSCloseCode.GOING_AWAY, message: bytes = b"server shutdown") -> None:
        """Close every socket (at shutdown), all at once, after what is queued for them."""
        self.flush_all()
        conns = list(self.conns.values())
        for conn in conns:
            conn.closing = True
        started = time.monotonic()
        results = await asyncio.gather(
            *(asyncio.wait_for(conn.ws.close(code=code, message=message), SHUTDOWN_CLOSE_WAIT) for conn in conns),
            return_exceptions=True,
        )
        failed = sum(1 for r in results if isinstance(r, BaseException))
        if conns:
            logger.info("closed %d chat connection(s) in %.2f s (%d without a clean close)",
                        len(conns), time.monotonic() - started, failed)
