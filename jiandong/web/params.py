"""Request parameters: the query string merged with a JSON, form or multipart body, read once and checked.

Handlers read them through a spec (jiandong.web.fields), whose fields check values with `Params`.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import typing
from urllib.parse import parse_qsl

from aiohttp import BodyPartReader, ClientPayloadError, hdrs, web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.multipart import BadContentDispositionHeader, BadContentDispositionParam
from multidict import MultiDict

from ..errors import BodyTimeout, ParameterError, PayloadTooLarge, UnsupportedMediaType
from ..keys import body_limit_key, params_key, settings_key
from ..lib import encoding

# A request of the API is a few fields: 64 KiB is generous, and what a route takes unless it says otherwise.
DEFAULT_BODY_LIMIT = 64 * 1024
# Big enough for a 2 MiB avatar sent as base64 inside a form body (URL-encoding grows it by a third).
UPLOAD_BODY_LIMIT = 4 * 1024 * 1024
MAX_PAGE_SIZE = 100
MAX_PAGE = 1_000_000
# Ids are PostgreSQL bigints: a larger number names nothing.
MAX_ID = 2**63 - 1
DEFAULT_PAGE_SIZE = 30
# An integer as a client writes one: a sign, then ASCII digits. int() alone also reads other scripts'
# digits (١, １), underscores (1_000) and spaces around it.
INTEGER = re.compile(r"[+-]?[0-9]+")


def not_an_integer(name: str) -> ParameterError:
    """The refusal of a parameter that is not an integer as INTEGER writes one."""
    return ParameterError(f"参数错误: {name} 必须是整数")


def ascii_int(text: str) -> int:
    """`text` as an int when it is one as INTEGER writes it; ValueError otherwise (or past 4,300 digits)."""
    if INTEGER.fullmatch(text) is None:
        raise ValueError(text)
    return int(text)


class Upload(typing.NamedTuple):
    filename: str
    content_type: str
    data: bytes


class Params:
    """The request's parameters: the query string merged with the body, body values last."""

    __slots__ = ("values", "files")

    def __init__(self, values: MultiDict[str], files: dict[str, Upload] | None = None) -> None:
        self.values = values
        self.files = files or {}

    def __contains__(self, name: str) -> bool:
        return name in self.values or f"{name}[]" in self.values or name in self.files

    def raw(self, name: str) -> str | None:
        """The last value given for `name` (a body value overrides the query); ParameterError for an array,
        and for a JSON null, boolean, object or nested array in its place."""
        values = self.values.getall(name, None)
        if values:
            return _text(name, values[-1])
        if f"{name}[]" in self.values:
            raise ParameterError(f"参数错误: {name} 不能是数组")
        return None

    def text(self, name: str, *, required: bool = False, max_len: int | None = None, default: str = "") -> str:
        value = self.raw(name)
        value = default if value is None else value.strip()
        if "\x00" in value:
            # PostgreSQL text cannot hold NUL; refusing it here keeps it from becoming a 500 anywhere.
            raise ParameterError(f"参数错误: {name} 含有非法字符")
        if required and not value:
            raise ParameterError(f"参数错误: {name} 不能为空")
        if max_len is not None and len(value) > max_len:
            raise ParameterError(f"参数错误: {name} 不能超过 {max_len} 个字符")
        return value

    def integer(
        self,
        name: str,
        *,
        required: bool = False,
        default: int | None = None,
        min_value: int | None = None,
        max_value: int | None = None,
    ) -> int | None:
        value = self.raw(name)
        if value is None or value.strip() == "":
            if required:
                raise ParameterError(f"参数错误: {name} 不能为空")
            return default
        try:
            number = ascii_int(value.strip())
        except ValueError:
            raise not_an_integer(name) from None
        if (min_value is not None and number < min_value) or (max_value is not None and number > max_value):
            raise ParameterError(f"参数错误: {name} 超出范围")
        return number

    def strings(self, name: str) -> list[str] | None:
        """An array given as `name[]=a&name[]=b` (jQuery), repeated `name`, or a JSON array.

        None when the parameter is absent; a single plain value gives a one-item list.
        """
        values = [_text(name, v) for v in self.values.getall(f"{name}[]", []) + self.values.getall(name, [])]
        if not values:
            return None
        if len(values) == 1 and values[0].lstrip().startswith("["):
            try:
                parsed = encoding.loads(values[0])
            except encoding.JSONDecodeError:
                parsed = None
            if isinstance(parsed, list):
                return [_text(name, _scalar(item)) for item in parsed]
        return values

    def is_array(self, name: str) -> bool:
        """Whether `name` came as an array (not one plain string)."""
        if f"{name}[]" in self.values or len(self.values.getall(name, [])) > 1:
            return True
        value = self.raw(name)
        return value is not None and value.lstrip().startswith("[") and isinstance(_try_json(value), list)


def _try_json(value: str) -> typing.Any:
    try:
        return encoding.loads(value)
    except encoding.JSONDecodeError:
        return None


class NotText(str):
    """A JSON body's null, boolean, object or nested array where the API takes text or a number (its flags
    are the integers 0 and 1): kept (as "") so that a key no handler reads costs nothing, and refused (400)
    by the first handler that reads it."""

    __slots__ = ()


NOT_TEXT = NotText()


def _text(name: str, value: str) -> str:
    if value is NOT_TEXT:
        raise ParameterError(f"参数错误: {name} 必须是字符串或数字")
    return value


def _scalar(value: typing.Any) -> str:
    if value is None or isinstance(value, (bool, dict, list)):
        return NOT_TEXT
    if isinstance(value, float) and value.is_integer():
        # 3.0 is the integer 3 in JSON (and JSON Schema): it must read as one.
        return str(int(value))
    return str(value)


async def read_params(request: web.Request) -> Params:
    """Parse the request once: the query string, then a JSON, form or multipart body.

    Errors: ParameterError (400) for a malformed body, UnsupportedMediaType (415) for another type,
    PayloadTooLarge (413) past the route's body limit, BodyTimeout (408) for a body that does not arrive.
    """
    cached = request.get(params_key)
    if cached is not None:
        return cached
    values: MultiDict[str] = MultiDict(request.query)
    files: dict[str, Upload] = {}
    if request.body_exists:
        ctype = request.content_type
        if ctype == "application/json" or ctype.endswith("+json"):
            _add_json(values, await read_body(request))
        elif ctype == "multipart/form-data":
            async with _receiving(request):
                await _add_multipart(request, values, files)
        elif ctype in FORM_TYPES or not request.headers.get(hdrs.CONTENT_TYPE):
            # jQuery's default; also taken when the type is missing.
            values.extend(parse_form(await read_body(request), request.charset))
        else:
            raise UnsupportedMediaType()
    params = Params(values, files)
    request[params_key] = params
    return params


FORM_TYPES = ("application/x-www-form-urlencoded",)
# Far more fields than any form of the API has; parsing stops there instead of at the body limit.
MAX_FORM_FIELDS = 1000


def parse_form(body: bytes, charset: str | None = None) -> list[tuple[str, str]]:
    """The fields of an x-www-form-urlencoded body; ParameterError when it does not decode."""
    try:
        return parse_qsl(
            body.decode(charset or "utf-8"), keep_blank_values=True, encoding=charset or "utf-8",
            errors="strict", max_num_fields=MAX_FORM_FIELDS,
        )
    except (UnicodeDecodeError, LookupError, ValueError):
        raise ParameterError("参数错误: 表单编码无效") from None


def _add_json(values: MultiDict[str], data: bytes) -> None:
    try:
        body = encoding.loads(data)
    except encoding.JSONDecodeError:
        raise ParameterError("参数错误: 请求体不是合法的 JSON") from None
    if not isinstance(body, dict):
        raise ParameterError("参数错误: 请求体必须是 JSON 对象")
    for key, value in body.items():
        if isinstance(value, list):
            # Kept as `key[]` like jQuery's arrays, so a one-item list is still an array.
            for item in value:
                values.add(f"{key}[]", _scalar(item))
        else:
            values.add(key, _scalar(value))


async def _add_multipart(request: web.Request, values: MultiDict[str], files: dict[str, Upload]) -> None:
    # aiohttp does not apply client_max_size to multipart bodies: count what we read ourselves.
    budget = body_limit(request)
    reader = await request.multipart()
    while (part := await reader.next()) is not None:
        if not isinstance(part, BodyPartReader) or part.name is None:
            continue
        data = bytearray()
        while chunk := await part.read_chunk():
            data.extend(chunk)
            if len(data) > budget:
                raise PayloadTooLarge()
        budget -= len(data)
        if part.filename:
            files[part.name] = Upload(part.filename, part.headers.get(hdrs.CONTENT_TYPE, ""), bytes(data))
        else:
            try:
                values.add(part.name, data.decode(part.get_charset(default="utf-8")))
            except (UnicodeDecodeError, LookupError):
                raise ParameterError(f"参数错误: {part.name} 编码无效") from None


def body_limit(request: web.Request) -> int:
    """The most bytes the route takes as a body (set by the request limits middleware)."""
    return request.get(body_limit_key, DEFAULT_BODY_LIMIT)


async def read_body(request: web.Request) -> bytes:
    """The raw body: at most the route's limit (PayloadTooLarge beyond), counted as it arrives, so a body
    sent without a Content-Length is refused as soon as it passes the limit, not after it was buffered."""
    limit = body_limit(request)
    if (request.content_length or 0) > limit:
        raise PayloadTooLarge()
    data = bytearray()
    async with _receiving(request):
        while chunk := await request.content.readany():
            data.extend(chunk)
            if len(data) > limit:
                raise PayloadTooLarge()
    return bytes(data)


@contextlib.asynccontextmanager
async def _receiving(request: web.Request) -> typing.AsyncIterator[None]:
    """The one place where a body's transport and framing faults become the API's errors."""
    try:
        async with asyncio.timeout(request.config_dict[settings_key].body_timeout):
            yield
    except TimeoutError:
        raise BodyTimeout() from None
    # A body cut off, a broken chunked or compressed encoding, a multipart without a boundary or with
    # a bad part header: all the client's doing. aiohttp reports them with these types (a bad
    # Content-Disposition only as a warning, which is an exception where warnings are errors).
    except (HttpProcessingError, ClientPayloadError, ValueError, ConnectionResetError,
            BadContentDispositionHeader, BadContentDispositionParam):
        raise ParameterError("参数错误: 请求体格式错误") from None


def client_ip(request: web.Request) -> str:
    """The client's IP: the peer's, or behind trusted proxies the one they report (proxies.TrustedProxies)."""
    return request.remote or "0.0.0.0"


def on_chat_port(request: web.Request) -> bool:
    """Whether the request came in on the dedicated chat port (which serves its websocket alone)."""
    chat_port = request.config_dict[settings_key].chat_port
    sockname = request.transport.get_extra_info("sockname") if request.transport else None
    return bool(chat_port) and isinstance(sockname, tuple) and len(sockname) >= 2 and sockname[1] == chat_port
