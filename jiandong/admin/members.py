"""会员: users found by name, phone or openid; one user's membership, orders, sign-ups and chat mutes; grant or
extend a membership by hand, disable or enable it again (each with a reason)."""

from __future__ import annotations

import typing
from urllib.parse import urlencode

import wtforms
from aiohttp import web
from aiohttp_session import get_session

from ..keys import admin_key, pg_key, settings_key
from ..services import audit, members, moderation, notices, order_search, players, signups
from ..services.admins import EDITOR, OWNER
from ..services.membership import ACTIVE, DISABLED
from .errors import PageError
from .exports import ExportColumn, sheet_download, table
from .forms import OPTIONAL, REQUIRED, AdminForm, keep_refused, length, number_range, read_form, refused_form
from .inputs import parse_yuan, path_id
from .render import Column, ListPage, end_label, flash, list_query, render
from .security import actor, requires

routes = web.RouteTableDef()
BASE = "/admin/members"
COLUMNS = [
    Column("ID", "id"), Column("用户名", "username", kind="link"), Column("手机", "mobile"),
    Column("openid", "openid"), Column("会员状态", "status_label"),
    Column("有效期至", "member_expire_time", kind="time"),
    Column("注册时间", "register_time", kind="time"),
]


class GrantForm(AdminForm):
    years = wtforms.IntegerField("年数", [OPTIONAL, number_range(1, members.YEARS_MAX)],
                                 description="从当前有效期（已过期则从现在）起延长；与结束日期二选一")
    until = wtforms.DateField("或：结束日期", [OPTIONAL], description="有效至该日结束（俱乐部时区）")
    amount = wtforms.StringField("收款金额（元）", [length(12)], default="0",
                                 description="现场收款的金额，计入收入；赠送填 0")
    reason = wtforms.StringField("原因", [REQUIRED, length(members.REASON_MAX, 1)])


class ReasonForm(AdminForm):
    # Beside the grant form's reason on the same page: an id of its own, so each label names its own input.
    reason = wtforms.StringField("原因", [REQUIRED, length(members.REASON_MAX, 1)], id="standing_reason")


def _status_filter(raw: str) -> int | None:
    return int(raw) if raw in ("0", "1", "2", "3") else None


def _expiring_filter(raw: str) -> int | None:
    """Days within which an active membership ends (1~366), else no such filter."""
    return int(raw) if raw.isdigit() and len(raw) <= 3 and 1 <= int(raw) <= 366 else None


@routes.get("/members")
@requires(EDITOR)
async def list_members(request: web.Request) -> web.Response:
    query = list_query(request, ())
    status = _status_filter(request.query.get("status", ""))
    expiring = _expiring_filter(request.query.get("expiring", ""))
    rows, total = await members.search_users(request.config_dict[pg_key], query, status, expiring)
    page = ListPage(rows, total, query, COLUMNS, BASE)
    extra = {k: v for k, v in (("status", status), ("expiring", expiring)) if v is not None}
    return await render(request, "admin/members.html", {"page": page, "status": status, "expiring": expiring,
                                                        "statuses": members.STATUS_LABELS, "extra": extra,
                                                        "export_query": urlencode({"q": query.search, **extra})})


EXPORT_COLUMNS: list[ExportColumn] = [
    ("用户ID", lambda r: r["id"]), ("用户名", lambda r: r["username"]), ("手机", lambda r: r["mobile"]),
    ("会员状态", lambda r: r["status_label"]), ("有效期至", lambda r: r["member_expire_time"]),
    ("注册时间", lambda r: r["register_time"]),
]


@routes.get(r"/members/export.{fmt:(csv|xlsx)}")
@requires(EDITOR)
async def export_members(request: web.Request) -> web.Response:
    """The filtered list (every row, not one page): e.g. the members to remind before their term ends."""
    rows = await members.export_users(request.config_dict[pg_key], list_query(request, ()),
                                      _status_filter(request.query.get("status", "")),
                                      _expiring_filter(request.query.get("expiring", "")))
    return sheet_download(request.match_info["fmt"], table(EXPORT_COLUMNS, rows), "会员", "会员",
                          request.config_dict[settings_key].tz)


def _user_id(request: web.Request) -> int:
    return path_id(request, missing="用户不存在")


# The member page's forms, by the name a refused one is kept under (forms.keep_refused).
FORMS = {"grant": GrantForm, "standing": ReasonForm}


async def _refused(request: web.Request, name: str, form: AdminForm) -> web.HTTPSeeOther:
    page = f"{BASE}/{_user_id(request)}"
    keep_refused(await get_session(request), page, name, form)
    return web.HTTPSeeOther(f"{page}#refused")


async def _kept_forms(request: web.Request, user_id: int) -> dict[str, AdminForm]:
    """The page's forms: empty, or the one refused just before with what was typed and why."""
    forms: dict[str, AdminForm] = {name: cls() for name, cls in FORMS.items()}
    kept = refused_form(await get_session(request), f"{BASE}/{user_id}", FORMS)
    if kept is not None:
        forms[kept[0]] = typing.cast(AdminForm, kept[1])
    return forms


async def _member_page(request: web.Request) -> web.Response:
    pool = request.config_dict[pg_key]
    user = await members.get_user(pool, _user_id(request))
    if user is None:
        raise PageError(404, "用户不存在")
    forms = await _kept_forms(request, user["id"])
    return await render(request, "admin/member.html", {
        "user": user, "grant": forms["grant"], "reason_form": forms["standing"],
        "orders": await order_search.user_orders(pool, user["id"]),
        "season": await signups.season(pool, user["id"]),
        "mutes": await moderation.user_mutes(pool, user["id"]),
        "notices": await notices.recent(pool, user_id=user["id"], limit=50),
        "state_labels": notices.STATE_LABELS,
        "audit": await audit.for_target(pool, f"user:{user['id']}"),
        "card": await players.card_of_user(pool, user["id"]),
        "disabled": user["member_status"] == DISABLED, "active": user["member_status"] == ACTIVE,
    })


@routes.get(r"/members/{id:[0-9]+}")
@requires(EDITOR)
async def member_page(request: web.Request) -> web.Response:
    return await _member_page(request)


@routes.post(r"/members/{id:[0-9]+}/grant")
@requires(EDITOR)
async def grant_membership(request: web.Request) -> web.Response:
    form = GrantForm(await read_form(request))
    amount = parse_yuan(form.amount.data or "0")
    if form.validate():
        if amount is None:
            form.amount.errors = ["金额无效"]
        else:
            pool = request.config_dict[pg_key]
            before = await members.get_user(pool, _user_id(request))
            try:
                order_id = await members.grant_membership(
                    request.config_dict, actor(request), _user_id(request), reason=form.reason.data,
                    years=form.years.data, until=form.until.data, amount=amount,
                    below_list_price=request[admin_key].role == OWNER)
            except members.MemberError as exc:
                form.form_errors.append(str(exc))
            else:
                after = await members.get_user(pool, _user_id(request))
                word = "延长" if before and before["member_status"] == ACTIVE else "开通"
                end = end_label(after["member_expire_time"], request.config_dict[settings_key].tz)
                # The order by its number, as the order lists show it.
                order = await order_search.order_detail(pool, order_id)
                number = order["order_no"] if order else order_id
                flash(await get_session(request), f"会员已{word}至 {end}（订单号 {number}）")
                raise web.HTTPFound(f"{BASE}/{_user_id(request)}")
    raise await _refused(request, "grant", form)


async def _switch(request: web.Request, disabled: bool) -> web.Response:
    form = ReasonForm(await read_form(request))
    if await members.get_user(request.config_dict[pg_key], _user_id(request)) is None:
        raise PageError(404, "用户不存在")
    if form.validate():
        try:
            changed = await members.set_disabled(request.config_dict, actor(request), _user_id(request), disabled,
                                                 form.reason.data)
        except members.MemberError as exc:
            form.form_errors.append(str(exc))
        else:
            word = "禁用" if disabled else "启用"
            flash(await get_session(request), f"会员资格已{word}" if changed else f"会员资格本来就是{word}状态")
            raise web.HTTPFound(f"{BASE}/{_user_id(request)}")
    raise await _refused(request, "standing", form)


@routes.post(r"/members/{id:[0-9]+}/disable")
@requires(EDITOR)
async def disable_member(request: web.Request) -> web.Response:
    return await _switch(request, True)


@routes.post(r"/members/{id:[0-9]+}/enable")
@requires(EDITOR)
async def enable_member(request: web.Request) -> web.Response:
    return await _switch(request, False)
