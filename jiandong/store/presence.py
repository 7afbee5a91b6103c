"""Viewer counts across processes: each process writes its own counts to Redis with a TTL; readers sum them.

A process's hash `presence:<process id>` holds its viewers by room id (and `all`, every connection
it holds); the sorted set `presence:procs` lists the processes by the time their hash expires. A
process that dies stops refreshing: its hash expires and its viewers drop out of every sum.
`chat:peaks` keeps each room's most viewers at once, for the dashboard.
"""

from __future__ import annotations

import time
import typing

from redis.asyncio import Redis

from ..settings import Settings
from .kv import rkey

ALL = "all"


def procs_key(settings: Settings) -> str:
    return rkey(settings, "presence", "procs")


def peaks_key(settings: Settings) -> str:
    """A sorted set: each room's most viewers at once (as summed across processes), kept with ZADD GT."""
    return rkey(settings, "chat", "peaks")


def counts_key(settings: Settings, process_id: str) -> str:
    return rkey(settings, "presence", process_id)


async def publish_counts(redis: Redis, settings: Settings, process_id: str, counts: dict[str, int]) -> None:
    """Replace this process's counts (one round trip); they expire unless written again within the TTL."""
    key = counts_key(settings, process_id)
    ttl_ms = int(settings.chat_presence_ttl * 1000)
    now_ms = int(time.time() * 1000)
    # Two transactions, as the hash and the listing may live on different cluster nodes: each is replaced at
    # once (a reader never sees a hash half written); a failure between them only delays a new process's counts.
    async with redis.pipeline(transaction=True) as pipe:
        pipe.delete(key)
        # redis types the mapping's keys invariantly (Mapping[EncodableT, ...]); str keys are what it takes.
        pipe.hset(key, mapping=counts)  # type: ignore[arg-type]
        pipe.pexpire(key, ttl_ms)
        await pipe.execute()
    async with redis.pipeline(transaction=True) as pipe:
        pipe.zadd(procs_key(settings), {process_id: now_ms + ttl_ms})
        # Entries of processes that died long ago; their hashes are gone already.
        pipe.zremrangebyscore(procs_key(settings), "-inf", now_ms - ttl_ms)
        await pipe.execute()


async def withdraw(redis: Redis, settings: Settings, process_id: str) -> None:
    """Take this process's viewers out of the counts at once (clean shutdown)."""
    # Two single-key commands (a cluster may hold them apart); either alone already takes the viewers out.
    async with redis.pipeline(transaction=False) as pipe:
        pipe.zrem(procs_key(settings), process_id)
        pipe.delete(counts_key(settings, process_id))
        await pipe.execute()


async def _sum(redis: Redis, settings: Settings, fields: list[str]) -> list[int]:
    now_ms = int(time.time() * 1000)
    # The app's client decodes replies (store/kv.py): the members are str.
    processes = typing.cast(list[str], await redis.zrangebyscore(procs_key(settings), now_ms, "+inf"))
    totals = [0] * len(fields)
    if not processes or not fields:
        return totals
    async with redis.pipeline(transaction=False) as pipe:
        for process_id in processes:
            pipe.hmget(counts_key(settings, process_id), fields)
        for values in await pipe.execute():
            for i, value in enumerate(values):
                if value:
                    totals[i] += int(value)
    return totals


async def room_viewers(redis: Redis, settings: Settings, room_ids: typing.Iterable[int]) -> dict[int, int]:
    """Websocket viewers of each room across all processes (rooms without any are 0)."""
    wanted = list(dict.fromkeys(int(r) for r in room_ids))
    totals = await _sum(redis, settings, [str(r) for r in wanted])
    return dict(zip(wanted, totals, strict=True))


async def viewers_with_total(
    redis: Redis, settings: Settings, room_ids: typing.Iterable[int]
) -> tuple[dict[int, int], int]:
    """Like room_viewers, plus the number of connections in all (what old no-room clients show)."""
    wanted = list(dict.fromkeys(int(r) for r in room_ids))
    totals = await _sum(redis, settings, [*(str(r) for r in wanted), ALL])
    return dict(zip(wanted, totals[:-1], strict=True)), totals[-1]
