"""Who may do what in the console: the session, the signed-in account checked on every request, roles, CSRF."""

from __future__ import annotations

import hmac
import time
import typing
from urllib.parse import quote

import aiohttp_session
from aiohttp import web
from aiohttp_session import get_session

from ..http import client_ip
from ..keys import admin_key, admin_sessions_key, pg_key, settings_key
from ..services.admins import get_admin, role_allows
from ..services.audit import Actor
from .errors import PageError, forbidden
from .forms import read_form
from .render import CSRF_KEY, PREFIX

Handler = typing.Callable[[web.Request], typing.Awaitable[web.StreamResponse]]
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# Session fields: the account, its password stamp (a password change ends older sessions), last activity.
ADMIN_ID, PASSWORD_STAMP, SEEN = "admin_id", "pw", "seen"


def public(handler: Handler) -> Handler:
    """A console page anyone may open (the login page)."""
    handler.admin_public = True  # type: ignore[attr-defined]
    return handler


def requires(*roles: str) -> typing.Callable[[Handler], Handler]:
    """A page only these roles (and the owner) may open; no decorator = any signed-in account."""

    def mark(handler: Handler) -> Handler:
        handler.admin_roles = roles  # type: ignore[attr-defined]
        return handler

    return mark


@web.middleware
async def session_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """aiohttp-session's middleware with the storage made at start-up (it needs the app's Redis)."""
    return await aiohttp_session.session_middleware(request.config_dict[admin_sessions_key])(request, handler)


async def signed_in(request: web.Request) -> typing.Any:
    """The session's account if it is still enabled, its password unchanged and the session not idle too
    long; else None, and the session ends. One primary-key query a request: a disabled account's
    sessions end at once."""
    session = await get_session(request)
    admin_id = session.get(ADMIN_ID)
    if admin_id is None:
        return None
    settings = request.config_dict[settings_key]
    now = int(time.time())
    admin = await get_admin(request.config_dict[pg_key], admin_id)
    if (admin is None or not admin.is_active or session.get(PASSWORD_STAMP) != admin.password_stamp
            or now - int(session.get(SEEN, 0)) > settings.admin_idle_timeout):
        if session.identity:
            await request.config_dict[admin_sessions_key].discard(session.identity)
        session.invalidate()
        return None
    session[SEEN] = now
    return admin


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every page but the login page needs a signed-in account, and the role the page declares."""
    match = request.match_info
    if match.http_exception is not None or isinstance(match.route.resource, web.StaticResource):
        return await handler(request)
    admin = await signed_in(request)
    request[admin_key] = admin
    route_handler = match.handler
    if getattr(route_handler, "admin_public", False):
        return await handler(request)
    if admin is None:
        target = request.path_qs if request.method in SAFE_METHODS else PREFIX + "/"
        raise web.HTTPFound(f"{PREFIX}/login?next={quote(target, safe='')}")
    roles = getattr(route_handler, "admin_roles", None)
    if roles is not None and not role_allows(admin.role, roles):
        raise forbidden()
    return await handler(request)


@web.middleware
async def csrf_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every state-changing request carries the session's CSRF token in its form, or nothing happens.

    Checked here for every route, so no handler can forget it; the form (uploads included) is read
    first, and its temporary files are dropped after the request whatever happens.
    """
    if request.method in SAFE_METHODS:
        return await handler(request)
    form = await read_form(request)
    try:
        expected = (await get_session(request)).get(CSRF_KEY) or ""
        given = form.get("csrf_token")
        if not expected or not hmac.compare_digest(expected.encode(), given.encode()):
            raise PageError(403, "页面已过期或来源不明（CSRF 校验失败），请刷新页面后重试")
        return await handler(request)
    finally:
        form.cleanup()


def actor(request: web.Request) -> Actor:
    """Who makes this request's change, for the audit log: the signed-in account and the client's IP."""
    me = request[admin_key]
    return Actor(me.id if me else None, me.username if me else "", client_ip(request))
