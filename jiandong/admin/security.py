"""Who may do what in the console: the session, the signed-in account checked on every request, roles, CSRF."""

from __future__ import annotations

import hmac
import time
import typing
from urllib.parse import quote

import aiohttp_session
from aiohttp import web
from aiohttp_session import get_session

from ..keys import admin_key, admin_sessions_key, pg_key, settings_key, upload_slots_key
from ..services.admins import OWNER, ROLE_LABELS, ROLES, get_admin, role_allows
from ..services.audit import Actor
from ..services.login_throttle import address_group
from ..web.params import client_ip
from .errors import PageError, forbidden
from .forms import CSRF_REFUSED, read_form
from .render import CSRF_KEY, PREFIX, anonymous_csrf_token

Handler = typing.Callable[[web.Request], typing.Awaitable[web.StreamResponse]]
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# Session fields: the account, its password stamp (a password change ends older sessions), last activity,
# sign-in time (the session's absolute lifetime runs from it).
ADMIN_ID, PASSWORD_STAMP, SEEN, SINCE = "admin_id", "pw", "seen", "since"
# What a page's own background refresh sends (static/live.js): it is no activity of the person, so an
# unattended page still times out.
BACKGROUND_HEADER, BACKGROUND_VALUE = "X-Requested-With", "poll"
# A multipart form's CSRF token may come in this header (or the csrf_token query parameter), else it must
# be the form's first field: no file part is read before the token is known good.
CSRF_HEADER = "X-CSRF-Token"
FORM_TYPE = "application/x-www-form-urlencoded"


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


def needed_roles_text(roles: typing.Iterable[str], role: str) -> str:
    """What a refused page tells: which roles may do this (owners always may) and which one the account has."""
    allowed = "或".join(ROLE_LABELS[r] for r in ROLES if r == OWNER or r in roles)
    return (f"这里需要「{allowed}」角色，你的账号是「{ROLE_LABELS.get(role, role)}」。"
            "如需使用，请联系所有者调整你的角色。")


@web.middleware
async def session_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """aiohttp-session's middleware with the storage made at start-up (it needs the app's Redis)."""
    return await aiohttp_session.session_middleware(request.config_dict[admin_sessions_key])(request, handler)


async def signed_in(request: web.Request) -> typing.Any:
    """The session's account if it is still enabled, its password unchanged, the session neither idle too
    long nor older than its lifetime; else None, and the session ends. One primary-key query a request: a
    disabled account's sessions end at once. A page's background refresh does not count as activity."""
    session = await get_session(request)
    admin_id = session.get(ADMIN_ID)
    if admin_id is None:
        return None
    settings = request.config_dict[settings_key]
    now = int(time.time())
    admin = await get_admin(request.config_dict[pg_key], admin_id)
    if (admin is None or not admin.is_active or session.get(PASSWORD_STAMP) != admin.password_stamp
            or now - int(session.get(SEEN, 0)) > settings.admin_idle_timeout
            or now - int(session.get(SINCE, 0)) > settings.admin_session_lifetime):
        if session.identity:
            await request.config_dict[admin_sessions_key].discard(session.identity)
        session.invalidate()
        return None
    if request.headers.get(BACKGROUND_HEADER) != BACKGROUND_VALUE:
        session[SEEN] = now
    return admin


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every page but the login page needs a signed-in account, and the role the page declares."""
    match = request.match_info
    if isinstance(match.route.resource, web.StaticResource):
        return await handler(request)
    if match.http_exception is not None:
        # No page here (404, 405): the error page still shows the signed-in account's menu.
        request[admin_key] = await signed_in(request)
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
        raise forbidden(needed_roles_text(roles, admin.role))
    return await handler(request)


@web.middleware
async def csrf_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every state-changing request carries the CSRF token (the session's once signed in, the double-submit
    cookie's before), or nothing happens.

    Checked here for every route, so no handler can forget it. Runs after auth_middleware: an anonymous
    request to a page that needs a sign-in was answered before its body was read. A page anyone may open
    takes an urlencoded form only (never a file). A multipart form takes an upload place of its sender and
    has its token checked before any file part is read; its temporary files are dropped after the request
    whatever happens.
    """
    match = request.match_info
    if request.method in SAFE_METHODS or match.http_exception is not None:
        return await handler(request)
    if getattr(match.handler, "admin_public", False) and request.body_exists and request.content_type != FORM_TYPE:
        raise PageError(415, "此页面只接受普通表单提交")
    expected = await _expected_token(request)

    def good(given: str) -> bool:
        return bool(expected) and bool(given) and hmac.compare_digest(expected.encode(), given.encode())

    if request.content_type != "multipart/form-data":
        form = await read_form(request)
        return await _checked(request, handler, form, good(form.get("csrf_token")))
    given = request.headers.get(CSRF_HEADER) or request.query.get("csrf_token")
    if given is not None and not good(given):
        raise PageError(403, CSRF_REFUSED)
    slots = request.config_dict[upload_slots_key]
    with slots.hold(_upload_holders(request)):
        form = await read_form(request, token_check=None if given is not None else good)
        return await _checked(request, handler, form, given is not None or good(form.get("csrf_token")))


async def _checked(request: web.Request, handler: Handler, form: typing.Any, token_ok: bool) -> web.StreamResponse:
    try:
        if not token_ok:
            raise PageError(403, CSRF_REFUSED)
        return await handler(request)
    finally:
        form.cleanup()


async def _expected_token(request: web.Request) -> str:
    if request.get(admin_key) is not None:
        return (await get_session(request)).get(CSRF_KEY) or ""
    return anonymous_csrf_token(request) or ""


def _upload_holders(request: web.Request) -> list[str]:
    """Who an upload in flight is counted against: the signed-in account and the client's address."""
    me = request.get(admin_key)
    holders = [f"ip:{address_group(client_ip(request))}"]
    return holders if me is None else [*holders, f"admin:{me.id}"]


def actor(request: web.Request) -> Actor:
    """Who makes this request's change, for the audit log: the signed-in account and the client's IP."""
    me = request[admin_key]
    return Actor(me.id if me else None, me.username if me else "", client_ip(request))
