"""The admin console at /admin/: a sub-application with its own middlewares, so the H5 API's chain is untouched."""

from __future__ import annotations

import datetime as dt
import typing
from pathlib import Path

import aiohttp_jinja2
import jinja2
import markupsafe
from aiohttp import web

from ..keys import admin_jinja_key, admin_sessions_key, login_throttle_key, redis_key, settings_key, upload_slots_key
from ..lib import formats
from ..services.login_throttle import LoginThrottle
from ..settings import Settings
from ..web.h5 import H5_PREFIX
from . import (
    accounts,
    audit,
    audit_view,
    banners,
    chat,
    competitions,
    configs,
    dashboard,
    errors,
    feedback,
    forms,
    lives,
    members,
    notices,
    order_labels,
    orders,
    players,
    products,
    results,
    rosters,
    security,
    signups,
    staff,
    teams,
    videos,
)
from .render import end_label
from .session import RedisSessionStorage

STATIC_DIR = Path(__file__).resolve().parent / "static"
SECTIONS = (accounts, staff, competitions, signups, results, teams, players, rosters, videos, lives, banners,
            products, configs, orders, members, notices, chat, feedback, dashboard, audit)


def duration_label(value: dt.timedelta) -> str:
    """A length of time as staff read it: "364 天 23 小时" (minutes only under an hour)."""
    days, rest = divmod(int(value.total_seconds()), 86400)
    hours, rest = divmod(rest, 3600)
    if days:
        return f"{days} 天 {hours} 小时" if hours else f"{days} 天"
    return f"{hours} 小时 {rest // 60} 分钟" if hours else f"{rest // 60} 分钟"


async def admin_ctx(app: web.Application) -> typing.AsyncIterator[None]:
    """Session storage and login throttle on the app's Redis (registered on the main app, after Redis)."""
    app[admin_sessions_key] = RedisSessionStorage(app[redis_key], app[settings_key])
    app[login_throttle_key] = LoginThrottle(app[redis_key], app[settings_key])
    yield


def create_admin_app(settings: Settings, templates_dir: Path) -> web.Application:
    admin = web.Application(
        middlewares=[
            # The session outermost, so error pages still save it (their CSRF token); then errors as HTML
            # pages; then who is signed in and may open the page; CSRF last, once the account is known
            # (an anonymous upload is refused before its body is read).
            security.session_middleware,
            errors.error_pages_middleware,
            security.auth_middleware,
            security.csrf_middleware,
        ]
    )
    admin[upload_slots_key] = forms.UploadSlots(settings.admin_uploads_per_client)
    env = aiohttp_jinja2.setup(admin, loader=jinja2.FileSystemLoader(templates_dir), autoescape=True,
                               app_key=admin_jinja_key)
    env.filters["localtime"] = lambda value: formats.fmt_time(value, settings.tz)[:16]
    env.filters["money"] = formats.fmt_money
    env.filters["end_time"] = lambda value: end_label(value, settings.tz)
    env.filters["duration"] = duration_label
    env.filters["source_label"] = order_labels.source_label
    env.filters["outcome_label"] = order_labels.outcome_label
    env.filters["snapshot_rows"] = order_labels.snapshot_rows
    env.filters["action_label"] = audit_view.action_label
    env.filters["target_view"] = audit_view.target_view
    env.filters["audit_changes"] = lambda entry: audit_view.changes(entry["action"], entry["before"], entry["after"],
                                                                    settings.tz)
    # Chat content is the sanitised HTML the pages render (emoji images); sanitised again here, to be sure.
    env.filters["chat_time"] = lambda seconds: dt.datetime.fromtimestamp(seconds, settings.tz).strftime("%H:%M:%S")
    # The emoji images are the H5 build's: there only when this server serves it (or they live elsewhere).
    emoji_served = bool(settings.h5_dir) or not settings.chat_emoji_path.startswith(H5_PREFIX)
    env.filters["chat_html"] = lambda content: markupsafe.Markup(
        chat.chat_html(content, settings.chat_emoji_path, emoji_served))
    for module in SECTIONS:
        admin.router.add_routes(module.routes)
    admin.router.add_static("/static/", STATIC_DIR, name="static")
    return admin
