"""Chat history: each SEND_ALL goes into a Redis stream before its sender is answered; one process at a
time (a Redis lease) moves the stream into chat_messages in batches.

The stream entry is the durable copy from the moment the sender's echo (the acknowledgement) goes
out, so a process killed right after loses nothing: the next writer, in any process, drains it.
stream_id is UNIQUE in the table, so an entry written twice (a writer killed between its commit
and its XDEL, or two writers overlapping while the lease changes hands) is stored once.
"""

from __future__ import annotations

import asyncio
import logging
import typing

import aiopg
from aiohttp import web
from redis.asyncio import Redis

from .. import db, encoding
from ..cache import rkey
from ..settings import Settings
from ..tasks.leader import Lease, run_as_leader

logger = logging.getLogger(__name__)

BATCH = 500
# A guest/:id read also shows entries not yet moved; it looks this far back in the stream.
PENDING_SCAN = 2000
MIN_LEASE_TTL = 10.0
SHUTDOWN_WAIT = 30.0
FIELD = "m"

INSERT_SQL = """
    INSERT INTO chat_messages (room_id, user_id, uuid, stream_id, content, user_info, msg_time)
    SELECT v.room_id, u.id, v.uuid, v.stream_id, v.content, v.user_info, to_timestamp(v.msg_time)
    FROM unnest(%s::bigint[], %s::bigint[], %s::text[], %s::text[], %s::text[], %s::jsonb[], %s::float8[])
         WITH ORDINALITY AS v(room_id, user_id, uuid, stream_id, content, user_info, msg_time, ord)
    -- a sender deleted meanwhile keeps the message, without the link
    LEFT JOIN users u ON u.id = v.user_id
    ORDER BY v.ord
    ON CONFLICT (stream_id) DO NOTHING
"""
RECENT_SQL = """
    SELECT stream_id, room_id, user_id, uuid, content, user_info, extract(epoch FROM msg_time) AS msg_time
    FROM chat_messages WHERE room_id = %s ORDER BY id DESC LIMIT %s
"""


def stream_key(settings: Settings) -> str:
    return rkey(settings, "chat", "history")


def entry(
    room_id: int, user_id: int, uuid: str, content: str, user: dict[str, str], msg_time: float
) -> dict[str, bytes]:
    """The stream entry of one SEND_ALL (one field: the message as JSON)."""
    return {
        FIELD: encoding.dumps(
            {"room_id": room_id, "user_id": user_id, "uuid": uuid, "content": content, "user": user, "t": msg_time}
        )
    }


class History:
    def __init__(self, redis: Redis, pool: aiopg.Pool, settings: Settings) -> None:
        self.redis = redis
        self.pool = pool
        self.settings = settings
        self.key = stream_key(settings)

    async def flush(self) -> int:
        """Move everything in the stream into PostgreSQL, a batch per statement; the entries moved."""
        moved = 0
        while True:
            entries = await self.redis.xrange(self.key, "-", "+", count=BATCH)
            if not entries:
                return moved
            await self.store(entries)
            # Only after the commit: until then the entries are the one copy.
            await self.redis.xdel(self.key, *(stream_id for stream_id, _ in entries))
            moved += len(entries)

    async def store(self, entries: list[tuple[str, dict[str, str]]]) -> None:
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
        """The newest `limit` messages of a room, oldest first: the table plus what still waits in the stream."""
        rows = await db.fetchall(self.pool, RECENT_SQL, (room_id, limit))
        rows.reverse()
        stored = {row["stream_id"] for row in rows}
        pending = []
        for stream_id, fields in reversed(await self.redis.xrevrange(self.key, "+", "-", count=PENDING_SCAN)):
            if stream_id in stored:
                continue
            try:
                m = encoding.loads(fields[FIELD])
            except (KeyError, encoding.JSONDecodeError):
                continue
            if m["room_id"] == room_id:
                pending.append(
                    {"stream_id": stream_id, "room_id": room_id, "user_id": m["user_id"], "uuid": m["uuid"],
                     "content": m["content"], "user_info": m["user"], "msg_time": m["t"]}
                )
        return (rows + pending)[-limit:]


async def history_ctx(app: web.Application) -> typing.AsyncIterator[None]:
    """The batch writer: runs in the process holding the lease; every process drains once at shutdown."""
    from ..keys import realtime_key

    realtime = app[realtime_key]
    history, settings = realtime.history, realtime.settings
    interval = settings.chat_history_interval
    lease = Lease(history.redis, rkey(settings, "lease", "chat_history"), ttl=max(3 * interval, MIN_LEASE_TTL))
    stop = asyncio.Event()
    task = asyncio.create_task(
        run_as_leader(lease, interval, history.flush, name="chat history", stop=stop), name="chat-history"
    )
    yield
    stop.set()
    try:
        await asyncio.wait_for(task, SHUTDOWN_WAIT)
    except Exception:
        logger.exception("chat history writer did not stop cleanly")
    try:
        await lease.release()
    except Exception:
        logger.warning("could not release the chat history lease", exc_info=True)
    try:
        moved = await history.flush()
    except Exception:
        logger.exception("final chat history flush failed; the messages stay in Redis for the next writer")
    else:
        if moved:
            logger.info("wrote %d chat message(s) to the history on shutdown", moved)
