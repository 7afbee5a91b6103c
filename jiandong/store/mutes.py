"""Chat mutes in Redis: users muted with no end, and timed mutes (everywhere or in one room) as keys
that live as long as the mute. services/moderation.py keeps the mutes themselves (chat_mutes) and
sets these from them; the chat checks the timed ones at every send, and the set of users muted with no end
with the sender's standing, every few seconds (one key that every send would ask: on a Redis Cluster, one
node's)."""

from __future__ import annotations

import typing

from redis.asyncio import Redis

from ..settings import Settings
from .kv import rkey


def muted_key(settings: Settings) -> str:
    """The Redis set of the ids of users who may not send, with no end (an admin adds and removes them)."""
    return rkey(settings, "chat", "muted")


async def muted_for_good(redis: Redis, settings: Settings, user_id: int) -> bool:
    """Whether the user is in the set of users muted with no end."""
    return bool(await redis.sismember(muted_key(settings), str(user_id)))


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


def mute_keys(settings: Settings, user_id: int, rooms: typing.Iterable[int | None]) -> list[str]:
    """The timed mute keys that stop a message reaching these rooms: everywhere's, and each room's."""
    return [mute_key(settings, user_id, None)] + [mute_key(settings, user_id, r) for r in set(rooms) if r is not None]


async def is_muted(redis: Redis, settings: Settings, user_id: int, rooms: typing.Iterable[int | None]) -> bool:
    """Whether a mute for a time keeps the user from these rooms (None: no room): everywhere, or in one of
    them. (Muted with no end is `muted_for_good`.)"""
    # One EXISTS per key: the keys live in different cluster slots, and a cluster pipeline splits a
    # multi-key command across slots into a reply per slot.
    async with redis.pipeline(transaction=False) as pipe:
        for key in mute_keys(settings, user_id, rooms):
            pipe.exists(key)
        return any(await pipe.execute())
