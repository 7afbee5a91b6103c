"""Console sessions: aiohttp-session with its data in Redis (shared by every process), idle timeout."""

from __future__ import annotations

import re
import secrets
import typing
from urllib.parse import urlsplit

from aiohttp import web
from aiohttp_session import AbstractStorage, Session

from ..lib import encoding
from ..settings import Settings
from ..store.kv import rkey

COOKIE_NAME = "jd_admin"
SESSION_ID = re.compile(r"[A-Za-z0-9_-]{43}")


class RedisSessionStorage(AbstractStorage):
    """A session is a random id in an HttpOnly, SameSite=Lax cookie (Secure over https) naming a Redis key.

    aiohttp-session's own RedisStorage expects bytes from Redis and names keys without our prefix.
    The key's TTL is the idle timeout and every save renews it, so a session unused that long is gone.
    """

    def __init__(self, redis: typing.Any, settings: Settings) -> None:
        super().__init__(
            cookie_name=COOKIE_NAME,
            path="/admin/",
            httponly=True,
            samesite="Lax",
            secure=urlsplit(settings.public_url).scheme == "https",
            encoder=encoding.dumps_str,
            decoder=encoding.loads,
        )
        self.redis = redis
        self.settings = settings

    def _key(self, session_id: str) -> str:
        return rkey(self.settings, "admin_session", session_id)

    async def load_session(self, request: web.Request) -> Session:
        cookie = self.load_cookie(request)
        if cookie is None or not SESSION_ID.fullmatch(cookie):
            return Session(None, data=None, new=True)
        raw = await self.redis.get(self._key(cookie))
        if raw is None:
            return Session(None, data=None, new=True)
        try:
            data = self._decoder(raw)
        except encoding.JSONDecodeError:
            data = None
        return Session(cookie, data=data, new=False)

    async def save_session(self, request: web.Request, response: web.StreamResponse, session: Session) -> None:
        session_id = session.identity
        if session.empty:
            if session_id is not None:
                await self.discard(session_id)
            self.save_cookie(response, "")
            return
        if session_id is None:
            session_id = secrets.token_urlsafe(32)
            session.set_new_identity(session_id)
            self.save_cookie(response, session_id)
        data = self._encoder(self._get_session_data(session))
        await self.redis.set(self._key(session_id), data, ex=self.settings.admin_idle_timeout)

    async def discard(self, session_id: str) -> None:
        """End a session for good (its id is never honoured again)."""
        await self.redis.delete(self._key(session_id))
