"""Login tokens: issue and resolve them (Redis); each request's user is resolved in pipeline.py."""

from __future__ import annotations

import secrets
import time
import typing

from aiohttp import web
from redis.asyncio import Redis

from ..errors import TokenInvalid
from ..keys import redis_key, settings_key, tokens_key, user_id_key
from ..settings import Settings
from ..store.kv import rkey

Handler = typing.Callable[[web.Request], typing.Awaitable[web.StreamResponse]]

# A resolved token is trusted locally for this long, so a burst of requests costs one Redis
# round trip; the price is that a token outlives its Redis key by at most this much.
LOCAL_TTL = 5.0
LOCAL_MAX = 100_000


class TokenStore:
    """Tokens are 32 hex characters from a CSPRNG, mapped to a user id in Redis with a TTL."""

    def __init__(self, redis: Redis, settings: Settings) -> None:
        self.redis = redis
        self.settings = settings
        self._local: dict[str, tuple[int, float]] = {}

    def _key(self, token: str) -> str:
        return rkey(self.settings, "token", token)

    def _user_tokens(self, user_id: int) -> str:
        return rkey(self.settings, "user_tokens", user_id)

    async def issue(self, user_id: int) -> str:
        token = secrets.token_hex(16)
        ttl = self.settings.token_ttl
        user_tokens = self._user_tokens(user_id)
        # The token alone must find its user, so its key carries no user tag and may live on another cluster
        # node than the user's index: the index is written first, so a half-done issue leaves at most a
        # listed token that never worked, never a working token that revoke_user cannot find.
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.sadd(user_tokens, token)
            pipe.expire(user_tokens, ttl)
            await pipe.execute()
        await self.redis.set(self._key(token), user_id, ex=ttl)
        return token

    def known(self, token: str) -> int | None:
        """The user id of a token resolved here within LOCAL_TTL, without waiting; None: ask `resolve`."""
        cached = self._local.get(token)
        if cached is not None and cached[1] > time.monotonic():
            return cached[0]
        return None

    async def resolve(self, token: str) -> int | None:
        if len(token) != 32:
            return None
        known = self.known(token)
        if known is not None:
            return known
        now = time.monotonic()
        value = await self.redis.get(self._key(token))
        if value is None:
            self._local.pop(token, None)
            return None
        user_id = int(value)
        if len(self._local) >= LOCAL_MAX:
            self._local.clear()
        self._local[token] = (user_id, now + LOCAL_TTL)
        return user_id

    async def revoke_user(self, user_id: int) -> None:
        """Forget every token of a user (e.g. when an admin disables the account)."""
        user_tokens = self._user_tokens(user_id)
        tokens = await self.redis.smembers(user_tokens)
        # The tokens before their index (they may live on other cluster nodes): a revoke that fails
        # half-way leaves the index, so doing it again finds what is left.
        if tokens:
            await self.redis.delete(*(self._key(t) for t in tokens))
        await self.redis.delete(user_tokens)
        self._local = {t: v for t, v in self._local.items() if v[0] != user_id}


def public(handler: Handler) -> Handler:
    """Mark an /api/ route as reachable without a token."""
    handler.public = True  # type: ignore[attr-defined]
    return handler


async def tokens_ctx(app: web.Application) -> typing.AsyncIterator[None]:
    app[tokens_key] = TokenStore(app[redis_key], app[settings_key])
    yield


def current_user_id(request: web.Request) -> int:
    """The id of the authenticated user of a token-protected route."""
    user_id = request[user_id_key]
    if user_id is None:
        raise TokenInvalid()
    return user_id
