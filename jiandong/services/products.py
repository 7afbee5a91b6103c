"""The membership product (会员业务) as the club edits it: price in fen, years, on sale or not."""

from __future__ import annotations

import typing

from aiohttp import web

from ..keys import pg_key
from ..store import db
from .editing import (
    ListQuery,
    clean_html,
    delete_unless_used,
    fetch_page,
    insert_row,
    order_clause,
    search_clause,
    set_status,
    update_row,
)

FIELDS = ("title", "price", "cost", "valid_time", "amount", "content", "remark", "sort")
SORTS = {"sort": "b.sort", "title": "b.title", "price": "b.price", "id": "b.id"}
COLUMNS = "b.id, b.title, b.price, b.cost, b.valid_time, b.amount, b.content, b.remark, b.sort, b.status, b.updated_at"
USES = [("SELECT count(*) FROM orders WHERE business_id = %(id)s", "订单")]


async def list_products(pool: typing.Any, query: ListQuery) -> tuple[list[db.Row], int]:
    where, args = search_clause(query, "b.title", "b.remark")
    return await fetch_page(pool, COLUMNS, "businesses b", where, args, order_clause(SORTS, query, "sort", "b.id"),
                            query)


async def get_product(pool: typing.Any, product_id: int) -> db.Row | None:
    return await db.fetchone(pool, f"SELECT {COLUMNS} FROM businesses b WHERE b.id = %s", (product_id,))


def _values(values: dict[str, typing.Any]) -> dict[str, typing.Any]:
    out = {k: values[k] for k in FIELDS if k in values}
    if "content" in out:
        out["content"] = clean_html(out["content"])
    return out


# business/joinus and order/commit read products fresh: no cache to drop.
async def create_product(app: web.Application, values: dict[str, typing.Any], *, enabled: bool = False) -> int:
    async with db.transaction(app[pg_key]) as cur:
        return await insert_row(cur, "businesses", {**_values(values), "status": int(enabled)})


async def update_product(app: web.Application, product_id: int, values: dict[str, typing.Any]) -> None:
    async with db.transaction(app[pg_key]) as cur:
        await update_row(cur, "businesses", product_id, _values(values))


async def enable_product(app: web.Application, product_id: int, enabled: bool) -> None:
    await set_status(app[pg_key], "businesses", product_id, int(enabled))


async def delete_product(app: web.Application, product_id: int) -> None:
    """A product nobody ordered can go; one with orders stays (their snapshots name it) and is taken off sale."""
    await delete_unless_used(app[pg_key], "businesses", product_id, USES, instead="只能停售")
