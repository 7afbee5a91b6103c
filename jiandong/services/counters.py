"""View counts (browse_num): counted in Redis on each play, moved to PostgreSQL in batches.

A play is one HINCRBY on a per-kind hash (sent together with concurrent plays), never a row
lock on a hot row. The flusher moves a hash in one atomic step (RENAME to a key of its own),
adds it to PostgreSQL in one statement, then deletes that key; plays arriving meanwhile start
a fresh hash and wait for the next flush.
Flushes can run in several processes at once: each one owns the key it renamed.

While a flush is in flight its counts are neither in the main hash nor (yet) in the database,
so the keys being flushed are listed in a sorted set and reads add them too. If the database
update fails, the counts go back into the main hash (the flusher owns its key, so nobody else
retries it meanwhile) and the next flush carries them. A flusher that dies between the rename
and the delete leaves its key listed: the leader puts keys older than STALE_FLUSH_AGE back.
If it died after its commit, those counts are added twice, the one case that is not exact;
losing them instead would be the alternative.

Reads of cached content (api/videos.py, api/lives.py) hold the database count of when they were
cached plus the pending counts read now. A flush moves counts from the second part into the
first, so after a flush that moved any count of a kind, `changed(kind)` (the content cache's
invalidate) drops that kind in every process; otherwise they would serve the old database count
with the moved plays gone from Redis.
"""

from __future__ import annotations

import asyncio
import collections
import functools
import logging
import secrets
import time
import typing

import aiopg
from redis.asyncio import Redis

from ..settings import Settings
from ..store import db
from ..store.kv import is_cluster, rkey, tagged

logger = logging.getLogger(__name__)

VIDEO, LIVE = "video", "live"
TABLES = {VIDEO: "videos", LIVE: "lives"}
PUBLISHED = 1
# Plays of one item come in bursts: knowing for a few seconds that an id is published saves the
# query on all but the first play of a burst (an item unpublished meanwhile counts a few more).
KNOWN_TTL = 10.0
KNOWN_MAX = 50_000
# A flush takes milliseconds and its statement is cut off far earlier (FLUSH_STATEMENT_TIMEOUT_MS),
# so a key listed this long belongs to a dead flusher.
STALE_FLUSH_AGE = 300.0
FLUSH_STATEMENT_TIMEOUT_MS = 60_000

# KEYS: main hash, flush key, in-flight set. The rename is the atomic hand-over: an HINCRBY lands
# either before it (and is flushed now) or after it (in a new main hash). The key is listed
# first, as a failing script keeps the writes made before the failure.
TAKE_LUA = """
if redis.call('EXISTS', KEYS[1]) == 0 then
    return {}
end
local now = redis.call('TIME')
redis.call('ZADD', KEYS[3], tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000), KEYS[2])
redis.call('RENAME', KEYS[1], KEYS[2])
return redis.call('HGETALL', KEYS[2])
"""
# KEYS: flush key, in-flight set. 1 if the key was still ours to delete.
DONE_LUA = """
redis.call('ZREM', KEYS[2], KEYS[1])
return redis.call('DEL', KEYS[1])
"""
# KEYS: flush key, main hash, in-flight set. Adds the counts back; a second call finds nothing.
RESTORE_LUA = """
local counts = redis.call('HGETALL', KEYS[1])
for i = 1, #counts, 2 do
    redis.call('HINCRBY', KEYS[2], counts[i], counts[i + 1])
end
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[3], KEYS[1])
return #counts / 2
"""
# KEYS: main hash, in-flight set; ARGV: ids. One round trip for a page of ids. The flush keys are
# read without being declared in KEYS: a cluster allows that only because they share the kind's tag.
PENDING_LUA = """
local totals = redis.call('HMGET', KEYS[1], unpack(ARGV))
for i = 1, #ARGV do
    totals[i] = tonumber(totals[i]) or 0
end
for _, key in ipairs(redis.call('ZRANGE', KEYS[2], 0, -1)) do
    local counts = redis.call('HMGET', key, unpack(ARGV))
    for i = 1, #ARGV do
        totals[i] = totals[i] + (tonumber(counts[i]) or 0)
    end
end
return totals
"""

EXISTS_SQL = {kind: f"SELECT 1 FROM {table} WHERE id = %s AND status = {PUBLISHED}" for kind, table in TABLES.items()}
# One statement per kind. Ids come sorted, so two flushers touching the same rows lock them in the
# same order; a deadlock would only fail one flush, whose counts then go back to Redis.
APPLY_SQL = {
    kind: f"""
        UPDATE {table} AS t SET browse_num = t.browse_num + v.n
        FROM unnest(%s::bigint[], %s::bigint[]) AS v(id, n)
        WHERE t.id = v.id
    """
    for kind, table in TABLES.items()
}


class _Batch:
    __slots__ = ("counts", "written", "error")

    def __init__(self) -> None:
        self.counts: collections.Counter[tuple[str, str]] = collections.Counter()
        self.written = False
        self.error: BaseException | None = None


class IncrementBatcher:
    """HINCRBYs issued together: while one write is in flight, the increments arriving meanwhile
    gather into one batch, written next as one pipeline by one of their callers (group commit).

    Every caller returns only once its increment is in Redis (or raises), so a counted play is
    visible and durable as before; under load many plays share one round trip, which matters as
    a Redis command costs about as much as the rest of the request.
    """

    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self._open = _Batch()
        self._writing: asyncio.Future[None] | None = None

    async def incr(self, key: str, field: str) -> None:
        batch = self._open
        batch.counts[(key, field)] += 1
        while not batch.written:
            if self._writing is None:
                await self._write_open_batch()
            else:
                # Shielded: a caller that goes away must not cancel the write others wait on.
                await asyncio.shield(self._writing)
        if batch.error is not None:
            raise batch.error

    async def _write_open_batch(self) -> None:
        batch, self._open = self._open, _Batch()
        self._writing = asyncio.get_running_loop().create_future()
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                for (key, field), n in batch.counts.items():
                    pipe.hincrby(key, field, n)
                await pipe.execute()
        except Exception as exc:
            batch.error = exc
        except BaseException:
            batch.error = ConnectionError("the write of a batch of view counts was cancelled")
            raise
        finally:
            batch.written = True
            self._writing.set_result(None)
            self._writing = None


class _Lookup:
    __slots__ = ("done", "error", "ids", "totals")

    def __init__(self) -> None:
        self.ids: dict[int, None] = {}
        self.totals: dict[int, int] = {}
        self.done = False
        self.error: BaseException | None = None


class LookupBatcher:
    """Reads of pending counts issued together, like IncrementBatcher: while one read is in flight,
    the reads arriving meanwhile gather into one batch, sent next as one call by one of their callers.

    A batch is joined only before it is sent, so every caller sees Redis as it was after its call
    began (a play counted before a read began is in it). A hot video's page reads its count on
    every view; under load many views share one round trip instead of paying one each.
    """

    def __init__(self, read: typing.Callable[[list[int]], typing.Awaitable[typing.Sequence[typing.Any]]]) -> None:
        self._read = read
        self._open = _Lookup()
        self._reading: asyncio.Future[None] | None = None

    async def get(self, ids: typing.Iterable[int]) -> dict[int, int]:
        """Pending counts of (at least) `ids`, by id; ids without any are left out."""
        batch = self._open
        batch.ids.update(dict.fromkeys(ids))
        while not batch.done:
            if self._reading is None:
                await self._read_open_batch()
            else:
                # Shielded: a caller that goes away must not cancel the read others wait on.
                await asyncio.shield(self._reading)
        if batch.error is not None:
            raise batch.error
        return batch.totals

    async def _read_open_batch(self) -> None:
        batch, self._open = self._open, _Lookup()
        self._reading = asyncio.get_running_loop().create_future()
        try:
            ids = list(batch.ids)
            totals = await self._read(ids)
            batch.totals = {item_id: int(n) for item_id, n in zip(ids, totals, strict=True) if n}
        except Exception as exc:
            batch.error = exc
        except BaseException:
            batch.error = ConnectionError("the read of pending view counts was cancelled")
            raise
        finally:
            batch.done = True
            self._reading.set_result(None)
            self._reading = None


class ViewCounts:
    """Count plays, read counts not yet in the database, and flush them there."""

    def __init__(
        self,
        redis: Redis,
        pool: aiopg.Pool,
        settings: Settings,
        changed: typing.Callable[[str], typing.Awaitable[object]] | None = None,
    ) -> None:
        self.redis = redis
        self.pool = pool
        self.settings = settings
        self.changed = changed
        self._known: dict[tuple[str, int], float] = {}
        self._increments = IncrementBatcher(redis)
        self._take = redis.register_script(TAKE_LUA)
        self._done = redis.register_script(DONE_LUA)
        self._restore = redis.register_script(RESTORE_LUA)
        self._pending = redis.register_script(PENDING_LUA)
        self._lookups = {kind: LookupBatcher(functools.partial(self._read_pending, kind)) for kind in TABLES}

    def hash_key(self, kind: str) -> str:
        """`<prefix>{views:<kind>}`: a kind's main hash, its flush keys and its in-flight set share the tag,
        as the scripts take them together."""
        return tagged(self.settings, ("views", kind))

    def flushing_key(self, kind: str) -> str:
        return tagged(self.settings, ("views", kind), "flushing")

    def flush_key(self, kind: str) -> str:
        """A key of its own for one flush."""
        # 64 random bits tell concurrent flushes apart; a 32-hex-digit id would read as a login token in the
        # logs that name the key, and the log scanners rightly flag those.
        return tagged(self.settings, ("views", kind), "flush", secrets.token_hex(8))

    async def is_published(self, kind: str, item_id: int) -> bool:
        now = time.monotonic()
        if self._known.get((kind, item_id), 0.0) > now:
            return True
        if await db.fetchval(self.pool, EXISTS_SQL[kind], (item_id,)) is None:
            return False
        if len(self._known) >= KNOWN_MAX:
            self._known.clear()
        self._known[(kind, item_id)] = now + KNOWN_TTL
        return True

    async def record(self, kind: str, item_id: int) -> bool:
        """Count one play of a published item; False when there is no such item."""
        if not await self.is_published(kind, item_id):
            return False
        await self._increments.incr(self.hash_key(kind), str(item_id))
        return True

    async def pending(self, kind: str, ids: typing.Iterable[int]) -> dict[int, int]:
        """Plays not yet in the database, by id (ids without any are left out)."""
        wanted = list(dict.fromkeys(ids))
        if not wanted:
            return {}
        totals = await self._lookups[kind].get(wanted)
        return {item_id: totals[item_id] for item_id in wanted if item_id in totals}

    async def _read_pending(self, kind: str, ids: list[int]) -> typing.Any:
        return await self._pending(keys=[self.hash_key(kind), self.flushing_key(kind)], args=ids)

    async def with_pending(self, kind: str, rows: typing.Sequence[typing.MutableMapping[str, typing.Any]]) -> None:
        """Add the pending plays to each row's `browse_num`."""
        counts = await self.pending(kind, (row["id"] for row in rows))
        for row in rows:
            row["browse_num"] += counts.get(row["id"], 0)

    async def flush(self) -> dict[str, int]:
        """Move every pending count into the database; the plays moved, by kind."""
        return {kind: await self._flush_kind(kind) for kind in TABLES}

    async def _flush_kind(self, kind: str) -> int:
        flush_key = self.flush_key(kind)
        flushing = self.flushing_key(kind)
        raw = await self._take(keys=[self.hash_key(kind), flush_key, flushing])
        if not raw:
            return 0
        counts = {int(raw[i]): int(raw[i + 1]) for i in range(0, len(raw), 2)}
        ids = sorted(counts)
        try:
            async with db.transaction(self.pool) as cur:
                await cur.execute(f"SET LOCAL statement_timeout = {FLUSH_STATEMENT_TIMEOUT_MS}")
                await cur.execute(APPLY_SQL[kind], (ids, [counts[i] for i in ids]))
        except BaseException:
            # Back into the main hash, so reads keep showing them and the next flush retries them.
            await self._restore(keys=[flush_key, self.hash_key(kind), flushing])
            raise
        if not await self._done(keys=[flush_key, flushing]):
            logger.warning("view counts of %s were put back by another process after a slow flush: "
                           "they may be counted twice", flush_key)
        if self.changed is not None:
            try:
                # After the delete: till then reads still add the flushed counts as in flight.
                await self.changed(kind)
            except Exception:
                # The counts are moved; a process that missed the message drops its cache when
                # its subscription reconnects, or when the entries expire.
                logger.warning("could not announce the flush of %s view counts", kind, exc_info=True)
        return sum(counts.values())

    async def recover_stale(self, max_age: float = STALE_FLUSH_AGE) -> int:
        """Put back the counts of flushes that never finished (their process died); the ids restored.

        On a single Redis also the counts kept under the names of versions before the hash tags
        (`<prefix>views:<kind>`, its flush keys and in-flight set): the main hash at once, a flush key once it
        is as old as a dead flusher's. Those versions ran on no cluster, so a cluster has none of them.
        """
        seconds, micros = await self.redis.time()
        cutoff = seconds * 1000 + micros // 1000 - int(max_age * 1000)
        restored = 0
        for kind in TABLES:
            flushing = self.flushing_key(kind)
            restored += await self._put_back(kind, flushing, cutoff)
            if not is_cluster(self.redis):
                earlier_flushing = rkey(self.settings, "views", kind, "flushing")
                # An earlier version's process may still count into its hash during a rolling upgrade.
                n = int(await self._restore(keys=[rkey(self.settings, "views", kind), self.hash_key(kind),
                                                  earlier_flushing]))
                if n:
                    logger.info("took the pending view counts of %d %s ids from the key of an earlier version", n, kind)
                restored += n + await self._put_back(kind, earlier_flushing, cutoff)
        return restored

    async def _put_back(self, kind: str, flushing: str, cutoff: int) -> int:
        """Put back into the main hash the counts of the flush keys listed in `flushing` before `cutoff` (ms)."""
        restored = 0
        # The app's client decodes replies (store/kv.py): the members are str.
        for key in typing.cast(list[str], await self.redis.zrangebyscore(flushing, "-inf", cutoff)):
            n = int(await self._restore(keys=[key, self.hash_key(kind), flushing]))
            logger.warning("put back %d view counts of an unfinished flush (%s)", n, key)
            restored += n
        return restored
