"""Chat history: each SEND_ALL goes into its room's Redis stream (and out to the room) before its sender
is answered; one process at a time (a Redis lease) copies the streams into chat_messages in batches.

The stream entry is the durable copy from the moment the sender's echo (the acknowledgement) goes
out, so a process killed right after loses nothing: the next writer, in any process, stores it.
(room_id, stream_id) is UNIQUE in the table, so an entry written twice (two writers overlapping while
the lease changes hands) is stored once. Stored entries stay in the stream for REPLAY_WINDOW seconds
more: a process whose room subscriptions were cut (a Redis restart, a slot moved to another shard, a
failover) replays from there what its viewers missed (broker.py).

Each room has its own stream, under the room's hash tag with its channel (room_channels.py): on a
Redis Cluster the append and the publish are one script on the room's shard. The writer finds the
rooms to store in a set (`history_rooms`) that appends add their room to, after the append (History.relist
says when): a room leaves the set only when its stream is empty, and the writer checks the stream again
after removing it, so an entry appended meanwhile is never left out.
"""

from __future__ import annotations

import logging
import re
import time
import typing

import aiopg
from aiohttp import web
from redis.asyncio import Redis

from ..lib import encoding
from ..settings import Settings
from ..store import db
from ..store.kv import publish_command, rkey
from ..store.leases import job_under_lease
from ..store.room_channels import history_rooms, room_channel, room_stored, room_stream

if typing.TYPE_CHECKING:
    from ..ops.metrics import Metrics

logger = logging.getLogger(__name__)

BATCH = 500
# A guest/:id read also shows entries not yet stored; it reads at most this many of them.
PENDING_SCAN = 2000
SHUTDOWN_WAIT = 30.0
# Seconds a stored entry stays in the stream for replays: far longer than a subscriber takes to
# come back after Redis does (broker.RETRY_DELAYS), or to notice a half-open connection (15 s).
REPLAY_WINDOW = 60.0
LISTED_FOR = REPLAY_WINDOW / 2
# Stream entry fields: the message for the table (JSON), the frame the room was sent (JSON without
# its closing brace: the entry's id goes in as its "seq", see SEQ), the id of the entry before it.
FIELD, FRAME, PREV = "m", "f", "p"
SEQ = b',"seq":"'
PREV_SEQ = b'","prev":"'

# One atomic step, so the stream's order is the order in which every subscriber hears the frames:
# append the entry, then publish (ARGV[3]: PUBLISH, or SPUBLISH on a cluster) the frame carrying the
# entry's id as "seq" and the id of the room's entry before it as "prev" (the same bytes with_seq
# builds for a replay): a subscriber that hears a frame whose "prev" it never heard knows it missed
# one. Returns {id, prev}. The stream and the channel share the room's hash tag: on a cluster a
# script may touch only its own shard's keys.
APPEND_AND_PUBLISH = """
local last = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
local prev = '0-0'
if last[1] then prev = last[1][1] end
local id = redis.call('XADD', KEYS[1], '*', 'm', ARGV[1], 'f', ARGV[2], 'p', prev)
redis.call(ARGV[3], KEYS[2], ARGV[2] .. ',"seq":"' .. id .. '","prev":"' .. prev .. '"}')
return {id, prev}
"""

INSERT_SQL = """
    INSERT INTO chat_messages (room_id, user_id, uuid, stream_id, content, user_info, msg_time)
    SELECT v.room_id, u.id, v.uuid, v.stream_id, v.content, v.user_info, to_timestamp(v.msg_time)
    FROM unnest(%s::bigint[], %s::bigint[], %s::text[], %s::text[], %s::text[], %s::jsonb[], %s::float8[])
         WITH ORDINALITY AS v(room_id, user_id, uuid, stream_id, content, user_info, msg_time, ord)
    -- a sender deleted meanwhile keeps the message, without the link
    LEFT JOIN users u ON u.id = v.user_id
    ORDER BY v.ord
    ON CONFLICT (room_id, stream_id) DO NOTHING
"""
# Messages deleted by a moderator are kept (deleted_at) but shown nowhere.
RECENT_SQL = """
    SELECT id, stream_id, room_id, user_id, uuid, content, user_info, extract(epoch FROM msg_time) AS msg_time
    FROM chat_messages WHERE room_id = %s AND deleted_at IS NULL ORDER BY id DESC LIMIT %s
"""
IN_TABLE_SQL = "SELECT stream_id FROM chat_messages WHERE room_id = %s AND stream_id = ANY(%s)"
# How a moderator names a message (`ref` of recent()): by its stream id ("<ms>-<n>", every message sent
# through the chat) or, for a row without one (loaded by the demo, kept from before the stream), by its id.
STREAM_ID_RE = re.compile(r"[0-9]{1,19}-[0-9]{1,19}")
ROW_ID_RE = re.compile(r"[1-9][0-9]{0,17}")
DELETE_ROW_SQL = """
    UPDATE chat_messages SET deleted_at = now(), deleted_by = %s WHERE id = %s AND room_id = %s
      AND stream_id IS NULL AND deleted_at IS NULL
    RETURNING room_id, user_id, content
"""
DELETE_SQL = """
    UPDATE chat_messages SET deleted_at = now(), deleted_by = %s WHERE room_id = %s AND stream_id = %s
      AND deleted_at IS NULL
    RETURNING room_id, user_id, content
"""
# A message still only in the stream is stored right away, deleted; the batch writer's later insert of the
# same stream_id then does nothing (ON CONFLICT), and one that came first is marked deleted here.
DELETE_PENDING_SQL = """
    INSERT INTO chat_messages (room_id, user_id, uuid, stream_id, content, user_info, msg_time, deleted_at, deleted_by)
    SELECT %(room_id)s, u.id, %(uuid)s, %(stream_id)s, %(content)s, %(user_info)s::jsonb, to_timestamp(%(t)s), now(),
           %(admin_id)s
    FROM (SELECT 1) one LEFT JOIN users u ON u.id = %(user_id)s
    ON CONFLICT (room_id, stream_id) DO UPDATE SET deleted_at = COALESCE(chat_messages.deleted_at, now()),
                                          deleted_by = COALESCE(chat_messages.deleted_by, EXCLUDED.deleted_by)
    RETURNING room_id, user_id, content
"""


def legacy_stream(settings: Settings) -> tuple[str, str]:
    """The one stream every room shared before each room had its own, and its writer's mark: what it still
    holds is stored, then it is deleted (a single Redis only: a cluster never had it)."""
    return rkey(settings, "chat", "history"), rkey(settings, "chat", "history", "stored")


def entry(
    room_id: int, user_id: int, uuid: str, content: str, user: dict[str, str], msg_time: float
) -> bytes:
    """The table's part of a SEND_ALL's stream entry (the FIELD), as JSON."""
    return encoding.dumps(
        {"room_id": room_id, "user_id": user_id, "uuid": uuid, "content": content, "user": user, "t": msg_time}
    )


def open_frame(frame: dict[str, typing.Any]) -> bytes:
    """A frame's JSON without its closing brace, ready for with_seq (the frame must not be empty)."""
    return encoding.dumps(frame)[:-1]


def with_seq(opened: bytes, seq: bytes, prev: bytes | None) -> bytes:
    """The frame as the room hears it: `{..., "seq": "<stream id>", "prev": "<the entry before>"}`
    (APPEND_AND_PUBLISH builds the same; without "prev" for an entry that has none)."""
    if prev is None:
        return opened + SEQ + seq + b'"}'
    return opened + SEQ + seq + PREV_SEQ + prev + b'"}'


def seq_of(data: bytes) -> tuple[bytes, bytes | None] | None:
    """The "seq" and "prev" (None: none) of a frame published by APPEND_AND_PUBLISH (its last fields); None
    for other frames."""
    at = data.rfind(SEQ)
    if at < 0 or not data.endswith(b'"}'):
        return None
    seq, _, prev = data[at + len(SEQ):-2].partition(PREV_SEQ)
    return seq, prev or None


def _bytes(value: str | bytes) -> bytes:
    return value.encode() if isinstance(value, str) else value


# redis-py types a range's reply for either decoding; these say which one each client answers.
TextEntries = list[tuple[str, dict[str, str]]]
ByteEntries = list[tuple[bytes, dict[bytes, bytes]]]


def parse_id(stream_id: bytes | str) -> tuple[int, int]:
    """A stream id ("<ms>-<n>") as a comparable pair; (0, 0) for anything else."""
    ms, _, n = (stream_id.decode() if isinstance(stream_id, bytes) else stream_id).partition("-")
    try:
        return int(ms), int(n or 0)
    except ValueError:
        return 0, 0


async def missed(client: Redis, settings: Settings, room_id: int, after: bytes, count: int
                 ) -> list[tuple[bytes, bytes]]:
    """The frames appended to a room's stream after the entry id `after`, oldest first, as (id, frame).

    `client` must answer bytes (decode_responses off); at most `count` entries are read.
    """
    entries = typing.cast(
        ByteEntries, await client.xrange(room_stream(settings, room_id), min=b"(" + after, max=b"+", count=count)
    )
    return [(stream_id, with_seq(opened, stream_id, fields.get(PREV.encode()))) for stream_id, fields in entries
            if (opened := fields.get(FRAME.encode())) is not None]


async def last_id(client: Redis, settings: Settings, room_id: int) -> bytes:
    """The id of the newest entry of a room's stream (b"0-0" when it has none): every entry appended
    from now on comes after it."""
    newest = typing.cast(ByteEntries, await client.xrevrange(room_stream(settings, room_id), count=1))
    return newest[0][0] if newest else b"0-0"


class History:
    def __init__(self, redis: Redis, pool: aiopg.Pool, settings: Settings) -> None:
        self.redis = redis
        self.pool = pool
        self.settings = settings
        self.rooms_key = history_rooms(settings)
        self._append = redis.register_script(APPEND_AND_PUBLISH)
        self._publish = publish_command(redis)
        # Per room, when this process last put it in the writer's list (monotonic s); rooms appended to since.
        self._listed: dict[int, float] = {}
        self._unlisted: set[int] = set()
        self.metrics: Metrics | None = None

    async def append(self, room_id: int, message: bytes, frame: dict[str, typing.Any]) -> tuple[bytes, bytes]:
        """Append a SEND_ALL to the room's stream and publish `frame` on the room's channel; the entry's id and
        the id of the entry before it (b"0-0": none).

        `message` is the table's part (`entry`). Once this returns the message is acknowledged.
        """
        s = self.settings
        seq, prev = await self._append(keys=[room_stream(s, room_id), room_channel(s, room_id)],
                                 args=[message, open_frame(frame), self._publish])
        # Into the writer's list after the append, never before (see the module's docstring): at once when
        # this process has not listed the room for LISTED_FOR seconds, else with the next `relist`.
        if time.monotonic() - self._listed.get(room_id, -LISTED_FOR) >= LISTED_FOR:
            await self.redis.sadd(self.rooms_key, room_id)
            self._listed[room_id] = time.monotonic()
        else:
            self._unlisted.add(room_id)
        return _bytes(seq), _bytes(prev)

    async def relist(self) -> None:
        """Put the rooms appended to since the last call into the writer's list (every chat_online_interval).

        Why the messages between two calls can wait for it: their room was listed by this process less
        than LISTED_FOR seconds before, and the writer takes a room out of the list only when its stream
        is empty, which it cannot be while it holds an entry appended less than REPLAY_WINDOW (> LISTED_FOR)
        seconds ago, unless a moderator deleted them all or Redis lost its data: then this puts it back.
        One SADD per process and interval, not one per message, and off the room's shard on a cluster.
        """
        if not self._unlisted:
            return
        rooms, self._unlisted = self._unlisted, set()
        try:
            await self.redis.sadd(self.rooms_key, *rooms)
        except BaseException:
            self._unlisted |= rooms
            raise
        now = time.monotonic()
        for room_id in rooms:
            self._listed[room_id] = now

    async def flush(self) -> int:
        """Store every entry after the last stored one of every room in PostgreSQL, a batch per statement;
        the entries stored. Then entries stored more than REPLAY_WINDOW seconds ago leave the streams."""
        moved = 0
        lag = 0.0
        for room in typing.cast(set[str], await self.redis.smembers(self.rooms_key)):
            try:
                room_id = int(room)
            except ValueError:
                await self.redis.srem(self.rooms_key, room)
                continue
            room_moved, room_lag = await self._flush_room(room_id)
            moved += room_moved
            lag = max(lag, room_lag)
        moved += await self._flush_legacy()
        if self.metrics is not None:
            self.metrics.chat_history_lag.set(lag)
        return moved

    async def _flush_room(self, room_id: int) -> tuple[int, float]:
        """Store one room's unstored entries and trim its stream; (entries stored, seconds the oldest waited)."""
        key, stored_key = room_stream(self.settings, room_id), room_stored(self.settings, room_id)
        moved, lag = 0, 0.0
        after = await self._stored_up_to(room_id)
        while True:
            entries = typing.cast(TextEntries, await self.redis.xrange(key, "(" + after, "+", count=BATCH))
            if not entries:
                break
            if not moved:
                # An entry's id is the time it was appended (ms): the oldest waited longest.
                lag = max(0.0, time.time() - parse_id(entries[0][0])[0] / 1000)
            await self.store(entries)
            # Only after the commit: until then the entries are the one copy.
            after = entries[-1][0]
            await self.redis.set(stored_key, after)
            moved += len(entries)
        # Never an entry not yet stored, whatever its age (PostgreSQL may have been away).
        oldest_kept = min(parse_id(after)[0] + 1, int((time.time() - REPLAY_WINDOW) * 1000))
        await self.redis.xtrim(key, minid=f"{oldest_kept}-0", approximate=False)
        if not await self.redis.xlen(key):
            await self.redis.srem(self.rooms_key, room_id)
            # An append between the trim and the removal added the room before it was removed: look again.
            if await self.redis.xlen(key):
                await self.redis.sadd(self.rooms_key, room_id)
        return moved, lag

    async def _flush_legacy(self) -> int:
        """Store what the shared stream of earlier versions still holds, then delete it."""
        key, stored_key = legacy_stream(self.settings)
        if not await self.redis.exists(key):
            return 0
        moved = 0
        after = typing.cast(str | None, await self.redis.get(stored_key)) or "0-0"
        while entries := typing.cast(TextEntries, await self.redis.xrange(key, "(" + after, "+", count=BATCH)):
            await self.store(entries)
            after = entries[-1][0]
            await self.redis.set(stored_key, after)
            moved += len(entries)
        await self.redis.delete(key)
        await self.redis.delete(stored_key)
        return moved

    async def _stored_up_to(self, room_id: int) -> str:
        """The id of the room's last entry stored in PostgreSQL ("0-0" before the first)."""
        return typing.cast(str | None, await self.redis.get(room_stored(self.settings, room_id))) or "0-0"

    async def store(self, entries: TextEntries) -> None:
        """Insert stream entries in one statement; entries stored before are skipped."""
        rows = []
        for stream_id, fields in entries:
            try:
                rows.append((stream_id, encoding.loads(fields[FIELD])))
            except (KeyError, encoding.JSONDecodeError):
                logger.warning("chat history: dropped a malformed stream entry %s", stream_id)
        if not rows:
            return
        await db.execute(
            self.pool,
            INSERT_SQL,
            (
                [m["room_id"] for _, m in rows],
                [m["user_id"] for _, m in rows],
                [m["uuid"] for _, m in rows],
                [stream_id for stream_id, _ in rows],
                [m["content"] for _, m in rows],
                [encoding.dumps_str(m["user"]) for _, m in rows],
                [m["t"] for _, m in rows],
            ),
        )

    async def recent(self, room_id: int, limit: int) -> list[dict[str, typing.Any]]:
        """The newest `limit` messages of a room, oldest first: the table plus what the stream holds unstored."""
        rows = await db.fetchall(self.pool, RECENT_SQL, (room_id, limit))
        rows.reverse()
        for row in rows:
            row["ref"] = row["stream_id"] or str(row["id"])
        stored = {row["stream_id"] for row in rows}
        after = await self._stored_up_to(room_id)
        pending = []
        newest = typing.cast(TextEntries, await self.redis.xrevrange(
            room_stream(self.settings, room_id), "+", "(" + after, count=PENDING_SCAN))
        unstored = [(stream_id, fields) for stream_id, fields in newest if stream_id not in stored]
        if unstored:
            # Stored meanwhile, or deleted by a moderator before the writer came: the table has its say.
            stored |= {row["stream_id"] for row in await db.fetchall(
                self.pool, IN_TABLE_SQL, (room_id, [stream_id for stream_id, _ in unstored]))}
        for stream_id, fields in reversed(unstored):
            if stream_id in stored:
                continue
            try:
                m = encoding.loads(fields[FIELD])
            except (KeyError, encoding.JSONDecodeError):
                continue
            pending.append(
                {"ref": stream_id, "stream_id": stream_id, "room_id": room_id, "user_id": m["user_id"],
                 "uuid": m["uuid"], "content": m["content"], "user_info": m["user"], "msg_time": m["t"]}
            )
        return (rows + pending)[-limit:]

    async def delete(self, room_id: int, ref: str, admin_id: int | None) -> db.Row | None:
        """A moderator's delete of the message `ref` names in a room (recent()'s `ref`: a stream id, or the row
        id of a message without one): gone from guest/:id and from replays; the row stays, marked (the audit).
        The deleted message (room_id, user_id, content), or None when the room has no such message (whatever
        `ref` holds)."""
        if ROW_ID_RE.fullmatch(ref):
            return await db.fetchone(self.pool, DELETE_ROW_SQL, (admin_id, int(ref), room_id))
        if not STREAM_ID_RE.fullmatch(ref) or max(parse_id(ref)) >= 2**64:
            return None
        stream_id, key = ref, room_stream(self.settings, room_id)
        row = await db.fetchone(self.pool, DELETE_SQL, (admin_id, room_id, stream_id))
        if row is None:
            entries = typing.cast(TextEntries, await self.redis.xrange(key, stream_id, stream_id, count=1))
            if not entries:
                return await db.fetchone(self.pool, "SELECT room_id, user_id, content FROM chat_messages"
                                                    " WHERE room_id = %s AND stream_id = %s", (room_id, stream_id))
            m = encoding.loads(entries[0][1][FIELD])
            row = await db.fetchone(self.pool, DELETE_PENDING_SQL, {
                "room_id": room_id, "user_id": m["user_id"], "uuid": m["uuid"], "stream_id": stream_id,
                "content": m["content"], "user_info": encoding.dumps_str(m["user"]), "t": m["t"],
                "admin_id": admin_id})
        # Out of the stream as well, so a process replaying what its viewers missed does not send it again.
        await self.redis.xdel(key, stream_id)
        return row


async def history_ctx(app: web.Application) -> typing.AsyncIterator[None]:
    """The batch writer: runs in the process holding the lease; every process drains once at shutdown."""
    from ..keys import realtime_key

    realtime = app[realtime_key]
    history, settings = realtime.history, realtime.settings
    key = rkey(settings, "lease", "chat_history")
    loop = job_under_lease(
        history.redis, key, settings.chat_history_interval, history.flush,
        name="chat history", shutdown_wait=SHUTDOWN_WAIT, metrics=realtime.metrics,
    )
    async with loop:
        yield
    try:
        await history.relist()
        moved = await history.flush()
    except Exception:
        logger.exception("final chat history flush failed; the messages stay in Redis for the next writer")
    else:
        if moved:
            logger.info("wrote %d chat message(s) to the history on shutdown", moved)
