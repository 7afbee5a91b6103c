"""通知: delivery per kind (sent, by SMS, failed, with reasons) and the latest notices; each kind's settings
(on or off, WeChat template and its fields, SMS template; owners only); staff notices with a preview of who
receives them by which channel, then their progress while the sending job works through them."""

from __future__ import annotations

import re

from aiohttp import web
from aiohttp_session import get_session

from ..keys import admin_key, pg_key, settings_key
from ..lib import template_fields as tf
from ..services import audit, competitions, notice_campaigns, notices, teams
from ..services.admins import EDITOR
from ..services.notice_kinds import KINDS
from ..store import db
from .errors import PageError
from .forms import keep_typed, read_form, take_typed
from .inputs import path_id
from .render import flash, render
from .security import actor, requires

routes = web.RouteTableDef()
BASE = "/admin/notices"
DAYS = 30
STATES = tuple(notices.STATE_LABELS)
FORM_FIELDS = ("audience", "audience_id", "title", "content", "url")


@routes.get("/notices")
@requires(EDITOR)
async def overview(request: web.Request) -> web.Response:
    pool = request.config_dict[pg_key]
    state = request.query.get("state") if request.query.get("state") in STATES else None
    kind = request.query.get("kind") if request.query.get("kind") in KINDS else None
    counts, reasons = await notices.delivery(pool, DAYS)
    return await render(request, "admin/notices.html", {
        "counts": counts, "reasons": reasons, "days": DAYS, "kinds": KINDS, "state": state or "", "kind": kind or "",
        "rows": await notices.recent(pool, state=state, kind=kind, limit=100),
        "campaigns": await notice_campaigns.recent(pool, 10), "state_labels": notices.STATE_LABELS,
        "channel_labels": notices.CHANNEL_LABELS, "dev": request.config_dict[settings_key].dev_wechat,
    })


@routes.get("/notices/settings")
@requires()
async def settings_page(request: web.Request) -> web.Response:
    typed = take_typed(await get_session(request), f"{BASE}/settings")
    return await render(request, "admin/notice_settings.html", {
        "kinds": await notices.kind_settings(request.config_dict[pg_key]), "typed": typed,
        "settings": request.config_dict[settings_key], "accepts": tf.ACCEPTS,
    })


# What a template id is made of (ids seen in the Official Account's console and in SDK tests: base64url
# text, 43 characters; inferred, as WeChat documents no pattern); empty turns the template off.
TEMPLATE_ID = re.compile(r"[A-Za-z0-9_-]*")
# Aliyun SMS template codes: SMS_ and digits (wechat-aliyun.md, SendSms TemplateCode); empty = no SMS.
SMS_TEMPLATE_CODE = re.compile(r"(?:SMS_[0-9]+)?")


@routes.post("/notices/settings/{kind}")
@requires()
async def save_settings(request: web.Request) -> web.Response:
    name = request.match_info["kind"]
    if name not in KINDS:
        raise PageError(404, "没有这种通知")
    form = await read_form(request)
    values = {"enabled": form.get("enabled") == "on", "template_id": form.get("template_id").strip(),
              "fields": form.get("fields").strip(), "sms_template_code": form.get("sms_template_code").strip()}
    session = await get_session(request)
    pool = request.config_dict[pg_key]
    before = (await notices.kind_settings(pool))[name]
    problem = None
    if len(values["template_id"]) > 128 or len(values["sms_template_code"]) > 64 or len(values["fields"]) > 2000:
        problem = "模板 ID 最多 128 个字符，短信模板代码最多 64 个字符，字段设置最多 2000 个字符"
    elif not TEMPLATE_ID.fullmatch(values["template_id"]):
        problem = "模板 ID 只含字母、数字、- 和 _：请从公众号后台「模板消息」里原样复制"
    elif not SMS_TEMPLATE_CODE.fullmatch(values["sms_template_code"]):
        problem = "短信模板代码形如 SMS_123456789：请从阿里云短信控制台原样复制"
    if problem is None:
        try:
            async with db.transaction(pool) as cur:
                await notices.save_kind(cur, name, **values)
                await audit.record(cur, actor(request), "notice.settings", f"notice_kind:{name}", KINDS[name].label,
                                   before={"enabled": before.enabled, "template_id": before.template_id,
                                           "fields": before.fields, "sms_template_code": before.sms_template_code},
                                   after=values)
        except tf.FieldError as exc:
            problem = str(exc)
    if problem is not None:
        flash(session, f"「{KINDS[name].label}」未保存：{problem}", refused=True,
              todo="字段按「模板字段=内容」一行一个填写，模板字段名照公众号后台模板详情里的写。")
        keep_typed(session, f"{BASE}/settings", {"kind": name, **{k: str(v) for k, v in values.items()}})
        raise web.HTTPSeeOther(f"{BASE}/settings#kind-{name}")
    flash(session, f"「{KINDS[name].label}」已保存")
    raise web.HTTPSeeOther(f"{BASE}/settings#kind-{name}")


async def _form_context(request: web.Request, typed: dict[str, str]) -> dict[str, object]:
    pool = request.config_dict[pg_key]
    return {"typed": typed, "audiences": notice_campaigns.AUDIENCES,
            "matches": await competitions.competition_choices(pool), "teams": await teams.team_choices(pool)}


@routes.get("/notices/new")
@requires(EDITOR)
async def new_notice(request: web.Request) -> web.Response:
    typed = take_typed(await get_session(request), f"{BASE}/new")
    return await render(request, "admin/notice_new.html", await _form_context(request, typed))


async def _draft(request: web.Request) -> notice_campaigns.Draft:
    form = await read_form(request)
    typed = {name: form.get(name) for name in FORM_FIELDS}
    try:
        return notice_campaigns.draft(**typed)
    except notice_campaigns.CampaignError as exc:
        session = await get_session(request)
        flash(session, f"未发送：{exc}", refused=True)
        keep_typed(session, f"{BASE}/new", typed)
        raise web.HTTPSeeOther(f"{BASE}/new") from None


@routes.post("/notices/preview")
@requires(EDITOR)
async def preview(request: web.Request) -> web.Response:
    draft = await _draft(request)
    return await render(request, "admin/notice_preview.html", {
        "draft": draft, "preview": await notice_campaigns.preview(request.config_dict, draft),
        "audience_label": notice_campaigns.AUDIENCES[draft.audience], "send_key": notice_campaigns.new_send_key(),
    })


@routes.post("/notices/send")
@requires(EDITOR)
async def send(request: web.Request) -> web.Response:
    draft = await _draft(request)
    me = actor(request)
    try:
        campaign = await notice_campaigns.send(request.config_dict, me, _role(request), draft,
                                               (await read_form(request)).get("send_key") or "")
    except notice_campaigns.AlreadySent as sent:
        flash(await get_session(request), "这条通知已经发送过，没有再发一次", refused=True)
        raise web.HTTPSeeOther(f"{BASE}/campaigns/{sent.campaign}") from None
    except notice_campaigns.CampaignError as exc:
        session = await get_session(request)
        flash(session, f"未发送：{exc}", refused=True)
        keep_typed(session, f"{BASE}/new", {k: str(v or "") for k, v in vars(draft).items()})
        raise web.HTTPSeeOther(f"{BASE}/new") from None
    flash(await get_session(request), "已开始发送")
    raise web.HTTPSeeOther(f"{BASE}/campaigns/{campaign}")


def _role(request: web.Request) -> str:
    me = request[admin_key]
    assert me is not None  # the page requires a signed-in account
    return me.role


@routes.get(r"/notices/campaigns/{id:[0-9]+}")
@requires(EDITOR)
async def campaign_page(request: web.Request) -> web.Response:
    row = await notice_campaigns.progress(request.config_dict[pg_key], path_id(request, missing="通知不存在"))
    if row is None:
        raise PageError(404, "通知不存在")
    return await render(request, "admin/notice_campaign.html", {
        "c": row, "audience_label": notice_campaigns.AUDIENCES.get(row["audience"], row["audience"]),
        "rows": await notices.recent(request.config_dict[pg_key], campaign_id=row["id"], limit=200),
        "state_labels": notices.STATE_LABELS, "channel_labels": notices.CHANNEL_LABELS,
    })
