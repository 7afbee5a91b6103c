"""The application factory: contexts, middlewares and routes, wired once and without I/O."""

from __future__ import annotations

from pathlib import Path

import aiohttp_jinja2
import jinja2
from aiohttp import web

from . import auth, cache, db, middlewares
from .api import banners, configs, docs, feedback, phone, tokens, users, wxconfig
from .integrations import outbound, sms, wechat
from .keys import settings_key
from .settings import Settings

TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "templates"
# Big enough for a 2 MiB avatar sent as base64 inside a form body.
CLIENT_MAX_SIZE = 4 * 1024 * 1024

API_ROUTES = (tokens, users, phone, feedback, banners, wxconfig, configs, docs)


def create_app(settings: Settings) -> web.Application:
    app = web.Application(
        client_max_size=CLIENT_MAX_SIZE,
        middlewares=[
            # CORS outermost so error answers carry its headers too and preflights stop early;
            # then the request id, which the error path logs; then the one error path; auth last,
            # so its 10003 goes through the error path like any other error.
            middlewares.cors_middleware,
            middlewares.request_id_middleware,
            middlewares.error_middleware,
            auth.auth_middleware,
        ],
    )
    app[settings_key] = settings
    # Resources in dependency order; they close in reverse.
    app.cleanup_ctx.extend(
        [
            outbound.client_session_ctx,
            db.pg_ctx,
            cache.redis_ctx,
            auth.tokens_ctx,
            wechat.wechat_ctx,
            sms.sms_ctx,
        ]
    )
    aiohttp_jinja2.setup(
        app, loader=jinja2.FileSystemLoader(TEMPLATES_DIR), autoescape=jinja2.select_autoescape(default=True)
    )
    for module in API_ROUTES:
        app.router.add_routes(module.routes)
    settings.media_path.mkdir(parents=True, exist_ok=True)
    app.router.add_static("/media/", settings.media_path, name="media", append_version=False)
    if settings.h5_dir:
        app.router.add_static("/h5/", settings.h5_dir, name="h5", show_index=False)
    return app
