"""What the console's content services share: list pages, row writes, rich text, and the errors they raise."""

from __future__ import annotations

import contextlib
import dataclasses
import typing

import aiopg
import nh3

from ..store import db

# Tags and attributes rich text (match descriptions, agreements, product content) may keep.
RICH_TAGS = {
    "p", "br", "strong", "b", "em", "i", "u", "s", "h2", "h3", "h4", "ul", "ol", "li", "blockquote", "a",
    "img", "table", "thead", "tbody", "tr", "th", "td", "span", "div", "hr",
}
RICH_ATTRIBUTES = {"a": {"href", "title"}, "img": {"src", "alt", "width", "height"}, "td": {"colspan", "rowspan"},
                   "th": {"colspan", "rowspan"}}


class NotFound(LookupError):
    """The row to change does not exist (any more)."""


class InUse(ValueError):
    """The row cannot be deleted: something refers to it. The message says what, for the page."""


class Invalid(ValueError):
    """The change breaks a rule the form could not check; the message is shown next to `field`."""

    def __init__(self, message: str, field: str = "") -> None:
        super().__init__(message)
        self.field = field


class Problems(Invalid):
    """Several rules broken at once, each an Invalid: a refused save names them all, not only the first."""

    def __init__(self, problems: typing.Sequence[Invalid]) -> None:
        super().__init__("；".join(map(str, problems)), problems[0].field if problems else "")
        self.problems = list(problems)


def each(problem: Invalid) -> list[Invalid]:
    """The problems an Invalid stands for: its own list, or itself."""
    return problem.problems if isinstance(problem, Problems) else [problem]


@contextlib.asynccontextmanager
async def written(pool: aiopg.Pool, unique: str = "", message: str = "", field: str = ""
                  ) -> typing.AsyncIterator[aiopg.Cursor]:
    """A transaction whose breach of the unique constraint `unique` becomes Invalid(message, field)."""
    try:
        async with db.transaction(pool) as cur:
            yield cur
    except Exception as exc:
        if unique and db.is_unique_violation(exc, unique):
            raise Invalid(message, field) from None
        raise


def clean_html(value: str) -> str:
    """Rich text as stored: sanitised with nh3 (scripts, event handlers and javascript: links dropped)."""
    return nh3.clean(value, tags=RICH_TAGS, attributes=RICH_ATTRIBUTES, link_rel="noopener noreferrer").strip()


@dataclasses.dataclass(frozen=True)
class ListQuery:
    """A console list: search text, sort key (one of the section's), direction, page."""

    search: str = ""
    sort: str = ""
    desc: bool = True
    page: int = 1
    size: int = 20


async def fetch_page(
    pool: aiopg.Pool,
    columns: str,
    source: str,
    where: str,
    args: dict[str, typing.Any],
    order_by: str,
    query: ListQuery,
) -> tuple[list[db.Row], int]:
    """One page of `SELECT columns FROM source WHERE where ORDER BY order_by`, and the total (a window count)."""
    sql = (f"SELECT {columns}, count(*) OVER () AS total_rows FROM {source} {where and 'WHERE ' + where}"
           f" ORDER BY {order_by} LIMIT %(limit)s OFFSET %(offset)s")
    rows = await db.fetchall(pool, sql, {**args, "limit": query.size, "offset": (query.page - 1) * query.size})
    if rows or query.page == 1:
        return rows, rows[0]["total_rows"] if rows else 0
    # A page past the end has no row to carry the window count: the total is counted on its own, so the
    # page says how many there are (and where the last page is) rather than "0".
    total = await db.fetchval(pool, f"SELECT count(*) FROM {source} {where and 'WHERE ' + where}", args)
    return rows, int(total or 0)


def search_clause(query: ListQuery, *columns: str) -> tuple[str, dict[str, typing.Any]]:
    """The WHERE of a searched list: any of `columns` contains the text (case-insensitive)."""
    if not query.search:
        return "", {}
    return "(" + " OR ".join(f"{c}::text ILIKE %(search)s" for c in columns) + ")", {
        "search": like_pattern(query.search)}


def order_clause(sorts: dict[str, str], query: ListQuery, default: str, tiebreak: str = "id") -> str:
    """The ORDER BY of a list: the chosen column (only those in `sorts`), then id, for a stable order."""
    column = sorts.get(query.sort) or sorts[default]
    direction = "DESC" if query.desc else "ASC"
    return f"{column} {direction} NULLS LAST, {tiebreak} {direction}"


def like_pattern(term: str) -> str:
    escaped = term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


async def insert_row(cur: aiopg.Cursor, table: str, values: dict[str, typing.Any]) -> int:
    """INSERT the values (column names come from the service's own field list, never from a request)."""
    columns = ", ".join(values)
    marks = ", ".join(f"%({name})s" for name in values)
    await cur.execute(f"INSERT INTO {table} ({columns}) VALUES ({marks}) RETURNING id", values)
    return (await cur.fetchone())["id"]


async def update_row(cur: aiopg.Cursor, table: str, row_id: int, values: dict[str, typing.Any],
                     touch: bool = True) -> None:
    assignments = ", ".join(f"{name} = %({name})s" for name in values)
    if touch:
        assignments += ", updated_at = now()"
    await cur.execute(f"UPDATE {table} SET {assignments} WHERE id = %(id)s", {**values, "id": row_id})
    if cur.rowcount != 1:
        raise NotFound(table)


async def set_status(pool: aiopg.Pool, table: str, row_id: int, status: int, touch: bool = True) -> None:
    touched = ", updated_at = now()" if touch else ""
    if await db.execute(pool, f"UPDATE {table} SET status = %s{touched} WHERE id = %s", (status, row_id)) != 1:
        raise NotFound(table)


async def delete_unless_used(pool: aiopg.Pool, table: str, row_id: int,
                             uses: typing.Sequence[tuple[str, str]], instead: str = "只能下架") -> None:
    """Delete the row unless one of `uses` (SQL counting references to %(id)s, what it is called) finds any.

    Checked and deleted in one transaction with the row locked, so a reference added meanwhile
    waits for the delete or sees the row gone.
    """
    async with db.transaction(pool) as cur:
        await cur.execute(f"SELECT id FROM {table} WHERE id = %(id)s FOR UPDATE", {"id": row_id})
        if await cur.fetchone() is None:
            raise NotFound(table)
        found = []
        for count_sql, label in uses:
            await cur.execute(count_sql, {"id": row_id})
            count = (await cur.fetchone())["count"]
            if count:
                found.append(f"{count} 个{label}")
        if found:
            raise InUse(f"有 {'、'.join(found)}引用它，不能删除，{instead}")
        await cur.execute(f"DELETE FROM {table} WHERE id = %(id)s", {"id": row_id})
