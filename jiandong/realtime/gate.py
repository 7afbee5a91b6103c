"""Whether a user may send a chat message now: their mutes, for every room the message reaches, and the rate
limits per user and per client address, across all sockets and processes, each log checked and counted in
one atomic Redis step."""

from __future__ import annotations

import itertools
import secrets
import time
import typing

from redis.asyncio import Redis

from ..errors import Forbidden, Throttled
from ..settings import Settings
from ..store.kv import rkey
from ..store.mutes import is_muted

MUTED_MSG = "你已被禁言"
THROTTLED_MSG = "发言太频繁，请稍后再试"

# KEYS: a send log (a sorted set of send times, ms). ARGV: now (ms), window (ms), limit, a unique member.
# Full (1): nothing is counted; else the send is recorded (0). A log holds at most its limit: memory is bounded.
# One key per script: the user's and the address's logs live in different cluster slots.
TAKE = """
local now, window = tonumber(ARGV[1]), tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[3]) then return 1 end
redis.call('ZADD', KEYS[1], now, ARGV[4])
redis.call('PEXPIRE', KEYS[1], window)
return 0
"""


def rate_key(settings: Settings, who: str, ident: typing.Any) -> str:
    """The log of recent sends of a user (`who` "user") or of a client address ("address")."""
    return rkey(settings, "chat", "rate", who, ident)


class Gate:
    """`await gate.admit(user_id, address, rooms, muted_for_good)` before a message goes out; refusals are ApiErrors."""

    def __init__(self, redis: Redis, settings: Settings) -> None:
        self.redis = redis
        self.settings = settings
        self._take = redis.register_script(TAKE)
        # Members of the send logs are unique across processes: this process's id and a counter.
        self._prefix = secrets.token_hex(6)
        self._seq = itertools.count()

    async def admit(self, user_id: int, address: str | None, rooms: typing.Iterable[int | None],
                    muted_for_good: bool) -> None:
        """Record a send of `user_id` from `address` (None: unknown, no address limit) reaching `rooms`.

        Raises Forbidden (10001) when the user is muted with no end (`muted_for_good`, read with the sender's
        standing) or for a time in any of them (or everywhere), Throttled (10010)
        when the user, or the address, sent its limit within the window; a refused send is not counted:
        the user's log is checked and counted first, then the address's, and a send the address's log
        refuses is taken back out of the user's.
        """
        s = self.settings
        if muted_for_good or await is_muted(self.redis, s, user_id, rooms):
            raise Forbidden(MUTED_MSG)
        member = f"{self._prefix}-{next(self._seq)}"
        args = [int(time.time() * 1000), int(s.chat_rate_window * 1000)]
        user_log = rate_key(s, "user", user_id)
        if await self._take(keys=[user_log], args=[*args, s.chat_rate_count, member]):
            raise Throttled(THROTTLED_MSG)
        if address and s.chat_rate_address_count and await self._take(keys=[rate_key(s, "address", address)],
                                        args=[*args, s.chat_rate_address_count, member]):
            await self.redis.zrem(user_log, member)
            raise Throttled(THROTTLED_MSG)
