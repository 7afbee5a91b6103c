"""Console forms: the request body read once (uploads streamed to temporary files), WTForms with Chinese messages."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import datetime as dt
import os
import tempfile
import typing
from pathlib import Path

import wtforms
from aiohttp import BodyPartReader, web
from multidict import MultiDict
from wtforms import validators

from ..errors import ParameterError
from ..keys import admin_form_key, settings_key
from ..services import rosters
from ..services.verification import normalize_phone
from ..store.media import VIDEO_SNIFF_BYTES, size_label
from .errors import PageError

# File fields holding a video; a sheet to import has its own limit; every other file field holds an image.
VIDEO_FIELDS = frozenset({"video_file"})
FILE_LIMITS = {"sheet_file": rosters.MAX_BYTES}
TEXT_PART_MAX = 1024 * 1024
UPLOAD_DIR = ".uploads"


@dataclasses.dataclass
class Upload:
    """A file part of the form, kept in a temporary file under the media dir until stored or dropped."""

    filename: str
    path: Path
    size: int
    head: bytes

    def read(self) -> bytes:
        return self.path.read_bytes()


class FormData:
    """The form's fields and files, as WTForms wants them (getlist)."""

    def __init__(self, values: MultiDict[str] | None = None, files: dict[str, Upload] | None = None) -> None:
        self.values: MultiDict[str] = values if values is not None else MultiDict()
        self.files = files or {}

    def getlist(self, name: str) -> list[typing.Any]:
        if name in self.files:
            return [self.files[name]]
        return self.values.getall(name, [])

    def get(self, name: str, default: str = "") -> str:
        return self.values.get(name, default)

    def __contains__(self, name: object) -> bool:
        return name in self.values or name in self.files

    def __iter__(self) -> typing.Iterator[str]:
        return iter({*self.values.keys(), *self.files})

    def __len__(self) -> int:
        return len(set(self))

    def cleanup(self) -> None:
        for upload in self.files.values():
            with contextlib.suppress(FileNotFoundError):
                upload.path.unlink()


CSRF_REFUSED = "页面已过期或来源不明（CSRF 校验失败），请刷新页面后重试"


class UploadSlots:
    """Uploads in flight per sender (account, address), bounded so no one client holds the disk's write
    bandwidth or a share of its space with many slow uploads. Counted in this process: each server
    process has its own places."""

    def __init__(self, per_client: int) -> None:
        self.per_client = per_client
        self.in_flight: collections.Counter[str] = collections.Counter()

    @contextlib.contextmanager
    def hold(self, holders: typing.Sequence[str]) -> typing.Iterator[None]:
        """A place for each holder for the block's time; PageError 429 if any of them has none left."""
        if any(self.in_flight[h] >= self.per_client for h in holders):
            raise PageError(429, "同时进行的上传过多，请等当前上传完成后再试")
        for h in holders:
            self.in_flight[h] += 1
        try:
            yield
        finally:
            for h in holders:
                self.in_flight[h] -= 1
                if not self.in_flight[h]:
                    del self.in_flight[h]


# What one console form may carry: a video, a few pictures, and this many parts in all.
MAX_IMAGES = 4
MAX_PARTS = 100


TokenCheck = typing.Callable[[str], bool]


async def read_form(request: web.Request, token_check: TokenCheck | None = None) -> FormData:
    """The request's form (urlencoded or multipart), read once per request.

    `token_check`: for a multipart form whose CSRF token was not given otherwise, the check of its
    csrf_token field; a file part that comes before a good token is refused (403) unread.
    """
    cached = request.get(admin_form_key)
    if cached is not None:
        return cached
    form = FormData()
    request[admin_form_key] = form
    if request.content_type == "multipart/form-data":
        await _read_multipart(request, form, token_check)
    elif request.body_exists:
        for key, value in (await request.post()).items():
            if isinstance(value, str):
                form.values.add(key, value)
    return form


async def _read_multipart(request: web.Request, form: FormData, token_check: TokenCheck | None) -> None:
    """Each part within its own limit, and the whole within what one form can need. Only a signed-in
    account's forms get here (security.csrf_middleware); their text parts are read before the CSRF
    token is known good, their file parts only after."""
    settings = request.config_dict[settings_key]
    upload_dir = settings.media_path / UPLOAD_DIR
    budget = settings.upload_video_max_bytes + MAX_IMAGES * settings.upload_image_max_bytes
    text_left = TEXT_PART_MAX
    reader = await request.multipart()
    try:
        for _ in range(MAX_PARTS + 1):
            part = await reader.next()
            if part is None:
                return
            if not isinstance(part, BodyPartReader) or not part.name:
                continue
            if part.filename is None:
                data = bytearray()
                while chunk := await part.read_chunk():
                    data.extend(chunk)
                    # All text parts together, not each: they are held in memory.
                    if len(data) > text_left:
                        raise PageError(413, "提交的内容过长")
                text_left -= len(data)
                form.values.add(part.name, data.decode(part.get_charset(default="utf-8"), errors="replace"))
                continue
            if token_check is not None:
                if not token_check(form.get("csrf_token")):
                    raise PageError(403, CSRF_REFUSED)
                token_check = None
            if part.name in form.files:
                raise PageError(400, "同一文件字段提交了多次")
            limit = settings.upload_video_max_bytes if part.name in VIDEO_FIELDS else \
                FILE_LIMITS.get(part.name, settings.upload_image_max_bytes)
            upload = await _receive_file(part, upload_dir, min(limit, budget))
            if upload is not None:
                budget -= upload.size
                form.files[part.name] = upload
        raise PageError(413, "提交的内容过多")
    except BaseException:
        for upload in form.files.values():
            upload.path.unlink(missing_ok=True)
        raise


async def _receive_file(part: BodyPartReader, upload_dir: Path, limit: int) -> Upload | None:
    await asyncio.to_thread(upload_dir.mkdir, parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=upload_dir, prefix=".", suffix=".part")
    path, size, head = Path(name), 0, b""
    try:
        with os.fdopen(fd, "wb") as out:
            while chunk := await part.read_chunk(256 * 1024):
                size += len(chunk)
                if size > limit:
                    raise PageError(413, f"文件过大：不能超过 {size_label(limit)}")
                if len(head) < VIDEO_SNIFF_BYTES:
                    head = (head + chunk)[:VIDEO_SNIFF_BYTES]
                await asyncio.to_thread(out.write, chunk)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    if size == 0 and not part.filename:
        # A file input left empty still sends its part, with no file name; an empty file chosen has one.
        path.unlink(missing_ok=True)
        return None
    return Upload(part.filename or "", path, size, head)


class AdminForm(wtforms.Form):
    class Meta:
        locales = ("zh",)
        cache_translations = True

    def process(self, *args: typing.Any, **kwargs: typing.Any) -> None:
        super().process(*args, **kwargs)
        # Text left out of a post is empty text (never None): columns hold '' for nothing. Text is kept
        # without the spaces around it (full-width ones too): a title of spaces is no title. Passwords as typed.
        # Here rather than in __init__: a form re-processed with new data (an import's rows) is treated alike.
        for field in self:
            if isinstance(field, wtforms.StringField) and not isinstance(field, wtforms.PasswordField):
                field.data = (field.data or "").strip() if isinstance(field.data, str) or field.data is None \
                    else field.data


class InputRequired(validators.InputRequired):
    """Something typed that is not only spaces (full-width ones included): "  　" is refused like "". A password
    is taken as typed: its own rules say what is wrong with one of spaces."""

    def __call__(self, form: wtforms.Form, field: wtforms.Field) -> None:
        typed = str(field.raw_data[0]) if field.raw_data else ""
        if typed.strip() or (typed and isinstance(field, wtforms.PasswordField)):
            return
        field.errors[:] = []
        raise validators.StopValidation(self.message)


REQUIRED = InputRequired(message="必填")
OPTIONAL = validators.Optional()


def length(maximum: int, minimum: int = 0) -> validators.Length:
    return validators.Length(min=minimum, max=maximum, message=f"长度须为 {minimum}~{maximum} 个字符")


def mobile_number(form: wtforms.Form, field: wtforms.Field) -> None:
    """A mainland mobile number or nothing; stores the 11 digits (the app's sign-in form takes the same)."""
    if not (field.data or "").strip():
        return
    try:
        field.data = normalize_phone(field.data)
    except ParameterError:
        raise validators.ValidationError("手机号码格式不正确：应为 11 位中国大陆手机号，如 13800138000") from None


def number_range(minimum: float, maximum: float) -> validators.NumberRange:
    return validators.NumberRange(min=minimum, max=maximum, message=f"须在 {minimum:g}~{maximum:g} 之间")


class MultiCheckboxField(wtforms.SelectMultipleField):
    """A multiple choice shown as checkboxes: usable with a thumb, unlike a multi-select box."""

    widget = wtforms.widgets.ListWidget(prefix_label=False)
    option_widget = wtforms.widgets.CheckboxInput()


class LocalDateTimeField(wtforms.DateTimeLocalField):
    """A date and time typed in the club's time zone (the form's `meta.tz`), stored aware."""

    def __init__(self, *args: typing.Any, **kwargs: typing.Any) -> None:
        kwargs.setdefault("format", ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M"])
        super().__init__(*args, **kwargs)
        # WTForms shows aware values in `tz` and gives typed ones that zone.
        self.tz = getattr(self.meta, "tz", dt.timezone.utc)


def club_meta(request: web.Request) -> dict[str, typing.Any]:
    """Form meta with the club's time zone, for forms with LocalDateTimeField: `Form(data, meta=club_meta(r))`."""
    return {"tz": request.config_dict[settings_key].tz}


def add_error(form: wtforms.Form, field: str, message: str) -> None:
    """A rule checked by the service, shown next to its field (or above the form)."""
    target = getattr(form, field, None) if field else None
    if isinstance(target, wtforms.Field):
        target.errors = [*target.errors, message]
    else:
        form.form_errors.append(message)


# A refused form shown again after the redirect back to its page (post/redirect/get): the address stays the
# page's own, so a reload shows the page rather than posting again. What was typed and why it was refused wait
# in the session for that page's next view, once.
REFUSED_FORM_KEY = "refused_form"


def keep_refused(session: typing.MutableMapping[str, typing.Any], page: str, name: str, form: wtforms.Form) -> None:
    """Keep `form` (refused) for the next view of `page` (its path), as the page's form `name`."""
    session[REFUSED_FORM_KEY] = {
        "page": page, "form": name,
        "values": [[f.name, value] for f in form for value in (f.raw_data or []) if isinstance(value, str)
                   and f.name != "csrf_token"],
        "errors": {f.name: list(f.errors) for f in form if f.errors}, "form_errors": list(form.form_errors)}


def refused_form(session: typing.MutableMapping[str, typing.Any], page: str,
                 makers: typing.Mapping[str, typing.Callable[[MultiDict[str]], wtforms.Form]]
                 ) -> tuple[str, wtforms.Form] | None:
    """The form refused just before on `page`: (its name, the form as typed with its problems), or None."""
    kept = session.pop(REFUSED_FORM_KEY, None)
    if not (isinstance(kept, dict) and kept.get("page") == page and kept.get("form") in makers):
        return None
    form = makers[kept["form"]](MultiDict([(str(k), str(v)) for k, v in kept["values"]]))
    for name, errors in kept["errors"].items():
        if name in form:
            form[name].errors = list(errors)
    form.form_errors.extend(kept["form_errors"])
    return kept["form"], form


def keep_typed(session: typing.MutableMapping[str, typing.Any], page: str, values: typing.Mapping[str, str]) -> None:
    """What was typed in a refused plain form (no WTForms form behind it: a refund, a sign-up), for the next
    view of `page` only, each value cut to 200 characters."""
    session[REFUSED_FORM_KEY] = {"page": page, "typed": {k: str(v)[:200] for k, v in values.items()}}


def take_typed(session: typing.MutableMapping[str, typing.Any], page: str) -> dict[str, str]:
    """The values keep_typed kept for `page` (empty when none): shown once, then gone."""
    kept = session.get(REFUSED_FORM_KEY)
    if not (isinstance(kept, dict) and kept.get("page") == page and isinstance(kept.get("typed"), dict)):
        return {}
    del session[REFUSED_FORM_KEY]
    return {str(k): str(v) for k, v in kept["typed"].items()}
