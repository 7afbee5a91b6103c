"""Typed parameter specs: each parameter declared once, for the OpenAPI document and for reading it.

A handler declares `class P(Spec): id = Int("订单ID", minimum=1, maximum=MAX_ID)`, passes `params=P` to
`@describe`, and reads `p = await P.read(request)`: `p.id` is an `int`. A refused value is a ParameterError
(400) whose `msg` names the parameter (`参数错误: id 超出范围`).
"""

from __future__ import annotations

import datetime as dt
import typing

from aiohttp import web
from multidict import MultiDict

from ..errors import ParameterError
from ..lib.cleaning import clean_text
from .openapi import CLEANED, Param
from .params import (
    DEFAULT_PAGE_SIZE,
    MAX_ID,
    MAX_PAGE,
    MAX_PAGE_SIZE,
    Params,
    Upload,
    ascii_int,
    not_an_integer,
    read_params,
)

T = typing.TypeVar("T")
S = typing.TypeVar("S", bound="Spec")


def _param(name: str, kind: str, description: str, *, required: bool = False, location: str = "body",
           **schema: typing.Any) -> Param:
    return Param(name, {"type": kind, **schema}, required, description, location)


class Field(typing.Generic[T]):
    """One parameter: its documentation (`doc`) and how it is read from the request's `Params` (`parse`)."""

    name = ""
    location = "body"  # body (or the query), query, or path

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    @typing.overload
    def __get__(self, obj: None, owner: type) -> Field[T]: ...
    @typing.overload
    def __get__(self, obj: Spec, owner: type) -> T: ...
    def __get__(self, obj: Spec | None, owner: type) -> Field[T] | T:
        if obj is None:
            return self
        return typing.cast(T, obj.values[self.name])

    def doc(self) -> Param:
        raise NotImplementedError

    def parse(self, params: Params) -> T:
        raise NotImplementedError

    def from_path(self, match_info: typing.Mapping[str, str]) -> T:
        """The value from the URL's matched parts (a field with location "path")."""
        return self.parse(Params(MultiDict(match_info)))


def _integer(
    params: Params,
    name: str,
    *,
    required: bool,
    default: int | None,
    minimum: int | None,
    maximum: int | None,
    one_of: typing.Collection[int] | None,
    refusal: str | None,
) -> int | None:
    if one_of is None:
        return params.integer(name, required=required, default=default, min_value=minimum, max_value=maximum)
    value = params.integer(name, required=required, default=default)
    if value is not None and value not in one_of:
        raise ParameterError(refusal or f"参数错误: {name} 超出范围")
    return value


def _integer_doc(field: Int | MaybeInt, *, required: bool) -> Param:
    schema = dict(field.schema)
    if field.one_of is not None:
        schema.setdefault("enum", list(field.one_of))
    bounds = {} if "enum" in schema else {"minimum": field.minimum, "maximum": field.maximum}
    extra = {k: v for k, v in {**bounds, **schema}.items() if v is not None}
    return _param(field.name, "integer", field.description, required=required, location=field.location, **extra)


class Int(Field[int]):
    """An integer in [minimum, maximum] (None: unbounded): required, unless it has a `default`.

    `one_of` (documented as its `enum`) takes only those values, whatever the bounds, and refuses
    another with `refusal` as its `msg`. `schema` adds to its documented schema (an `enum` replaces
    the documented bounds).
    """

    def __init__(
        self,
        description: str = "",
        *,
        minimum: int | None = 1,
        maximum: int | None = MAX_ID,
        default: int | None = None,
        location: str = "body",
        one_of: typing.Collection[int] | None = None,
        refusal: str | None = None,
        **schema: typing.Any,
    ) -> None:
        self.description, self.minimum, self.maximum, self.location = description, minimum, maximum, location
        self.default, self.one_of, self.refusal, self.schema = default, one_of, refusal, schema

    def doc(self) -> Param:
        return _integer_doc(self, required=self.default is None)

    def parse(self, params: Params) -> int:
        value = _integer(
            params, self.name, required=self.default is None, default=self.default, minimum=self.minimum,
            maximum=self.maximum, one_of=self.one_of, refusal=self.refusal,
        )
        if value is None:  # required, or with a default: never None
            raise AssertionError(self.name)
        return value


class MaybeInt(Field["int | None"]):
    """An optional integer, None when absent or empty; otherwise held to what an `Int` is."""

    def __init__(
        self,
        description: str = "",
        *,
        minimum: int | None = 1,
        maximum: int | None = MAX_ID,
        location: str = "body",
        one_of: typing.Collection[int] | None = None,
        refusal: str | None = None,
        **schema: typing.Any,
    ) -> None:
        self.description, self.minimum, self.maximum, self.location = description, minimum, maximum, location
        self.one_of, self.refusal, self.schema = one_of, refusal, schema

    def doc(self) -> Param:
        return _integer_doc(self, required=False)

    def parse(self, params: Params) -> int | None:
        return _integer(
            params, self.name, required=False, default=None, minimum=self.minimum, maximum=self.maximum,
            one_of=self.one_of, refusal=self.refusal,
        )


class Text(Field[str]):
    """Trimmed text, "" when absent and not required; `max_length` characters at most.

    `check` is given a value that is not empty and answers the value to use (or raises ParameterError);
    `schema` adds to its documented schema (the `pattern` a `check` holds values to, say).
    """

    def __init__(
        self,
        description: str = "",
        *,
        required: bool = False,
        max_length: int | None = None,
        location: str = "body",
        check: typing.Callable[[str], str] | None = None,
        **schema: typing.Any,
    ) -> None:
        self.description, self.required, self.max_length, self.location = description, required, max_length, location
        self.check, self.schema = check, schema

    def doc(self) -> Param:
        extra = {} if self.max_length is None else {"maxLength": self.max_length}
        return _param(
            self.name, "string", self.description, required=self.required, location=self.location,
            **extra, **self.schema,
        )

    def parse(self, params: Params) -> str:
        value = params.text(self.name, required=self.required, max_len=self.max_length)
        return self.check(value) if self.check is not None and value else value


class Listed(typing.NamedTuple):
    """The values of a many-valued parameter, and whether they came as an array (not one plain string)."""

    values: list[str]
    array: bool


class Many(Field[Listed]):
    """One string or an array of them (`name[]=a&name[]=b`, repeated `name`, a JSON array): trimmed, each once,
    at least one, `max_items` at most, each of `max_length` characters at most.

    Refused: none or an empty one (`不能为空`), too many (`最多 N 个`), a value too long or with a NUL (`不合法`).
    Documented as the string it mostly is.
    """

    def __init__(self, description: str = "", *, max_items: int, max_length: int) -> None:
        self.description, self.max_items, self.max_length = description, max_items, max_length

    def doc(self) -> Param:
        return _param(self.name, "string", self.description, required=True, location=self.location)

    def parse(self, params: Params) -> Listed:
        array = params.is_array(self.name)
        values = list(dict.fromkeys(value.strip() for value in params.strings(self.name) or []))
        if not values or "" in values:
            raise ParameterError(f"参数错误: {self.name} 不能为空")
        if len(values) > self.max_items:
            raise ParameterError(f"参数错误: {self.name} 最多 {self.max_items} 个")
        for value in values:
            # PostgreSQL text cannot hold NUL.
            if len(value) > self.max_length or "\x00" in value:
                raise ParameterError(f"参数错误: {self.name} 不合法")
        return Listed(values, array)


class TextOrFile(Field["str | Upload"]):
    """Text, or a file of that name in a multipart body (which wins): the trimmed text ("" when absent)
    or the `Upload`. The text is checked as a `Text` either way."""

    def __init__(self, description: str = "") -> None:
        self.description = description

    def doc(self) -> Param:
        return _param(self.name, "string", self.description, location=self.location)

    def parse(self, params: Params) -> str | Upload:
        text = params.text(self.name)
        return params.files.get(self.name, text)


class Outside(Field[str]):
    """Text an outside service sends (a stream server's callback): any string, its control characters removed
    (jiandong.lib.cleaning), `max_length` characters at most, "" when absent; refused only when it is not a
    string (a JSON object, say): `应为字符串`. `numbers` takes a JSON integer as its digits."""

    def __init__(
        self, description: str = "", *, location: str = "body", max_length: int = 1024, numbers: bool = False
    ) -> None:
        self.description, self.location, self.max_length, self.numbers = description, location, max_length, numbers

    def doc(self) -> Param:
        return _param(
            self.name, "string", f"{self.description}（控制字符会被去掉）", location=self.location, **{CLEANED: True}
        )

    def parse(self, params: Params) -> str:
        return _outside(params, self.name, self.max_length, numbers=self.numbers)


def _outside(params: Params, name: str, max_length: int, *, numbers: bool = False) -> str:
    # The first value, as sent: no merging of arrays and no trimming, unlike the API's own parameters.
    value: typing.Any = params.values.get(name)
    if numbers and isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if value is not None and not isinstance(value, str):
        raise ParameterError(f"参数错误: {name} 应为字符串")
    return clean_text(value, max_length)


class UnixTime(Field["dt.datetime | None"]):
    """An outside service's time in Unix seconds (text, cleaned as `Outside` is), as an aware datetime;
    None when absent or absurd."""

    def __init__(self, description: str = "", *, location: str = "body") -> None:
        self.description, self.location = description, location

    def doc(self) -> Param:
        return _param(self.name, "integer", self.description, location=self.location)

    def parse(self, params: Params) -> dt.datetime | None:
        raw = _outside(params, self.name, 1024)
        if not (raw.isascii() and raw.isdigit()):
            return None
        try:
            return dt.datetime.fromtimestamp(int(raw), dt.timezone.utc)
        except (OverflowError, OSError, ValueError):
            return None


class Tokens(Field[list[str]]):
    """Every value given for a secret (a token), untouched: whoever checks it wants exactly one."""

    def __init__(self, description: str = "", *, location: str = "body") -> None:
        self.description, self.location = description, location

    def doc(self) -> Param:
        return _param(self.name, "string", self.description, location=self.location)

    def parse(self, params: Params) -> list[str]:
        return list(params.values.getall(self.name, []))


class Spec:
    """A set of fields; `read`/`take` validate and give an instance whose attributes are the values."""

    _fields: typing.ClassVar[tuple[Field[typing.Any], ...]]
    _path_only: typing.ClassVar[bool]

    def __init__(self, values: dict[str, typing.Any]) -> None:
        self.values = values

    @classmethod
    def fields(cls) -> tuple[Field[typing.Any], ...]:
        """The spec's fields, its bases' first; worked out once per class (a request reads them each time)."""
        known = cls.__dict__.get("_fields")
        if known is None:
            found: dict[str, Field[typing.Any]] = {}
            for klass in reversed(cls.__mro__):
                found.update({k: v for k, v in vars(klass).items() if isinstance(v, Field)})
            known = tuple(found.values())
            cls._fields = known
            cls._path_only = all(f.location == "path" for f in known)
        return known

    @classmethod
    def params(cls) -> tuple[Param, ...]:
        """The OpenAPI declarations (what `@describe(params=...)` takes)."""
        return tuple(f.doc() for f in cls.fields())

    @classmethod
    def parse(cls: type[S], params: Params, path: Params | None = None) -> S:
        return cls({f.name: f.parse(path if path is not None and f.location == "path" else params)
                    for f in cls.fields()})

    @classmethod
    async def read(cls: type[S], request: web.Request) -> S:
        """The request's parameters checked (ParameterError, 400). The path's are read from the URL; the query
        and body are read (jiandong.web.params.read_params) only when the spec has parameters there."""
        fields = cls.fields()
        if cls._path_only:
            match_info = request.match_info
            return cls({f.name: f.from_path(match_info) for f in fields})
        return cls.parse(await read_params(request), Params(MultiDict(request.match_info)))

    @classmethod
    def take(cls: type[S], values: typing.Mapping[str, typing.Any]) -> S:
        """An already-parsed mapping (a query, a form, a JSON object) checked the same way."""
        return cls.parse(Params(MultiDict(values)))


class Paged(Spec):
    """`page` >= 1 and 1 <= `size` <= 100 (default 30), from the query or the body."""

    page = Int(f"页码，默认 1，最大 {MAX_PAGE}", maximum=MAX_PAGE, default=1, location="query")
    size = Int(
        f"每页条数，默认 30，最大 {MAX_PAGE_SIZE}", maximum=MAX_PAGE_SIZE, default=DEFAULT_PAGE_SIZE, location="query"
    )


class PathId(Int):
    """An id from the URL: the digits its route's pattern matched, as an int (unbounded: a number past the
    ids a table holds names nothing, which the handler answers as it answers any unknown id)."""

    def __init__(self, description: str = "", **schema: typing.Any) -> None:
        super().__init__(description, minimum=None, maximum=None, location="path")
        self.schema = schema

    def doc(self) -> Param:
        return _param(self.name, "integer", self.description, required=True, location="path", **self.schema)

    def from_path(self, match_info: typing.Mapping[str, str]) -> int:
        # What Int.parse makes of one unbounded value, without building a Params for it: this runs on every
        # read of a match or a video.
        try:
            return ascii_int(match_info[self.name])
        except ValueError:
            raise not_an_integer(self.name) from None
