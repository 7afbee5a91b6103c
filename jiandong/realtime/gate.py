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
from ..store.mutes import mute_keys, muted_key

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
        keys = [muted_key(s), *mute_keys(s, user_id, rooms), rate_key(s, "user", user_id),
                rate_key(s, "address", address or "-")]
        address_limit = s.chat_rate_address_count if address else 0
        verdict = await self._admit(keys=keys, args=[
            user_id, int(time.time() * 1000), int(s.chat_rate_window * 1000), s.chat_rate_count, address_limit,
            f"{self._prefix}-{next(self._seq)}"])
        if verdict == 1:
            raise Forbidden(MUTED_MSG)
        if verdict:
            raise Throttled(THROTTLED_MSG)
