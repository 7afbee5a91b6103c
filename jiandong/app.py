"""The application factory: contexts, middlewares and routes, wired once and without I/O."""

from __future__ import annotations

from pathlib import Path

import aiohttp_jinja2
import jinja2
from aiohttp import web

from . import admin, realtime
from .api import (
    banners,
    business,
    competitions,
    configs,
    docs,
    feedback,
    guest,
    live_callbacks,
    lives,
    members,
    online,
    orders,
    pay,
    phone,
    play,
    teams,
    tokens,
    users,
    videos,
    wxconfig,
)
from .integrations import aliyun_live, outbound, sms, wechat, wechatpay_provider
from .keys import docs_cache_key, metrics_key, settings_key
from .ops import metrics
from .services import content_cache
from .settings import Settings
from .store import db, media, outages
from .store import kv as cache
from .tasks import counter_flush, live_status
from .tasks import notices as notice_tasks
from .tasks import orders as order_tasks
from .web import auth, health, pipeline, security_headers
from .web import h5 as pages
from .web.params import UPLOAD_BODY_LIMIT

TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "templates"

API_ROUTES = (
    tokens, users, phone, feedback, banners, wxconfig, configs, members, teams, competitions, videos, lives, play,
    guest, business, orders, pay, online, live_callbacks, docs,
)


def create_app(settings: Settings) -> web.Application:
    app_metrics = metrics.Metrics()
    app = web.Application(
        # A backstop only: each route's own limit is applied first (web/pipeline.py).
        client_max_size=UPLOAD_BODY_LIMIT,
        # One layer: the access log and metrics, the chat port's guard, CORS, the request id, the error
        # path, trusted proxies, the request limits and the token, in that order (web/pipeline.py).
        middlewares=[pipeline.Pipeline(settings, app_metrics)],
    )
    # Every answer, the websocket upgrade and static files included: no Server, nosniff; the console's a CSP.
    security_headers.setup(app, settings)
    app[settings_key] = settings
    app[docs_cache_key] = {}
    app[metrics_key] = app_metrics
    # Resources in dependency order; they close in reverse.
    app.cleanup_ctx.extend(
        [
            outbound.client_session_ctx,
            media.default_avatar_ctx,
            db.pg_ctx,
            cache.redis_ctx,
            outages.outages_ctx,
            metrics.metrics_ctx,
            auth.tokens_ctx,
            content_cache.content_cache_ctx,
            wechat.wechat_ctx,
            wechatpay_provider.wechatpay_ctx,
            sms.sms_ctx,
            aliyun_live.aliyun_live_ctx,
            counter_flush.counter_flush_ctx,
            live_status.live_status_ctx,
            order_tasks.order_tasks_ctx,
            notice_tasks.notice_tasks_ctx,
            admin.admin_ctx,
        ]
    )
    # /healthz, /readyz (503 from the start of a shutdown, so first of the shutdown hooks) and /metrics.
    health.setup(app)
    app.router.add_get(metrics.METRICS_PATH, metrics.get_metrics)
    # The live rooms: /ws and / (the chat port), their contexts after Redis and PostgreSQL, and the
    # on_shutdown hook that closes their sockets with 1001.
    realtime.setup(app)
    aiohttp_jinja2.setup(
        app, loader=jinja2.FileSystemLoader(TEMPLATES_DIR), autoescape=jinja2.select_autoescape(default=True)
    )
    for module in API_ROUTES:
        app.router.add_routes(module.routes)
    # Dev payments exist only while no merchant is configured.
    if not settings.wechatpay_mch_id:
        app.router.add_routes(pay.dev_routes)
    settings.media_path.mkdir(parents=True, exist_ok=True)
    app.router.add_static("/media/", settings.media_path, name="media", append_version=False)
    if settings.h5_dir:
        pages.add_h5_routes(app, settings.h5_dir)
    # The staff's console: its own middlewares (session, HTML errors, sign-in, CSRF), see admin/__init__.py.
    app.add_subapp("/admin/", admin.create_admin_app(settings, TEMPLATES_DIR))
    return app
