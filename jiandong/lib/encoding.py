"""The one place that turns values into JSON and back (orjson), for HTTP and websockets alike."""

from __future__ import annotations

import typing

import orjson

# Non-str dict keys (e.g. ids) are common in our payloads; naive datetimes never reach here.
_OPTIONS = orjson.OPT_NON_STR_KEYS

JSONDecodeError = orjson.JSONDecodeError


def dumps(value: typing.Any) -> bytes:
    return orjson.dumps(value, option=_OPTIONS)


def dumps_str(value: typing.Any) -> str:
    return orjson.dumps(value, option=_OPTIONS).decode()


def loads(data: bytes | bytearray | memoryview | str) -> typing.Any:
    return orjson.loads(data)
