"""Uploaded images: decoding, checking (a real JPEG or PNG of sane size) and storing them under media_path."""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import dataclasses
import datetime as dt
import hashlib
import io
import logging
import os
import re
import secrets
import tempfile
import typing
from pathlib import Path

from aiohttp import web
from PIL import Image, ImageCms, ImageDraw, ImageOps

from ..errors import ParameterError, SaveImageFailed
from ..keys import settings_key

logger = logging.getLogger(__name__)

MAX_IMAGE_BYTES = 2 * 1024 * 1024
# A small file can still decode to a huge bitmap (a decompression bomb); avatars never need this many.
MAX_IMAGE_PIXELS = 20_000_000
# Avatars are shown small; larger pictures are scaled down to this many pixels a side.
MAX_AVATAR_SIDE = 1024
# Camera JPEGs carrying a preview image open as MPO; they are plain JPEG files all the same.
IMAGE_FORMATS = {"JPEG": ("jpg", "image/jpeg"), "MPO": ("jpg", "image/jpeg"), "PNG": ("png", "image/png")}
DATA_URL_PREFIX = re.compile(r"^data:image/[a-z0-9.+-]+;base64,", re.IGNORECASE)
# Longest base64 text that can decode to MAX_IMAGE_BYTES: checked before decoding anything.
MAX_BASE64_LEN = 4 * -(-MAX_IMAGE_BYTES // 3)
# Line breaks come from MIME-style encoders; a space is a '+' from a form body sent without URL-encoding.
_BASE64_CLEANUP = str.maketrans({"\r": None, "\n": None, "\t": None, " ": "+"})
TOO_BIG = "参数错误: 图片不能超过 2 MiB"


@dataclasses.dataclass(frozen=True)
class CheckedImage:
    data: bytes
    ext: str
    mime: str
    sha256: str
    original: str = ""


def decode_base64_image(text: str) -> bytes:
    """The bytes of base64 image data, with or without a `data:image/...;base64,` prefix."""
    body = DATA_URL_PREFIX.sub("", text.strip(), count=1).translate(_BASE64_CLEANUP)
    if len(body) > MAX_BASE64_LEN:
        raise ParameterError(TOO_BIG)
    try:
        return base64.b64decode(body, validate=True)
    except (binascii.Error, ValueError):
        raise ParameterError("参数错误: 图片不是合法的 base64 数据") from None


def check_image(
    data: bytes, original: str = "", *, max_bytes: int = MAX_IMAGE_BYTES, max_side: int = MAX_AVATAR_SIDE
) -> CheckedImage:
    """Accept only a well-formed JPEG or PNG of at most 2 MiB and 20 megapixels; re-encode it.

    CPU-bound: run in a thread. Re-encoding drops the metadata a phone photo carries (EXIF with
    the GPS position, for an avatar anyone can load), applies the EXIF orientation first so the
    picture still stands upright, and caps the size at what an avatar needs.
    """
    if not data:
        raise ParameterError("参数错误: 图片不能为空")
    if len(data) > max_bytes:
        too_big = f"参数错误: 图片不能超过 {size_label(max_bytes)}"
        raise ParameterError(TOO_BIG if max_bytes == MAX_IMAGE_BYTES else too_big)
    try:
        with Image.open(io.BytesIO(data), formats=("JPEG", "PNG")) as img:
            kind = IMAGE_FORMATS.get(img.format or "")
            width, height = img.size
            if kind is not None and width * height <= MAX_IMAGE_PIXELS:
                img.verify()
        if kind is not None and width * height <= MAX_IMAGE_PIXELS:
            # verify() leaves the image unusable: open it again to decode it.
            with Image.open(io.BytesIO(data), formats=("JPEG", "PNG")) as img:
                clean = _reencode(img, kind[0], max_side)
    # Pillow reports malformed input through many exception types (OSError, SyntaxError,
    # struct.error, DecompressionBombError, ...); for untrusted bytes they all mean "not an image".
    except Exception:
        raise ParameterError("参数错误: 图片无法识别，只支持 JPEG 或 PNG") from None
    if kind is None:
        raise ParameterError("参数错误: 只支持 JPEG 或 PNG 图片")
    if width * height > MAX_IMAGE_PIXELS:
        raise ParameterError("参数错误: 图片尺寸过大")
    return CheckedImage(clean, kind[0], kind[1], hashlib.sha256(clean).hexdigest(), original)


def _reencode(img: Image.Image, ext: str, max_side: int) -> bytes:
    """The picture's pixels only, in a new file of its own format.

    Whatever else the upload carried is attacker-chosen bytes that would be served back as they came:
    a JPEG comment (`"><script>...`), EXIF (with a GPS position), XMP, PNG text chunks, an ICC profile.
    The EXIF orientation is applied first, so the picture still stands upright, and colours described
    by an ICC profile are converted to sRGB (what a profile-less picture means) before it is dropped.
    Only a palette's transparent colour is kept: it is part of the pixels.
    """
    img = ImageOps.exif_transpose(img)
    img = _to_srgb(img)
    img.thumbnail((max_side, max_side))
    transparency = img.info.get("transparency") if ext == "png" else None
    # Pillow's encoders copy some of the source's metadata from `info` (a JPEG's comment, a PNG's ICC
    # profile): nothing is left there for them to copy.
    img.info = {} if transparency is None else {"transparency": transparency}
    out = io.BytesIO()
    if ext == "jpg":
        if img.mode not in ("RGB", "L"):
            img = img.convert("RGB")
        img.save(out, "JPEG", quality=90, optimize=True)
    else:
        img.save(out, "PNG", optimize=True)
    return out.getvalue()


_SRGB = ImageCms.createProfile("sRGB")


def _to_srgb(img: Image.Image) -> Image.Image:
    """The picture's colours in sRGB when an ICC profile describes them (a phone's Display P3, say)."""
    icc = img.info.get("icc_profile")
    if not icc or img.mode not in ("RGB", "RGBA"):
        return img
    try:
        converted = ImageCms.profileToProfile(img, ImageCms.ImageCmsProfile(io.BytesIO(icc)), _SRGB,
                                              outputMode=img.mode)
    except (ImageCms.PyCMSError, OSError, ValueError, TypeError):
        # A profile that does not parse describes nothing: the pixels stay as they are.
        return img
    return converted if converted is not None else img


def upload_name(filename: str) -> str:
    """The file name a browser sent, without any directory part (some send the full path)."""
    return re.split(r"[\\/]", filename)[-1].strip()[:255]


async def image_from_base64(text: str) -> CheckedImage:
    return await asyncio.to_thread(lambda: check_image(decode_base64_image(text)))


async def image_from_upload(data: bytes, filename: str) -> CheckedImage:
    """An uploaded file's bytes as a checked image (ParameterError when it is not one); `filename` as sent."""
    return await asyncio.to_thread(check_image, data, upload_name(filename))


def write_image(root: Path, folder: str, month: str, image: CheckedImage) -> str:
    """Store the image at <root>/<folder>/<yyyymm>/<sha256>.<ext>; its path relative to root.

    Named by content, so the same image is stored once; written to a temporary file and renamed,
    so a reader never sees half a file.
    """
    relative = f"{folder}/{month}/{image.sha256}.{image.ext}"
    target = root / relative
    if target.is_file():
        return relative
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(image.data)
            fh.flush()
            os.fsync(fh.fileno())
        # mkstemp makes the file private; a web server in front may serve media/ as another user.
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return relative


# Stored media are paths on this site (`/media/...` in the database), so a change of host needs no
# rewrite; answers make them absolute when they are served (absolute_in_json, absolute; base: public_urls.public_base).
MEDIA_PREFIX = "/media/"
JSON_MEDIA = b'"' + MEDIA_PREFIX.encode()


def media_path(relative: str) -> str:
    """The path (as stored) of a file under media_path, served at /media/."""
    return f"{MEDIA_PREFIX}{relative}"


def absolute(value: str, base: str) -> str:
    """A stored media path as an absolute URL under `base`; any other value (an outside URL) as it is."""
    return base + value if value.startswith(MEDIA_PREFIX) else value


def absolute_in_json(body: bytes, base: str) -> bytes:
    """Every JSON string of an answer that is a stored media path, made absolute under `base`.

    One pass over the encoded bytes, whatever field (or JSON text inside a string, as guest/:id's
    `user`) carries it: `"/media/` can only be the start of a string value (`\"/media/` inside one).
    """
    if JSON_MEDIA not in body:
        return body
    return body.replace(JSON_MEDIA, b'"' + base.encode() + MEDIA_PREFIX.encode())


# The picture the pages show for a user without an avatar of their own (head_img "", as after a WeChat
# login whose profile has none): drawn at start-up under media_path (default_avatar_ctx), so it is
# served, backed up and, behind a web server that serves /media/ itself, found like any upload.
DEFAULT_AVATAR = "defaults/avatar.png"
DEFAULT_AVATAR_SIDE = 132  # the size of WeChat's small avatars


def avatar(head_img: str | None) -> str:
    """A user's avatar as every answer shows it (user/info, member/info, guest/:id, the chat's frames):
    their own head_img, or the default avatar's path when they have none. Made absolute on the way out
    like every stored media path (absolute_in_json, absolute)."""
    return head_img or media_path(DEFAULT_AVATAR)


def draw_default_avatar() -> bytes:
    """A grey head-and-shoulders silhouette on a light grey square, as PNG (drawn large, then scaled down
    for smooth edges)."""
    scale = 4
    side = DEFAULT_AVATAR_SIDE * scale
    img = Image.new("RGB", (side, side), (229, 231, 235))
    draw = ImageDraw.Draw(img)
    figure = (156, 163, 175)
    unit = side / 132
    draw.ellipse([46 * unit, 24 * unit, 86 * unit, 64 * unit], fill=figure)
    draw.ellipse([20 * unit, 74 * unit, 112 * unit, 170 * unit], fill=figure)
    img = img.resize((DEFAULT_AVATAR_SIDE, DEFAULT_AVATAR_SIDE), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    img.save(out, "PNG", optimize=True)
    return out.getvalue()


def install_default_avatar(root: Path) -> bool:
    """Write the default avatar to <root>/DEFAULT_AVATAR unless it is there already; whether it was written.
    Written to a temporary file and renamed, so workers starting together never serve half a file."""
    data = draw_default_avatar()
    target = root / DEFAULT_AVATAR
    with contextlib.suppress(OSError):
        if target.read_bytes() == data:
            return False
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return True


async def default_avatar_ctx(app: web.Application) -> typing.AsyncIterator[None]:
    """The default avatar in place before the first request."""
    media_path = app[settings_key].media_path
    try:
        await asyncio.to_thread(install_default_avatar, media_path)
    except OSError:
        # Serving goes on; only the default avatar is missing (404) until the media directory is writable.
        logger.exception("could not write the default avatar under %s", media_path)
    yield


async def store_image(request: web.Request, folder: str, image: CheckedImage) -> str:
    """Store a checked image under media_path/<folder>/<yyyymm>/; its path as stored (/media/...)."""
    settings = request.config_dict[settings_key]
    month = dt.datetime.now(settings.tz).strftime("%Y%m")
    try:
        relative = await asyncio.to_thread(write_image, settings.media_path, folder, month, image)
    except OSError:
        logger.exception("could not store an image under %s", settings.media_path / folder)
        raise SaveImageFailed() from None
    return media_path(relative)


def size_label(size: int) -> str:
    """A byte count as people read it: 5 MiB, 500 MiB, 800 KiB."""
    if size >= 1024 * 1024:
        return f"{size / 1024 / 1024:g} MiB"
    return f"{size / 1024:g} KiB"


# Videos the console accepts, told by their first bytes (never by the name or type the browser sent):
# ISO base media (MP4, MOV: a `ftyp` box first) and WebM (an EBML header whose DocType is webm).
VIDEO_SNIFF_BYTES = 64


def sniff_video(head: bytes) -> tuple[str, str] | None:
    """(extension, MIME type) of a video by its first VIDEO_SNIFF_BYTES bytes; None for anything else."""
    if len(head) >= 12 and head[4:8] == b"ftyp":
        return ("mov", "video/quicktime") if head[8:12] == b"qt  " else ("mp4", "video/mp4")
    if head.startswith(b"\x1a\x45\xdf\xa3") and b"webm" in head:
        return "webm", "video/webm"
    return None


def store_file(root: Path, folder: str, month: str, source: Path, ext: str) -> str:
    """Move an uploaded temporary file (on the same file system) to <root>/<folder>/<yyyymm>/<random>.<ext>;
    its path relative to root. The name is generated: nothing the uploader sent reaches the path."""
    relative = f"{folder}/{month}/{secrets.token_hex(16)}.{ext}"
    target = root / relative
    target.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(source, 0o644)
    os.replace(source, target)
    return relative
