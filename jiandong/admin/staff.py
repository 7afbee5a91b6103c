"""员工账号 (owners only): create staff accounts, change their role, disable them, reset their password."""

from __future__ import annotations

import wtforms
from aiohttp import web
from aiohttp_session import get_session

from ..keys import login_throttle_key, pg_key
from ..services import admins, audit
from .errors import PageError
from .forms import REQUIRED, AdminForm, add_error, length, read_form
from .inputs import path_id
from .render import flash, render
from .security import actor, requires

routes = web.RouteTableDef()
ROLE_CHOICES = {role: admins.ROLE_LABELS[role] for role in admins.ROLES}


class NewStaffForm(AdminForm):
    username = wtforms.StringField("用户名", [REQUIRED, length(admins.USERNAME_MAX, 1)])
    role = wtforms.SelectField("角色", choices=ROLE_CHOICES, default=admins.EDITOR)
    password = wtforms.PasswordField("初始密码", [REQUIRED, length(admins.PASSWORD_MAX, admins.PASSWORD_MIN)])


class StaffForm(AdminForm):
    role = wtforms.SelectField("角色", choices=ROLE_CHOICES)
    is_active = wtforms.BooleanField("启用（停用后其所有登录立即失效）")


class ResetForm(AdminForm):
    password = wtforms.PasswordField("新密码", [REQUIRED, length(admins.PASSWORD_MAX, admins.PASSWORD_MIN)])


async def _staff_page(request: web.Request, admin_id: int, form: StaffForm | None = None,
                      reset: ResetForm | None = None, status: int = 200) -> web.Response:
    account = await admins.get_admin(request.config_dict[pg_key], admin_id)
    if account is None:
        raise PageError(404, "账号不存在")
    form = form or StaffForm(data={"role": account.role, "is_active": account.is_active})
    slow_down = await request.config_dict[login_throttle_key].slow_down(account.username)
    return await render(request, "admin/staff_edit.html",
                        {"account": account, "form": form, "reset": reset or ResetForm(), "slow_down": slow_down},
                        status)


def _admin_id(request: web.Request) -> int:
    return path_id(request)


@routes.get("/staff")
@requires(admins.OWNER)
async def list_staff(request: web.Request) -> web.Response:
    accounts = await admins.list_admins(request.config_dict[pg_key])
    return await render(request, "admin/staff.html", {"accounts": accounts})


@routes.get("/staff/new")
@requires(admins.OWNER)
async def new_staff_page(request: web.Request) -> web.Response:
    return await render(request, "admin/staff_new.html", {"form": NewStaffForm()})


@routes.post("/staff/new")
@requires(admins.OWNER)
async def create_staff(request: web.Request) -> web.Response:
    form = NewStaffForm(await read_form(request))
    if form.validate():
        try:
            account = await admins.create_admin(request.config_dict[pg_key], form.username.data, form.password.data,
                                                form.role.data)
        except admins.AdminError as exc:
            add_error(form, "password" if "密码" in str(exc) else "username", str(exc))
        else:
            await audit.record_now(request.config_dict[pg_key], actor(request), "staff.create", f"admin:{account.id}",
                                   account.username, after={"username": account.username, "role": account.role})
            flash(await get_session(request), f"账号 {account.username} 已创建")
            raise web.HTTPFound(f"/admin/staff/{account.id}")
    return await render(request, "admin/staff_new.html", {"form": form}, status=400)


@routes.get(r"/staff/{id:[0-9]+}")
@requires(admins.OWNER)
async def staff_page(request: web.Request) -> web.Response:
    return await _staff_page(request, _admin_id(request))


@routes.post(r"/staff/{id:[0-9]+}")
@requires(admins.OWNER)
async def update_staff(request: web.Request) -> web.Response:
    admin_id = _admin_id(request)
    form = StaffForm(await read_form(request))
    before = await admins.get_admin(request.config_dict[pg_key], admin_id)
    if form.validate():
        try:
            after = await admins.update_admin(request.config_dict[pg_key], admin_id, role=form.role.data,
                                      is_active=form.is_active.data)
        except admins.AdminError as exc:
            add_error(form, "", str(exc))
        else:
            await audit.record_now(
                request.config_dict[pg_key], actor(request), "staff.update", f"admin:{admin_id}", after.username,
                before=before and {"role": before.role, "is_active": before.is_active},
                after={"role": after.role, "is_active": after.is_active})
            flash(await get_session(request), "已保存")
            raise web.HTTPFound(f"/admin/staff/{admin_id}")
    return await _staff_page(request, admin_id, form=form, status=400)


@routes.post(r"/staff/{id:[0-9]+}/password")
@requires(admins.OWNER)
async def reset_staff_password(request: web.Request) -> web.Response:
    admin_id = _admin_id(request)
    reset = ResetForm(await read_form(request))
    if reset.validate():
        try:
            await admins.set_password(request.config_dict[pg_key], admin_id, reset.password.data)
        except admins.AdminError as exc:
            if await admins.get_admin(request.config_dict[pg_key], admin_id) is None:
                raise PageError(404, str(exc)) from None
            add_error(reset, "password", str(exc))
        else:
            await audit.record_now(request.config_dict[pg_key], actor(request), "staff.password", f"admin:{admin_id}",
                                   "重置密码")
            flash(await get_session(request), "密码已重置，该账号的所有登录已失效")
            raise web.HTTPFound(f"/admin/staff/{admin_id}")
    return await _staff_page(request, admin_id, reset=reset, status=400)


@routes.post(r"/staff/{id:[0-9]+}/unlock")
@requires(admins.OWNER)
async def unlock_staff(request: web.Request) -> web.Response:
    """End an account's sign-in slow-down (its owner forgot the password, or someone guessed at it)."""
    admin_id = _admin_id(request)
    account = await admins.get_admin(request.config_dict[pg_key], admin_id)
    if account is None:
        raise PageError(404, "账号不存在")
    throttle = request.config_dict[login_throttle_key]
    before = await throttle.slow_down(account.username)
    if await throttle.unlock(account.username):
        await audit.record_now(request.config_dict[pg_key], actor(request), "staff.unlock", f"admin:{admin_id}",
                               account.username, before=before and {"failures": before.failures, "wait": before.wait})
        flash(await get_session(request), "已解除该账号的登录限制")
    else:
        flash(await get_session(request), "该账号没有登录限制")
    raise web.HTTPFound(f"/admin/staff/{admin_id}")
