"""Typed application and request state: every web.AppKey and web.RequestKey in one place."""

from __future__ import annotations

import asyncio
import typing

import aiohttp
import aiopg
from aiohttp import web
from redis.asyncio import Redis

if typing.TYPE_CHECKING:
    # Only the type checker reads these: at run time the keys' types stay strings, so keys.py imports nothing back.
    import jinja2

    from .admin.forms import FormData, UploadSlots
    from .admin.session import RedisSessionStorage
    from .integrations.aliyun_live import AliyunLive
    from .integrations.sms import SmsProvider
    from .integrations.wechat import WeChat
    from .integrations.wechatpay import WeChatPay
    from .ops.metrics import Metrics
    from .realtime import Realtime
    from .services.admins import Admin
    from .services.content_cache import ContentCache
    from .services.counters import ViewCounts
    from .services.login_throttle import LoginThrottle
    from .services.notice_sending import NoticeSender
    from .settings import Settings
    from .store.outages import Outages
    from .web.auth import TokenStore
    from .web.health import Readiness
    from .web.params import Params

settings_key = web.AppKey["Settings"]("settings")
pg_key = web.AppKey[aiopg.Pool]("pg")
redis_key = web.AppKey[Redis]("redis")
client_session_key = web.AppKey[aiohttp.ClientSession]("client_session")
tokens_key = web.AppKey["TokenStore"]("tokens")
wechat_key = web.AppKey["WeChat"]("wechat")
sms_key = web.AppKey["SmsProvider"]("sms")
content_cache_key = web.AppKey["ContentCache"]("content_cache")
# The OpenAPI document and the docs page, built on first use (the routes are final by then).
docs_cache_key = web.AppKey[dict[str, typing.Any]]("docs_cache")
view_counts_key = web.AppKey["ViewCounts"]("view_counts")
counter_flush_task_key = web.AppKey[asyncio.Task[None]]("counter_flush_task")
# The Aliyun Live client, None when Aliyun Live is not configured.
aliyun_live_key = web.AppKey["AliyunLive | None"]("aliyun_live")
live_status_task_key = web.AppKey["asyncio.Task[None] | None"]("live_status_task")
wechatpay_key = web.AppKey["WeChatPay"]("wechatpay")
order_tasks_task_key = web.AppKey[asyncio.Task[None]]("order_tasks_task")
# The notice sender of this process (it sends only while this process holds the notice lease).
notice_sender_key = web.AppKey["NoticeSender"]("notice_sender")
# PostgreSQL and Redis outages seen by this process (outages.py).
outages_key = web.AppKey["Outages"]("outages")
# This app's Prometheus metrics (metrics.py), and what /readyz checks against (health.py).
metrics_key = web.AppKey["Metrics"]("metrics")
readiness_key = web.AppKey["Readiness"]("readiness")
# The live rooms of this process: hub, Redis broker, presence and chat history (jiandong/realtime).
realtime_key = web.AppKey["Realtime"]("realtime")

request_id_key = web.RequestKey[str]("request_id")
user_id_key = web.RequestKey["int | None"]("user_id")
params_key = web.RequestKey["Params"]("params")
# The most bytes the matched route takes as a body (jiandong.web.params.read_body counts against it).
body_limit_key = web.RequestKey[int]("body_limit")

# The admin console (jiandong/admin): session storage, login throttle, its template environment.
admin_sessions_key = web.AppKey["RedisSessionStorage"]("admin_sessions")
login_throttle_key = web.AppKey["LoginThrottle"]("login_throttle")
admin_jinja_key = web.AppKey["jinja2.Environment"]("admin_jinja")
# The signed-in staff account of a console request (None: nobody), and its parsed form.
admin_key = web.RequestKey["Admin | None"]("admin")
admin_form_key = web.RequestKey["FormData"]("admin_form")
upload_slots_key = web.AppKey["UploadSlots"]("upload_slots")
