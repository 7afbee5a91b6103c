"""Files staff upload: images checked and re-encoded like avatars, videos recognised by their content; an
accepted image kept for the retry of a refused form."""

from __future__ import annotations

import asyncio
import base64
import binascii
import dataclasses
import datetime as dt
import hashlib
import hmac
import re
import secrets
import time
import typing

import wtforms
from aiohttp import web
from aiohttp_session import get_session

from ..errors import ParameterError
from ..keys import settings_key
from ..lib import encoding
from ..services.editing import Invalid
from ..services.files import StoredFile
from ..store import media
from .forms import VIDEO_FIELDS, Upload

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


# An image accepted by a refused form is stored at once and named in the re-shown form by a token, so the
# retry needs no second upload. The token is signed with a key of the staff session (another session's
# token, or one changed in any way, is no token) and expires; the file it names is checked again.
KEEP_SECONDS = 2 * 3600
KEEP_SESSION_KEY = "upload_key"
KEEP_SUFFIX = "__kept"
_STORED_IMAGE = re.compile(r"/media/([a-z]+)/[0-9]{6}/[0-9a-f]{64}\.(?:jpg|png)")


@dataclasses.dataclass(frozen=True)
class KeptImage:
    """An image already stored for a form's field, and the token the re-shown form sends back for it."""

    stored: StoredFile
    token: str


def kept_name(field: str) -> str:
    """The form field carrying the token of `field`'s kept image."""
    return field + KEEP_SUFFIX


def _mac(key: str, payload: str) -> str:
    digest = hmac.new(key.encode(), payload.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


async def keep_image(request: web.Request, field: str, stored: StoredFile) -> KeptImage:
    """A token for the stored image of `field`, valid in this session for KEEP_SECONDS."""
    session = await get_session(request)
    key = session.get(KEEP_SESSION_KEY)
    if not key:
        key = session[KEEP_SESSION_KEY] = secrets.token_urlsafe(32)
    body = [field, stored.url, stored.original, stored.size, stored.mime, stored.sha256,
            int(time.time()) + KEEP_SECONDS]
    payload = base64.urlsafe_b64encode(encoding.dumps(body)).decode().rstrip("=")
    return KeptImage(stored, f"{payload}.{_mac(key, payload)}")


async def kept_image(request: web.Request, token: str, field: str, folder: str) -> StoredFile | None:
    """The image a token from this session names for `field`, if the token is good and the file is there;
    else None (as if nothing was uploaded)."""
    if not token or len(token) > 2048 or token.count(".") != 1:
        return None
    key = (await get_session(request)).get(KEEP_SESSION_KEY)
    payload, mac = token.split(".")
    if not key or not hmac.compare_digest(_mac(key, payload).encode(), mac.encode()):
        return None
    try:
        body = encoding.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        name, url, original, size, mime, sha256, expires = body
    except (binascii.Error, ValueError, TypeError):
        return None
    match = _STORED_IMAGE.fullmatch(url) if isinstance(url, str) else None
    if name != field or not isinstance(expires, int) or expires < time.time() or match is None \
            or match.group(1) != folder:
        return None
    path = request.config_dict[settings_key].media_path / url.removeprefix(media.MEDIA_PREFIX)
    if not await asyncio.to_thread(path.is_file):
        return None
    return StoredFile(url, "image", str(original), int(size), str(mime), str(sha256))


def image_fields(form: typing.Iterable[typing.Any]) -> list[typing.Any]:
    """The form's image file fields (every file field but a video's)."""
    return [f for f in form if isinstance(f, wtforms.FileField) and f.name not in VIDEO_FIELDS]
