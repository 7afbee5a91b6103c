"""Typed parameter specs: each parameter declared once, for the OpenAPI document and for reading it.

A handler declares `class P(Spec): id = Int("订单ID", minimum=1, maximum=MAX_ID)`, passes `params=P` to
`@describe`, and reads `p = await P.read(request)`: `p.id` is an `int`. Errors are those of `Params`
(ParameterError, 400, with the same `msg`).
"""

from __future__ import annotations

import typing

from aiohttp import web
from multidict import MultiDict

from .openapi import Param, param
from .params import DEFAULT_PAGE_SIZE, MAX_ID, MAX_PAGE, MAX_PAGE_SIZE, Params, read_params

T = typing.TypeVar("T")
S = typing.TypeVar("S", bound="Spec")


class Field(typing.Generic[T]):
    """One parameter: its documentation (`doc`) and how it is read from `Params` (`parse`)."""

    name = ""

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


class Int(Field[int]):
    """An integer in [minimum, maximum] (None: unbounded): required, unless it has a `default`.

    `schema` adds to its documented schema (an `enum` replaces the documented bounds).
    """

    def __init__(
        self,
        description: str = "",
        *,
        minimum: int | None = 1,
        maximum: int | None = MAX_ID,
        default: int | None = None,
        location: str = "body",
        **schema: typing.Any,
    ) -> None:
        self.description, self.minimum, self.maximum, self.location = description, minimum, maximum, location
        self.default, self.schema = default, schema

    def doc(self) -> Param:
        bounds = {} if "enum" in self.schema else {"minimum": self.minimum, "maximum": self.maximum}
        extra = {k: v for k, v in {**bounds, **self.schema}.items() if v is not None}
        return param(
            self.name, "integer", self.description, required=self.default is None, location=self.location, **extra
        )

    def parse(self, params: Params) -> int:
        value = params.integer(
            self.name,
            required=self.default is None,
            default=self.default,
            min_value=self.minimum,
            max_value=self.maximum,
        )
        if value is None:  # required, or with a default: never None
            raise AssertionError(self.name)
        return value


class Text(Field[str]):
    """Trimmed text, "" when absent and not required; `max_length` characters at most.

    `schema` adds to its documented schema (a `pattern` the handler checks, say).
    """

    def __init__(
        self,
        description: str = "",
        *,
        required: bool = False,
        max_length: int | None = None,
        location: str = "body",
        **schema: typing.Any,
    ) -> None:
        self.description, self.required, self.max_length, self.location = description, required, max_length, location
        self.schema = schema

    def doc(self) -> Param:
        extra = {} if self.max_length is None else {"maxLength": self.max_length}
        return param(
            self.name, "string", self.description, required=self.required, location=self.location,
            **extra, **self.schema,
        )

    def parse(self, params: Params) -> str:
        return params.text(self.name, required=self.required, max_len=self.max_length)


class Spec:
    """A set of fields; `read`/`take` validate and give an instance whose attributes are the values."""

    def __init__(self, values: dict[str, typing.Any]) -> None:
        self.values = values

    @classmethod
    def fields(cls) -> list[Field[typing.Any]]:
        found: dict[str, Field[typing.Any]] = {}
        for klass in reversed(cls.__mro__):
            found.update({k: v for k, v in vars(klass).items() if isinstance(v, Field)})
        return list(found.values())

    @classmethod
    def params(cls) -> tuple[Param, ...]:
        """The OpenAPI declarations (what `@describe(params=...)` takes)."""
        return tuple(f.doc() for f in cls.fields())

    @classmethod
    def parse(cls: type[S], params: Params) -> S:
        return cls({f.name: f.parse(params) for f in cls.fields()})

    @classmethod
    async def read(cls: type[S], request: web.Request) -> S:
        """The request's parameters checked (ParameterError, 400, as `Params` answers)."""
        return cls.parse(await read_params(request))

    @classmethod
    def take(cls: type[S], values: typing.Mapping[str, str]) -> S:
        """An already-parsed mapping checked the same way."""
        return cls.parse(Params(MultiDict(values)))


class Paged(Spec):
    """`page` >= 1 and 1 <= `size` <= 100 (default 30), from the query or the body."""

    page = Int(f"页码，默认 1，最大 {MAX_PAGE}", maximum=MAX_PAGE, default=1, location="query")
    size = Int(
        f"每页条数，默认 30，最大 {MAX_PAGE_SIZE}", maximum=MAX_PAGE_SIZE, default=DEFAULT_PAGE_SIZE, location="query"
    )


class PathId(Int):
    """An id from the URL (a bigint)."""

    def __init__(self, description: str = "", **schema: typing.Any) -> None:
        super().__init__(description, location="path")
        self.schema = schema

    def doc(self) -> Param:
        return param(self.name, "integer", self.description, required=True, location="path", **self.schema)
