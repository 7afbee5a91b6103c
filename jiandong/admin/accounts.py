"""Signing in and out, the home page, and changing one's own password."""

from __future__ import annotations

import time

import wtforms
from aiohttp import web
from aiohttp_session import get_session, new_session

from ..keys import admin_key, admin_sessions_key, login_throttle_key, pg_key
from ..services import admins, audit, members, today
from ..services.login_throttle import Refusal
from ..web.params import client_ip
from .forms import REQUIRED, AdminForm, add_error, length, read_form
from .render import MENU, PREFIX, csrf_token, flash, redirect, render
from .security import ADMIN_ID, PASSWORD_STAMP, SEEN, SINCE, actor, public

routes = web.RouteTableDef()


class LoginForm(AdminForm):
    username = wtforms.StringField("用户名", [REQUIRED, length(admins.USERNAME_MAX, 1)])
    password = wtforms.PasswordField("密码", [REQUIRED, length(admins.PASSWORD_MAX, 1)])


class PasswordForm(AdminForm):
    current = wtforms.PasswordField("当前密码", [REQUIRED])
    new = wtforms.PasswordField("新密码", [REQUIRED, length(admins.PASSWORD_MAX, admins.PASSWORD_MIN)])
    confirm = wtforms.PasswordField("再次输入新密码", [REQUIRED, wtforms.validators.EqualTo("new", "两次输入不一致")])


def _next_path(raw: str) -> str:
    # Only a path of the console itself: never an address elsewhere (an open redirect).
    return raw if raw.startswith(PREFIX + "/") and not raw.startswith("//") and "\\" not in raw else PREFIX + "/"


@routes.get("/login")
@public
async def login_page(request: web.Request) -> web.Response:
    if request.get(admin_key) is not None:
        raise web.HTTPFound(_next_path(request.query.get("next", "")))
    form = LoginForm()
    return await render(request, "admin/login.html", {"form": form, "next": request.query.get("next", "")})


@routes.post("/login")
@public
async def login(request: web.Request) -> web.Response:
    data = await read_form(request)
    form = LoginForm(data)
    next_path = data.get("next")
    if not form.validate():
        return await render(request, "admin/login.html", {"form": form, "next": next_path}, status=400)
    throttle = request.config_dict[login_throttle_key]
    ip = client_ip(request)
    username = form.username.data
    # Counted before the password is checked: guesses sent at once are counted at once.
    refusal = await throttle.attempt(username, ip)
    if refusal is not None:
        add_error(form, "", _refusal_message(refusal))
        response = await render(request, "admin/login.html", {"form": form, "next": next_path}, status=429)
        response.headers["Retry-After"] = str(refusal.retry_after)
        return response
    admin = await admins.authenticate(request.config_dict[pg_key], username, form.password.data)
    if admin is None:
        add_error(form, "", "用户名或密码错误，或账号已停用")
        return await render(request, "admin/login.html", {"form": form, "next": next_path}, status=400)
    await throttle.succeeded(username, ip)
    # A new session id at login: an id planted before it (session fixation) is worth nothing after.
    old = await get_session(request)
    if old.identity:
        await request.config_dict[admin_sessions_key].discard(old.identity)
    session = await new_session(request)
    session[ADMIN_ID] = admin.id
    session[PASSWORD_STAMP] = admin.password_stamp
    session[SEEN] = session[SINCE] = int(time.time())
    csrf_token(session)
    raise web.HTTPFound(_next_path(next_path))


def _refusal_message(refusal: Refusal) -> str:
    wait = f"{refusal.retry_after} 秒" if refusal.retry_after < 120 else f"{refusal.retry_after // 60} 分钟"
    if refusal.by == "address":
        return f"登录失败次数过多：此网络地址的尝试已达上限，请 {wait}后再试"
    return f"登录失败次数过多：此账号在此网络地址需等待 {wait}后再试（其他设备不受影响，所有者也可在员工账号页解除）"


@routes.post("/logout")
async def logout(request: web.Request) -> web.Response:
    session = await get_session(request)
    if session.identity:
        await request.config_dict[admin_sessions_key].discard(session.identity)
    session.invalidate()
    raise redirect("/login")


@routes.get("/")
async def home(request: web.Request) -> web.Response:
    me = request[admin_key]
    pool = request.config_dict[pg_key]
    sections = [(PREFIX + path, label) for path, label, roles in MENU if admins.role_allows(me.role, roles)]
    # Owners see every grant below the list price: editors cannot make one, so each is an owner's decision.
    grants = await members.below_list_price_grants(pool) if me.role == admins.OWNER else []
    # What needs doing today, of what this role may open (each list links to its page).
    may = {"editor": admins.role_allows(me.role, (admins.EDITOR,)),
           "moderator": admins.role_allows(me.role, (admins.MODERATOR,))}
    return await render(request, "admin/home.html", {"sections": sections, "grants": grants, "may": may,
                                                     "today": await today.attention(pool)})


@routes.get("/password")
async def password_page(request: web.Request) -> web.Response:
    return await render(request, "admin/password.html", {"form": PasswordForm()})


@routes.post("/password")
async def change_password(request: web.Request) -> web.Response:
    form = PasswordForm(await read_form(request))
    me = request[admin_key]
    if form.validate():
        try:
            admin = await admins.change_own_password(request.config_dict[pg_key], me.id, form.current.data,
                                                     form.new.data)
        except admins.AdminError as exc:
            add_error(form, "current" if "当前" in str(exc) else "new", str(exc))
        else:
            await audit.record_now(request.config_dict[pg_key], actor(request), "account.password", f"admin:{me.id}",
                                   "修改自己的密码")
            session = await get_session(request)
            # This session goes on under the new password; every other one of the account ends.
            session[PASSWORD_STAMP] = admin.password_stamp
            flash(session, "密码已修改，其他设备上的登录已失效")
            raise redirect("/")
    return await render(request, "admin/password.html", {"form": form}, status=400)
