"""直播: live streams — match, cover, stream name, push and play URLs (generated or by hand), the push URL
as a QR code, and the status set by hand when no callback arrives. The push URL is shown only here."""

from __future__ import annotations

import datetime as dt
import io
import re
import typing

import segno
import wtforms
from aiohttp import web
from aiohttp_session import get_session

from ..integrations.aliyun_live import aliyun_urls_configured
from ..keys import pg_key, settings_key
from ..services import competitions, lives
from ..services.admins import EDITOR
from ..services.editing import ListQuery
from ..services.live_status import LIVE_STATUSES
from .crud import Section, choice_list, field_values
from .errors import PageError
from .forms import OPTIONAL, REQUIRED, AdminForm, LocalDateTimeField, length, read_form
from .inputs import optional_int
from .render import Column, flash
from .security import requires

routes = web.RouteTableDef()

STREAM_NAME = re.compile(r"[A-Za-z0-9_-]{1,100}")


def stream_rule(form: wtforms.Form, field: wtforms.Field) -> None:
    if not STREAM_NAME.fullmatch(field.data or ""):
        raise wtforms.ValidationError("只能用字母、数字、- 和 _（最多 100 个）")


def stream_url_rule(form: wtforms.Form, field: wtforms.Field) -> None:
    if field.data and not re.match(r"(rtmp|rtmps|srt|https?)://[^\s]+$", field.data):
        raise wtforms.ValidationError("须是 rtmp:// 或 http(s):// 开头的地址")


class LiveForm(AdminForm):
    title = wtforms.StringField("标题", [REQUIRED, length(100, 1)])
    competition_id = wtforms.SelectField("所属赛事", coerce=optional_int, validate_choice=True)
    summary = wtforms.TextAreaField("简介", [length(500)])
    cover = wtforms.FileField("封面图", description="JPEG 或 PNG")
    app_name = wtforms.StringField("AppName", [REQUIRED, stream_rule], default="live")
    stream_name = wtforms.StringField("流名称 StreamName", [REQUIRED, stream_rule],
                                      description="推流与回调以它识别这场直播，不能与其他直播重复")
    generate = wtforms.BooleanField("按阿里云直播配置生成推流和播放地址（带 auth_key 鉴权）")
    plug_flow = wtforms.StringField(
        "推流地址", [OPTIONAL, length(1000), stream_url_rule],
        description="SRS / nginx-rtmp：rtmp://主机/AppName/流名称；已配置推流密钥时自动加上 ?token=")
    play_rtmp = wtforms.StringField("RTMP 播放地址", [OPTIONAL, length(1000), stream_url_rule])
    play_flv = wtforms.StringField("FLV 播放地址", [OPTIONAL, length(1000), stream_url_rule])
    play_m3u8 = wtforms.StringField("M3U8 播放地址", [OPTIONAL, length(1000), stream_url_rule])
    online_show = wtforms.BooleanField("显示在线人数", default=True)
    publish_time = LocalDateTimeField("发布时间", [REQUIRED])


class LiveSection(Section):
    slug, title, noun = "lives", "直播", "直播"
    form_class = LiveForm
    image = ("cover", "main_img_url")
    multipart = True
    search_hint = "标题、流名称或赛事"
    edit_template = "admin/live.html"
    columns = [
        Column("封面", "main_img_url", kind="image"),
        Column("标题", "title", "title", kind="link"),
        Column("流名称", "stream_name"),
        Column("直播状态", "live_status_label", "live_status"),
        Column("发布时间", "publish_time", "publish_time", kind="time"),
        Column("状态", "status", kind="status"),
    ]
    sorts = tuple(lives.SORTS)

    async def list_rows(self, app: web.Application, query: ListQuery) -> tuple[list[typing.Any], int]:
        rows, total = await lives.list_lives(app[pg_key], query)
        return [{**row, "live_status_label": lives.STATUS_LABELS[row["live_status"]]} for row in rows], total

    async def get_row(self, app: web.Application, ident: int) -> typing.Any:
        return await lives.get_live(app[pg_key], ident)

    async def prepare(self, request: web.Request, form: typing.Any, row: typing.Any) -> None:
        settings = request.config_dict[settings_key]
        form.competition_id.choices = choice_list(await competitions.competition_choices(request.config_dict[pg_key]),
                                                  "（不关联）")
        if row is None and not form.publish_time.raw_data:
            form.publish_time.data = dt.datetime.now(settings.tz)
            if aliyun_urls_configured(settings) and not form.generate.raw_data:
                form.generate.data = True
                form.app_name.data = settings.aliyun_live_app_name or "live"
        if not aliyun_urls_configured(settings):
            del form.generate

    async def _values(self, request: web.Request, form: typing.Any) -> tuple[dict[str, typing.Any], bool]:
        values = field_values(form, ("title", "competition_id", "summary", "app_name", "stream_name", "plug_flow",
                                     "play_rtmp", "play_flv", "play_m3u8", "publish_time"))
        values["online_show"] = int(form.online_show.data)
        if form.cover.data:
            values["main_img_url"] = form.cover.data.url
        return values, bool(getattr(form, "generate", None) and form.generate.data)

    async def create(self, request: web.Request, form: typing.Any) -> int:
        values, generate = await self._values(request, form)
        return await lives.create_live(request.config_dict, values, generate=generate)

    async def update(self, request: web.Request, ident: int, form: typing.Any, row: typing.Any) -> None:
        values, generate = await self._values(request, form)
        await lives.update_live(request.config_dict, ident, values, generate=generate)

    async def switch_on(self, app: web.Application, ident: int, on: bool) -> None:
        await lives.publish_live(app, ident, on)

    async def delete(self, app: web.Application, ident: int) -> None:
        await lives.delete_live(app, ident)

    async def extra(self, request: web.Request, row: typing.Any) -> dict[str, typing.Any]:
        # Without the secret the streaming callbacks refuse every publish, so the push URL shown would not work.
        return {"status_labels": lives.STATUS_LABELS,
                "push_refused": not request.config_dict[settings_key].live_push_secret}


section = LiveSection()
section.add_routes(routes)


@routes.get(r"/lives/{id:[0-9]+}/push-qr.svg")
@requires(EDITOR)
async def push_url_qr(request: web.Request) -> web.Response:
    """The push URL as a QR code, for phone streaming apps; drawn here, never by an outside service."""
    _, row = await section.load(request)
    if not row["plug_flow"]:
        raise PageError(404, "这场直播还没有推流地址")
    out = io.BytesIO()
    segno.make(row["plug_flow"], error="m").save(out, kind="svg", scale=6, border=2, xmldecl=False)
    return web.Response(body=out.getvalue(), content_type="image/svg+xml",
                        headers={"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"})


@routes.post(r"/lives/{id:[0-9]+}/status")
@requires(EDITOR)
async def set_live_status(request: web.Request) -> web.Response:
    """Status by hand, when the streaming server's callback does not come: through live_status, like callbacks."""
    _, row = await section.load(request)
    raw = (await read_form(request)).get("live_status")
    if not raw.isdigit() or int(raw) not in LIVE_STATUSES:
        raise PageError(400, "直播状态无效")
    change = await lives.set_status_by_hand(request.config_dict, row["stream_name"], int(raw))
    if change.changed:
        await section.record(request, "status", row["id"], {"live_status": row["live_status"]},
                             {"live_status": int(raw)}, row)
    flash(await get_session(request),
          f"直播状态已改为「{lives.STATUS_LABELS[int(raw)]}」" if change.changed else "直播状态未变")
    raise web.HTTPFound(f"{section.base}/{row['id']}")
