"""Typed application and request state: every web.AppKey and web.RequestKey in one place."""

from __future__ import annotations

import typing

import aiohttp
import aiopg
from aiohttp import web
from redis.asyncio import Redis

if typing.TYPE_CHECKING:
    from .auth import TokenStore
    from .http import Params
    from .integrations.sms import SmsProvider
    from .integrations.wechat import WeChat
    from .settings import Settings

settings_key = web.AppKey["Settings"]("settings")
pg_key = web.AppKey[aiopg.Pool]("pg")
redis_key = web.AppKey[Redis]("redis")
client_session_key = web.AppKey[aiohttp.ClientSession]("client_session")
tokens_key = web.AppKey["TokenStore"]("tokens")
wechat_key = web.AppKey["WeChat"]("wechat")
sms_key = web.AppKey["SmsProvider"]("sms")

request_id_key = web.RequestKey[str]("request_id")
user_id_key = web.RequestKey["int | None"]("user_id")
params_key = web.RequestKey["Params"]("params")
