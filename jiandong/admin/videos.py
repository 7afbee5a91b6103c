"""视频: replays and highlights — linked match, cover, the video file uploaded or given by URL."""

from __future__ import annotations

import datetime as dt
import typing

import wtforms
from aiohttp import web

from ..keys import pg_key, settings_key
from ..services import competitions, videos
from ..services.editing import Invalid, ListQuery
from ..services.files import StoredFile
from .crud import Section, choice_list, field_values
from .forms import OPTIONAL, REQUIRED, AdminForm, LocalDateTimeField, length
from .inputs import optional_int, url_rule
from .render import Column
from .uploads import store_video

routes = web.RouteTableDef()


class VideoForm(AdminForm):
    title = wtforms.StringField("标题", [REQUIRED, length(100, 1)])
    type = wtforms.SelectField("类型", choices=dict(videos.TYPES), coerce=int, default=1)
    competition_id = wtforms.SelectField("所属赛事", coerce=optional_int, validate_choice=True)
    summary = wtforms.TextAreaField("简介", [length(500)])
    cover = wtforms.FileField("封面图", description="JPEG 或 PNG")
    video_file = wtforms.FileField("视频文件", description="MP4、MOV 或 WebM，按文件内容识别")
    video_url = wtforms.StringField("或视频地址", [OPTIONAL, length(500), url_rule],
                                    description="已上传到 CDN 的视频 URL；上传了文件时以文件为准")
    publish_time = LocalDateTimeField("发布时间", [REQUIRED])


class VideoSection(Section):
    slug, title, noun = "videos", "视频", "视频"
    form_class = VideoForm
    image = ("cover", "main_img_url")
    multipart = True
    search_hint = "标题、简介或赛事"
    columns = [
        Column("封面", "main_img_url", kind="image"),
        Column("标题", "title", "title", kind="link"),
        Column("赛事", "competition_title"),
        Column("发布时间", "publish_time", "publish_time", kind="time"),
        Column("播放", "browse_num", "browse_num"),
        Column("状态", "status", kind="status"),
    ]
    sorts = tuple(videos.SORTS)

    async def list_rows(self, app: web.Application, query: ListQuery) -> tuple[list[typing.Any], int]:
        return await videos.list_videos(app[pg_key], query)

    async def get_row(self, app: web.Application, ident: int) -> typing.Any:
        return await videos.get_video(app[pg_key], ident)

    def form_data(self, row: typing.Any) -> dict[str, typing.Any]:
        return {**row, "video_url": row["file_name"] or ""}

    async def prepare(self, request: web.Request, form: typing.Any, row: typing.Any) -> None:
        form.competition_id.choices = choice_list(await competitions.competition_choices(request.config_dict[pg_key]),
                                                  "（不关联）")
        if row is None and form.publish_time.data is None and not form.publish_time.raw_data:
            form.publish_time.data = dt.datetime.now(request.config_dict[settings_key].tz)

    async def _values(self, request: web.Request, form: typing.Any, row: typing.Any
                      ) -> tuple[dict[str, typing.Any], StoredFile | None]:
        values = field_values(form, ("title", "type", "competition_id", "summary", "publish_time"))
        video = None
        if form.video_file.data:
            video = await store_video(request, form.video_file.data, "video_file")
        elif form.video_url.data and (row is None or form.video_url.data != row["file_name"]):
            video = StoredFile(form.video_url.data, "video", form.video_url.data.rsplit("/", 1)[-1][:255])
        elif row is None:
            raise Invalid("请上传视频文件或填写视频地址", "video_file")
        if form.cover.data:
            values["main_img_url"] = form.cover.data.url
        return values, video

    async def create(self, request: web.Request, form: typing.Any) -> int:
        values, video = await self._values(request, form, None)
        assert video is not None
        return await videos.create_video(request.config_dict, values, video)

    async def update(self, request: web.Request, ident: int, form: typing.Any, row: typing.Any) -> None:
        values, video = await self._values(request, form, row)
        await videos.update_video(request.config_dict, ident, values, video)

    async def switch_on(self, app: web.Application, ident: int, on: bool) -> None:
        await videos.publish_video(app, ident, on)

    async def delete(self, app: web.Application, ident: int) -> None:
        await videos.delete_video(app, ident)


section = VideoSection()
section.add_routes(routes)
