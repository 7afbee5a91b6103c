"""Console sign-in attempts: counted in Redis before the password is checked, slowed down rather than locked.

The policy (README, "Security settings"):

- Every attempt is counted before its password is checked, in an atomic Redis step for the address and then
  one for the account, so guesses sent together are counted together: a burst gets no more checks than a slow
  series. (Two steps, as the two keys may live on different nodes of a cluster; an attempt the account
  refuses still counts against the address, as one step would count it.)
- An address (an IPv4 address, or an IPv6 /64: one host owns a whole /64) may make `admin_login_ip_limit`
  attempts per `admin_login_window`, over all accounts; then it is refused until the window ends.
- An account may fail `admin_login_account_limit` times freely. From then on each further attempt sets a
  wait before the next one, `admin_login_backoff` seconds doubling with every failure, at most
  `admin_login_window`. The wait holds only for the addresses that have already failed on this account:
  an address that never guessed wrong (the owner of the account, somewhere else) is checked at once. So
  nobody can lock a staff account by guessing wrong, while guessing stays slow: each address gets a few
  tries on an account, then at most one per wait, and each new address one more try; with passwords
  that zxcvbn scores 3 or more (about 10^8 guesses, services/passwords.py) that is years even for
  thousands of addresses.
- Failures and the addresses they came from are remembered for `admin_login_memory` after the last one;
  a right password ends the account's slow-down (and its attempt is not held against the address).
  An owner can end it too, on the staff page (audited).
"""

from __future__ import annotations

import dataclasses
import ipaddress
import time

from redis.asyncio import Redis

from ..settings import Settings
from ..store.kv import rkey

# KEYS: the address's counter. ARGV: the address limit, the window (seconds).
# Returns 0 when the attempt is counted, else the seconds until the address may try again.
_ADDRESS_ATTEMPT = """
if tonumber(redis.call('GET', KEYS[1]) or '0') >= tonumber(ARGV[1]) then
  return math.max(redis.call('TTL', KEYS[1]), 1)
end
if redis.call('INCR', KEYS[1]) == 1 then
  redis.call('EXPIRE', KEYS[1], ARGV[2])
end
return 0
"""

# KEYS: the account's hash (n = attempts counted, until = end of its wait, a:<address> = that address's
# attempts on it). ARGV: the address's field, the account limit, the window, the first wait, the memory
# (seconds). Returns 0 when the attempt is counted, else the seconds its wait still lasts.
_ACCOUNT_ATTEMPT = """
local now = tonumber(redis.call('TIME')[1])
local wait_until = tonumber(redis.call('HGET', KEYS[1], 'until') or '0')
if now < wait_until and redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then
  return wait_until - now
end
local n = redis.call('HINCRBY', KEYS[1], 'n', 1)
redis.call('HINCRBY', KEYS[1], ARGV[1], 1)
local limit = tonumber(ARGV[2])
if n >= limit then
  local wait = math.floor(math.min(tonumber(ARGV[4]) * 2 ^ math.min(n - limit, 30), tonumber(ARGV[3])))
  redis.call('HSET', KEYS[1], 'until', now + wait)
end
redis.call('EXPIRE', KEYS[1], ARGV[5])
return 0
"""

# A right password's attempt is given back to the address. KEYS: the address's counter.
_GIVE_BACK = """
if tonumber(redis.call('GET', KEYS[1]) or '0') > 0 then
  redis.call('DECR', KEYS[1])
end
return 0
"""


@dataclasses.dataclass(frozen=True)
class Refusal:
    """Why an attempt was refused unchecked: 'address' (too many from it) or 'account' (slowed down)."""

    by: str
    retry_after: int


@dataclasses.dataclass(frozen=True)
class SlowDown:
    """An account's state, for the staff page: attempts failed and seconds its wait still lasts."""

    failures: int
    wait: int


def address_group(ip: str) -> str:
    """The unit an address limit applies to: the IPv4 address, or the /64 of an IPv6 one."""
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return ip
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


class LoginThrottle:
    """Sign-in attempts per account and per address (see the module's policy)."""

    def __init__(self, redis: Redis, settings: Settings) -> None:
        self.redis = redis
        self.settings = settings
        self._address_attempt = redis.register_script(_ADDRESS_ATTEMPT)
        self._account_attempt = redis.register_script(_ACCOUNT_ATTEMPT)
        self._give_back = redis.register_script(_GIVE_BACK)

    def _account_key(self, username: str) -> str:
        return rkey(self.settings, "admin_login", "user", username.strip().lower())

    def _address_key(self, ip: str) -> str:
        return rkey(self.settings, "admin_login", "ip", address_group(ip))

    async def attempt(self, username: str, ip: str) -> Refusal | None:
        """Count an attempt before its password is checked; a Refusal if it may not be checked at all."""
        s = self.settings
        wait = await self._address_attempt(keys=[self._address_key(ip)], args=[s.admin_login_ip_limit,
                                                                             s.admin_login_window])
        if wait:
            return Refusal("address", int(wait))
        wait = await self._account_attempt(
            keys=[self._account_key(username)],
            args=["a:" + address_group(ip), s.admin_login_account_limit, s.admin_login_window,
                  s.admin_login_backoff, s.admin_login_memory],
        )
        return Refusal("account", int(wait)) if wait else None

    async def succeeded(self, username: str, ip: str) -> None:
        """A right password: the account's slow-down ends and the attempt is given back to the address."""
        await self.redis.delete(self._account_key(username))
        await self._give_back(keys=[self._address_key(ip)])

    async def slow_down(self, username: str) -> SlowDown | None:
        """The account's failed attempts and remaining wait, or None if it has none."""
        failures, until = await self.redis.hmget(self._account_key(username), "n", "until")
        if not failures:
            return None
        return SlowDown(int(failures), max(0, int(until or 0) - int(time.time())))

    async def unlock(self, username: str) -> bool:
        """End the account's slow-down (an owner's action); whether there was one."""
        return bool(await self.redis.delete(self._account_key(username)))
