"""What the console's forms type in, read or checked the same in every section: ids, links, amounts in yuan."""

from __future__ import annotations

import datetime as dt
import decimal
import typing

import wtforms
from aiohttp import web

from .errors import PageError

# Ids are PostgreSQL bigints: a longer number names nothing (and would not fit).
ID_DIGITS = 18


def path_id(request: web.Request, name: str = "id", missing: str | None = None) -> int:
    """The id a console URL names (its `{name:[0-9]+}` part); raises a 404 page saying `missing` when it cannot be
    a row's (0, or past a bigint)."""
    raw = request.match_info[name]
    if len(raw) > ID_DIGITS or int(raw) < 1:
        raise PageError(404, missing)
    return int(raw)


def query_date(query: typing.Mapping[str, str], key: str, name: str,
               problems: list[str] | None = None) -> dt.date | None:
    """A list filter's date from the query string (YYYY-MM-DD, a day of the club's): None when empty or
    malformed; a malformed one is said in `problems` (as 「name」…已忽略) when the page lists them."""
    raw = query.get(key, "").strip()
    if not raw:
        return None
    try:
        return dt.date.fromisoformat(raw)
    except ValueError:
        if problems is not None:
            problems.append(f"{name}「{raw[:20]}」不是有效的日期（应为 YYYY-MM-DD），已忽略")
        return None


def optional_int(value: typing.Any) -> int | None:
    """A select's value as an id; None for the empty choice."""
    return int(value) if value not in ("", None, "None") else None


def url_rule(form: wtforms.Form, field: wtforms.Field) -> None:
    """A link field holds an http(s) URL or a path on this site (or nothing)."""
    if field.data and not field.data.startswith(("http://", "https://", "/")):
        raise wtforms.ValidationError("须是 http(s):// 开头的地址或以 / 开头的站内路径")


def parse_yuan(raw: str) -> int | None:
    """Yuan as typed ("199", "199.5", "199.50") in fen; None for empty or malformed (at most 2 decimals)."""
    try:
        value = decimal.Decimal(raw.strip())
    except decimal.InvalidOperation:
        return None
    if not value.is_finite() or value < 0 or value > 10_000_000 or value.as_tuple().exponent < -2:
        return None
    return int(value * 100)
