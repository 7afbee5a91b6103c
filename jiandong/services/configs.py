"""Config values (agreements, titles, ICP, copyright) as the club edits them; rich text sanitised on save."""

from __future__ import annotations

import re
import typing

from aiohttp import web

from .. import db
from ..keys import content_cache_key, pg_key
from .editing import Invalid, ListQuery, NotFound, clean_html, fetch_page, order_clause, search_clause

CODE_RE = re.compile(r"[A-Za-z][A-Za-z0-9_.-]{0,99}")
SORTS = {"code": "code", "name": "name", "updated_at": "updated_at"}
COLUMNS = "code, name, value, rich, updated_at"


async def list_configs(pool: typing.Any, query: ListQuery) -> tuple[list[db.Row], int]:
    where, args = search_clause(query, "code", "name", "value")
    return await fetch_page(pool, COLUMNS, "config_values", where, args, order_clause(SORTS, query, "code", "code"),
                            query)


async def get_config(pool: typing.Any, code: str) -> db.Row | None:
    return await db.fetchone(pool, f"SELECT {COLUMNS} FROM config_values WHERE code = %s", (code,))


def _value(value: str, rich: bool) -> str:
    return clean_html(value) if rich else value.strip()


async def create_config(app: web.Application, code: str, name: str, value: str, rich: bool) -> None:
    if not CODE_RE.fullmatch(code):
        raise Invalid("编码须以字母开头，只含字母、数字和 _ . -", "code")
    row = await db.fetchone(
        app[pg_key],
        "INSERT INTO config_values (code, name, value, rich) VALUES (%s, %s, %s, %s)"
        " ON CONFLICT (code) DO NOTHING RETURNING code",
        (code, name, _value(value, rich), rich),
    )
    if row is None:
        raise Invalid("该编码已存在", "code")
    await changed(app)


async def update_config(app: web.Application, code: str, name: str, value: str) -> None:
    """A new value for an existing code; rich codes keep only safe HTML."""
    row = await db.fetchone(
        app[pg_key],
        "UPDATE config_values SET name = %(name)s, value = CASE WHEN rich THEN %(rich)s ELSE %(plain)s END,"
        " updated_at = now() WHERE code = %(code)s RETURNING code",
        {"code": code, "name": name, "rich": _value(value, True), "plain": _value(value, False)},
    )
    if row is None:
        raise NotFound("config_values")
    await changed(app)


async def changed(app: web.Application) -> None:
    await app[content_cache_key].invalidate("config")
