"""Rendering console pages: the shared context (who is signed in, the CSRF token, the menu), lists and pages."""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import re
import secrets
import typing
from urllib.parse import urlencode

import aiohttp_jinja2
from aiohttp import web
from aiohttp_session import Session, get_session

from ..keys import admin_jinja_key, admin_key, settings_key
from ..services.admins import EDITOR, MODERATOR, OWNER, ROLE_LABELS, ROLES, role_allows
from ..services.editing import ListQuery

PREFIX = "/admin"
PAGE_SIZE = 20
CSRF_KEY = "csrf"
FLASH_KEY = "flash"
# Before sign-in there is no session (nothing is stored for a visitor): the sign-in form's CSRF token is
# a double-submit one, a random value in this cookie that the form posts back.
ANON_CSRF_COOKIE = "jd_csrf"
CSRF_TOKEN_RE = re.compile(r"[A-Za-z0-9_-]{43}")

# The menu: (path under /admin, label, roles that may open it; the owner may open everything).
MENU = [
    ("/dashboard", "概览", (EDITOR,)),
    ("/members", "会员", (EDITOR,)),
    ("/orders", "订单", (EDITOR,)),
    ("/feedback", "反馈", (MODERATOR,)),
    ("/chat", "聊天管理", (MODERATOR,)),
    ("/competitions", "赛事", (EDITOR,)),
    ("/stats", "赛季统计", (EDITOR,)),
    ("/teams", "球队", (EDITOR,)),
    ("/players", "球员卡", (EDITOR,)),
    ("/videos", "视频", (EDITOR,)),
    ("/lives", "直播", (EDITOR,)),
    ("/banners", "轮播图", (EDITOR,)),
    ("/products", "会员业务", (EDITOR,)),
    ("/configs", "配置项", (EDITOR,)),
    ("/notices", "通知", (EDITOR,)),
    ("/staff", "员工账号", (OWNER,)),
    ("/audit", "操作日志", (OWNER,)),
]


def role_help() -> str:
    """What each role may open, in one line, read from MENU (so the staff form never disagrees with it)."""
    owner_only = [label for _, label, roles in MENU if not any(role_allows(r, roles) for r in ROLES if r != OWNER)]
    parts = [f"{ROLE_LABELS[OWNER]}：全部页面（只有所有者能用：{'、'.join(owner_only)}）"]
    for role in ROLES:
        if role != OWNER:
            labels = [label for _, label, roles in MENU if role_allows(role, roles)]
            parts.append(f"{ROLE_LABELS[role]}：{'、'.join(labels)}")
    return "；".join(parts) + "。"


def csrf_token(session: Session) -> str:
    """The session's CSRF token, made on first use; every state-changing form posts it back."""
    token = session.get(CSRF_KEY)
    if not token:
        token = secrets.token_urlsafe(32)
        session[CSRF_KEY] = token
    return token


def anonymous_csrf_token(request: web.Request) -> str | None:
    """The visitor's double-submit token from its cookie, if it has a well-formed one."""
    token = request.cookies.get(ANON_CSRF_COOKIE, "")
    return token if CSRF_TOKEN_RE.fullmatch(token) else None


def _page_csrf_token(request: web.Request, session: Session, response_cookies: list[str]) -> str:
    # A signed-in account's token lives in its session; a visitor's in a cookie (set when it has none).
    if request.get(admin_key) is not None:
        return csrf_token(session)
    token = anonymous_csrf_token(request)
    if token is None:
        token = secrets.token_urlsafe(32)
        response_cookies.append(token)
    return token


def _set_anonymous_cookie(request: web.Request, response: web.StreamResponse, token: str) -> None:
    secure = request.config_dict[settings_key].public_url.startswith("https:")
    response.set_cookie(ANON_CSRF_COOKIE, token, path=PREFIX + "/", httponly=True, samesite="Strict",
                        secure=secure)


def end_label(value: dt.datetime, tz: dt.tzinfo) -> str:
    """An end time as staff entered it: an end at local midnight is the whole day before ("2028-06-30（含）"),
    any other end its local minute."""
    local = value.astimezone(tz)
    if local.time() == dt.time():
        return f"{(local - dt.timedelta(days=1)).date().isoformat()}（含当天）"
    return local.strftime("%Y-%m-%d %H:%M")


def flash(session: Session, message: str, *, refused: bool = False, warning: bool = False, todo: str = "") -> None:
    """A message shown once, on the next page (after a redirect). refused: nothing was done, shown red as an
    alert, with todo (what the reader can do about it) after the reason. warning: done, but something looks
    wrong (amber, with todo)."""
    entry: str | dict[str, typing.Any] = message
    if refused or warning:
        entry = {"text": message, "refused": refused, "warning": warning, "todo": todo}
    session[FLASH_KEY] = [*session.get(FLASH_KEY, []), entry]


def _flash_entry(entry: str | dict[str, typing.Any]) -> dict[str, typing.Any]:
    """A flashed message as the page shows it: {"text", "refused", "todo"} (a bare string is a success)."""
    return entry if isinstance(entry, dict) else {"text": entry, "refused": False, "todo": ""}


async def render(request: web.Request, template: str, context: dict[str, typing.Any],
                 status: int = 200) -> web.Response:
    session = await get_session(request)
    me = request.get(admin_key)
    messages = [_flash_entry(m) for m in session.pop(FLASH_KEY, [])] if FLASH_KEY in session else []
    new_cookie: list[str] = []
    ctx = {
        "me": me,
        "csrf_token": _page_csrf_token(request, session, new_cookie),
        "menu": [(PREFIX + path, label) for path, label, roles in MENU if me and role_allows(me.role, roles)],
        "path": request.path,
        "messages": messages,
        "prefix": PREFIX,
        "role_help": role_help(),
        **context,
    }
    response = aiohttp_jinja2.render_template(template, request, ctx, status=status, app_key=admin_jinja_key)
    for token in new_cookie:
        _set_anonymous_cookie(request, response, token)
    # Console pages carry a CSRF token and private data: never stored by a cache (never framed: the
    # security headers, jiandong/web/security_headers.py).
    response.headers["Cache-Control"] = "no-store"
    return response


async def render_fragment(request: web.Request, template: str, context: dict[str, typing.Any]) -> web.Response:
    """A piece of a page fetched by the page itself (a live list): the CSRF token, no menu, flashes left alone."""
    session = await get_session(request)
    ctx = {"me": request.get(admin_key), "csrf_token": csrf_token(session), "prefix": PREFIX, **context}
    response = aiohttp_jinja2.render_template(template, request, ctx, app_key=admin_jinja_key)
    response.headers["Cache-Control"] = "no-store"
    return response


async def render_error(request: web.Request, status: int, message: str, *, with_session: bool = True) -> web.Response:
    if with_session:
        try:
            return await render(request, "admin/error.html", {"status": status, "message": message}, status)
        except Exception:  # the session itself may be what failed
            pass
    ctx = {"me": None, "csrf_token": "", "menu": [], "path": request.path, "messages": [], "prefix": PREFIX,
           "status": status, "message": message}
    return aiohttp_jinja2.render_template("admin/error.html", request, ctx, status=status, app_key=admin_jinja_key)


def redirect(path: str) -> web.HTTPFound:
    """A redirect to a console path (after a POST: the browser then GETs it)."""
    return web.HTTPFound(PREFIX + path)


@dataclasses.dataclass(frozen=True)
class Column:
    label: str
    key: str
    sort: str = ""  # the sort key the service knows; empty = not sortable
    kind: str = "text"  # text, image, time, date, money, flag, status, link
    note: str = ""  # a row key shown small under a link (the page that reads a config code)


@dataclasses.dataclass
class ListPage:
    """What a list template shows: rows, columns, the query, and links for sorting and paging."""

    rows: list[typing.Any]
    total: int
    query: ListQuery
    columns: list[Column]
    base: str
    # Filters of the list's own (a team ...), kept by its sort and page links.
    extra: dict[str, typing.Any] = dataclasses.field(default_factory=dict)

    @property
    def last_page(self) -> int:
        return max(1, math.ceil(self.total / self.query.size))

    def url(self, **changes: typing.Any) -> str:
        q = self.query
        params = {"q": q.search, **self.extra, "sort": q.sort, "desc": int(q.desc), "page": q.page, **changes}
        return f"{self.base}?{urlencode({k: v for k, v in params.items() if v not in ('', None)})}"

    def sort_url(self, key: str) -> str:
        desc = not self.query.desc if self.query.sort == key else False
        return self.url(sort=key, desc=int(desc), page=1)


def list_query(request: web.Request, sorts: typing.Iterable[str]) -> ListQuery:
    """The list's search, sort and page from the query string (anything unknown falls back to defaults)."""
    query = request.query
    sort = query.get("sort", "")
    page = query.get("page", "1")
    return ListQuery(
        search=query.get("q", "").strip()[:100],
        sort=sort if sort in sorts else "",
        desc=query.get("desc", "1") != "0",
        page=int(page) if page.isdigit() and 0 < int(page) < 100_000 else 1,
        size=PAGE_SIZE,
    )
