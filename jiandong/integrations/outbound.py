"""The one HTTP client session for calls to outside services (WeChat, WeChat Pay, Aliyun)."""

from __future__ import annotations

import typing

import aiohttp
from aiohttp import web

from ..keys import client_session_key, settings_key


async def client_session_ctx(app: web.Application) -> typing.AsyncIterator[None]:
    settings = app[settings_key]
    timeout = aiohttp.ClientTimeout(total=settings.http_timeout, connect=min(5.0, settings.http_timeout))
    async with aiohttp.ClientSession(timeout=timeout, raise_for_status=False) as session:
        app[client_session_key] = session
        yield
