"""Whether a user may send a chat message now: their mutes, for every room the message reaches, and the rate
limits per user and per client address, across all sockets and processes, decided in one atomic Redis step."""

from __future__ import annotations

import itertools
import secrets
import time
import typing

from redis.asyncio import Redis

from ..errors import Forbidden, Throttled
from ..settings import Settings
from ..store.kv import rkey

MUTED_MSG = "你已被禁言"
THROTTLED_MSG = "发言太频繁，请稍后再试"

# KEYS: the set of users muted with no end, the user's timed mute keys (everywhere, then each room the
# message reaches), then the user's and the address's send logs (sorted sets of send times, ms).
# ARGV: user id, now (ms), window (ms), the user's limit, the address's limit (0: none), a unique member.
# Refuses without counting when muted (1); when a log is full (2: the user's, 3: the address's) counts
# nothing either; else records the send in both logs (0). A log holds at most its limit: memory is bounded.
ADMIT = """
if redis.call('SISMEMBER', KEYS[1], ARGV[1]) == 1 then return 1 end
local n = #KEYS
for i = 2, n - 2 do
  if redis.call('EXISTS', KEYS[i]) == 1 then return 1 end
end
local now, window = tonumber(ARGV[2]), tonumber(ARGV[3])
for i = 0, 1 do
  local limit = tonumber(ARGV[4 + i])
  if limit > 0 then
    redis.call('ZREMRANGEBYSCORE', KEYS[n - 1 + i], '-inf', now - window)
    if redis.call('ZCARD', KEYS[n - 1 + i]) >= limit then return 2 + i end
  end
end
for i = 0, 1 do
  if tonumber(ARGV[4 + i]) > 0 then
    redis.call('ZADD', KEYS[n - 1 + i], now, ARGV[6])
    redis.call('PEXPIRE', KEYS[n - 1 + i], window)
  end
end
return 0
"""


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


def _mute_keys(settings: Settings, user_id: int, rooms: typing.Iterable[int | None]) -> list[str]:
    """The timed mute keys that stop a message reaching these rooms: everywhere's, and each room's."""
    return [mute_key(settings, user_id, None)] + [mute_key(settings, user_id, r) for r in set(rooms) if r is not None]


async def is_muted(redis: Redis, settings: Settings, user_id: int, rooms: typing.Iterable[int | None]) -> bool:
    """Whether the user may not reach these rooms (None: no room): muted with no end, everywhere for a
    time, or in one of them."""
    async with redis.pipeline(transaction=False) as pipe:
        pipe.sismember(muted_key(settings), str(user_id))
        pipe.exists(*_mute_keys(settings, user_id, rooms))
        forever, timed = await pipe.execute()
    return bool(forever) or bool(timed)


def rate_key(settings: Settings, who: str, ident: typing.Any) -> str:
    """The log of recent sends of a user (`who` "user") or of a client address ("address")."""
    return rkey(settings, "chat", "rate", who, ident)


class Gate:
    """`await gate.admit(user_id, address, rooms)` before a message goes out; refusals are ApiErrors."""

    def __init__(self, redis: Redis, settings: Settings) -> None:
        self.settings = settings
        self._admit = redis.register_script(ADMIT)
        # Members of the send logs are unique across processes: this process's id and a counter.
        self._prefix = secrets.token_hex(6)
        self._seq = itertools.count()

    async def admit(self, user_id: int, address: str | None, rooms: typing.Iterable[int | None]) -> None:
        """Record a send of `user_id` from `address` (None: unknown, no address limit) reaching `rooms`.

        Raises Forbidden (10001) when the user is muted for any of them (or everywhere), Throttled (10010)
        when the user, or the address, sent its limit within the window; a refused send is not counted.
        """
        s = self.settings
        keys = [muted_key(s), *_mute_keys(s, user_id, rooms), rate_key(s, "user", user_id),
                rate_key(s, "address", address or "-")]
        address_limit = s.chat_rate_address_count if address else 0
        verdict = await self._admit(keys=keys, args=[
            user_id, int(time.time() * 1000), int(s.chat_rate_window * 1000), s.chat_rate_count, address_limit,
            f"{self._prefix}-{next(self._seq)}"])
        if verdict == 1:
            raise Forbidden(MUTED_MSG)
        if verdict:
            raise Throttled(THROTTLED_MSG)
