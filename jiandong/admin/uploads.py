"""Files staff upload: images checked and re-encoded like avatars, videos recognised by their content."""

from __future__ import annotations

import asyncio
import datetime as dt

from aiohttp import web

from ..errors import ParameterError
from ..keys import settings_key
from ..services.editing import Invalid
from ..services.files import StoredFile
from ..store import media
from .forms import Upload

# Covers and banners are shown across a phone screen: larger than avatars, still capped.
CONTENT_IMAGE_SIDE = 2048


async def store_image(request: web.Request, upload: Upload, folder: str, field: str) -> StoredFile:
    """Check an uploaded image (JPEG or PNG, size, pixels), re-encode it (EXIF dropped) and store it."""
    settings = request.config_dict[settings_key]
    data = await asyncio.to_thread(upload.read)
    try:
        image = await asyncio.to_thread(
            media.check_image, data, media.upload_name(upload.filename),
            max_bytes=settings.upload_image_max_bytes, max_side=CONTENT_IMAGE_SIDE,
        )
    except ParameterError as exc:
        raise Invalid(exc.msg.removeprefix("参数错误: "), field) from None
    url = await media.store_image(request, folder, image)
    return StoredFile(url, "image", image.original, len(image.data), image.mime, image.sha256)


async def store_video(request: web.Request, upload: Upload, field: str) -> StoredFile:
    """Store an uploaded video under a generated name, if its first bytes say MP4, MOV or WebM."""
    kind = media.sniff_video(upload.head)
    if kind is None:
        raise Invalid("无法识别的视频：只支持 MP4、MOV 或 WebM（按文件内容识别）", field)
    settings = request.config_dict[settings_key]
    month = dt.datetime.now(settings.tz).strftime("%Y%m")
    relative = await asyncio.to_thread(media.store_file, settings.media_path, "videos", month, upload.path, kind[0])
    return StoredFile(media.media_path(relative), "video", media.upload_name(upload.filename), upload.size,
                      kind[1])
