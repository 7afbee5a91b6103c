"""Phone verification codes: number format, sending limits, issuing and checking codes (state in Redis)."""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import secrets

from redis.asyncio import Redis

from ..errors import NoCodePending, ParameterError, Throttled, WrongCode
from ..integrations.sms import SmsProvider
from ..settings import Settings
from ..store.kv import is_cluster, rkey, tagged
from ..store.leases import RELEASE_LUA

CODE_TTL = 300
RESEND_AFTER = 60
MAX_ATTEMPTS = 5
# Daily counters are keyed by the club's date; they only need to outlive that date.
DAY_COUNTER_TTL = 2 * 86400

# ASCII digits only: \d would also take full-width and other Unicode digits.
_PHONE = re.compile(r"(?:\+86|0086|86)?(1[3-9][0-9]{9})", re.ASCII)
_SEPARATORS = re.compile(r"[\s\-]+")
_CODE = re.compile(r"[0-9]{6}", re.ASCII)

# Count a send against both daily caps, or neither when one is already full.
# KEYS: phone counter, ip counter; ARGV: phone cap, ip cap, ttl. Returns 0 ok, 1 phone full, 2 ip full.
_TAKE_QUOTA = """
if tonumber(redis.call('GET', KEYS[1]) or '0') >= tonumber(ARGV[1]) then return 1 end
if tonumber(redis.call('GET', KEYS[2]) or '0') >= tonumber(ARGV[2]) then return 2 end
redis.call('INCR', KEYS[1])
redis.call('EXPIRE', KEYS[1], ARGV[3])
redis.call('INCR', KEYS[2])
redis.call('EXPIRE', KEYS[2], ARGV[3])
return 0
"""

# Carry counts kept under the names of versions before the hash tags into today's counters (a single Redis
# only: those versions ran on no cluster). KEYS: earlier phone and ip counters, phone and ip counters;
# ARGV: ttl. An earlier version's process may still count there during a rolling upgrade: each send folds.
_FOLD_EARLIER = """
for i = 1, 2 do
  local n = redis.call('GET', KEYS[i])
  if n then
    redis.call('INCRBY', KEYS[i + 2], n)
    redis.call('EXPIRE', KEYS[i + 2], ARGV[1])
    redis.call('DEL', KEYS[i])
  end
end
return 0
"""

# Give back the daily counts of a send that did not happen. KEYS: phone counter, ip counter.
_GIVE_BACK = """
for i = 1, 2 do
  if redis.call('EXISTS', KEYS[i]) == 1 and redis.call('DECR', KEYS[i]) <= 0 then
    redis.call('DEL', KEYS[i])
  end
end
return 0
"""

# KEYS: the pending code; ARGV: digest of the code given, attempts allowed.
# Returns 0 accepted (burnt), 1 none pending, 2 wrong, 3 wrong and now burnt.
# Digests are compared, so the time `==` takes says nothing about the code itself.
_CHECK = """
local stored = redis.call('HGET', KEYS[1], 'digest')
if not stored then return 1 end
if stored == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return 0
end
if redis.call('HINCRBY', KEYS[1], 'attempts', 1) >= tonumber(ARGV[2]) then
  redis.call('DEL', KEYS[1])
  return 3
end
return 2
"""


def normalize_phone(raw: str) -> str:
    """A mainland mobile number as 11 digits; `+86`/`86`/`0086`, spaces and dashes are dropped."""
    match = _PHONE.fullmatch(_SEPARATORS.sub("", raw))
    if match is None:
        raise ParameterError("参数错误: 手机号码格式不正确")
    return match.group(1)


def check_code_format(raw: str) -> str:
    if _CODE.fullmatch(raw) is None:
        raise ParameterError("参数错误: 验证码必须是6位数字")
    return raw


def _code_key(settings: Settings, phone: str, user_id: int) -> str:
    # One pending code per phone *and* user: someone else asking a code for your number
    # cannot replace the code you are about to type in.
    return rkey(settings, "sms", "code", phone, user_id)


def _day_counters(settings: Settings, today: str, phone: str, ip: str) -> list[str]:
    """The day's send counters of the phone and of the address: `<prefix>{sms:day:<date>}:phone:<n>`, `...:ip:<ip>`.

    One day's counters share a hash tag, so one script counts a send against both caps on a cluster too
    (a day's sends are few: one slot holds them all).
    """
    return [tagged(settings, ("sms", "day", today), "phone", phone), tagged(settings, ("sms", "day", today), "ip", ip)]


def _earlier_day_counters(settings: Settings, today: str, phone: str, ip: str) -> list[str]:
    """The same counters as versions before the hash tags named them: `<prefix>sms:day:<date>:phone:<n>`, ..."""
    return [rkey(settings, "sms", "day", today, "phone", phone), rkey(settings, "sms", "day", today, "ip", ip)]


def _digest(phone: str, code: str) -> str:
    return hashlib.sha256(f"{phone}:{code}".encode()).hexdigest()


async def issue(
    redis: Redis, settings: Settings, sms: SmsProvider, phone: str, user_id: int, ip: str
) -> str:
    """Send a fresh code to `phone` for `user_id`, within the resend and daily limits; the code.

    Whether the number belongs to another account is not looked at here: answering that before the
    code is verified would tell any player whose number is a club account's. Every request is
    answered alike and counted against the limits; user/bind refuses a number taken by another
    account (10006) once its owner has proved it with the code.
    """
    today = dt.datetime.now(settings.tz).strftime("%Y%m%d")
    lock = rkey(settings, "sms", "lock", phone)
    counters = _day_counters(settings, today, phone, ip)
    owner = secrets.token_hex(8)
    if not await redis.set(lock, owner, nx=True, ex=RESEND_AFTER):
        raise Throttled(f"验证码发送过于频繁，请{RESEND_AFTER}秒后再试")
    # Only our own lock is dropped: after a slow call it may be another request's by now.
    unlock = redis.register_script(RELEASE_LUA)
    if not is_cluster(redis):
        await redis.register_script(_FOLD_EARLIER)(
            keys=[*_earlier_day_counters(settings, today, phone, ip), *counters], args=[DAY_COUNTER_TTL])
    full = await redis.register_script(_TAKE_QUOTA)(
        keys=counters,
        args=[settings.sms_phone_daily_limit, settings.sms_ip_daily_limit, DAY_COUNTER_TTL],
    )
    if full:
        await unlock(keys=[lock], args=[owner])
        if full == 1:
            raise Throttled("该手机号码今日获取验证码次数已达上限，请明天再试")
        raise Throttled("当前网络今日获取验证码次数已达上限，请明天再试")
    code = f"{secrets.randbelow(1_000_000):06d}"
    try:
        await sms.send_code(phone, code)
    except Exception:
        # Nothing was sent: let the user ask again at once and do not count it. (A cancelled
        # request keeps the lock and the counts: the message may well have gone out.)
        await redis.register_script(_GIVE_BACK)(keys=counters)
        await unlock(keys=[lock], args=[owner])
        raise
    key = _code_key(settings, phone, user_id)
    async with redis.pipeline(transaction=True) as pipe:
        pipe.delete(key)
        pipe.hset(key, mapping={"digest": _digest(phone, code), "attempts": 0})
        pipe.expire(key, CODE_TTL)
        await pipe.execute()
    return code


async def verify_and_burn(redis: Redis, settings: Settings, phone: str, user_id: int, code: str) -> None:
    """Accept the code issued to this user for this phone, once; NoCodePending / WrongCode otherwise."""
    result = await redis.register_script(_CHECK)(
        keys=[_code_key(settings, phone, user_id)], args=[_digest(phone, code), MAX_ATTEMPTS]
    )
    if result == 1:
        raise NoCodePending("手机验证码不存在或已失效，请重新获取")
    if result == 2:
        raise WrongCode()
    if result == 3:
        raise WrongCode("验证码错误次数过多，已失效，请重新获取")
