"""The audit log: every change made in the console (who, when, what, before and after, client IP).

Append-only: this module only inserts and reads, and the database refuses UPDATE and DELETE of its
rows (a trigger, sql/009). A change and its entry are written in one transaction where the service
owns one (`record(cur, ...)`); `record_now(pool, ...)` writes an entry of its own after a change.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import decimal
import typing

import aiopg

from ..lib import encoding
from ..store import db
from .editing import ListQuery, fetch_page, like_pattern

# Values never written to the log, whatever their section calls them.
SECRET_FIELDS = frozenset({"password", "password_hash", "new", "current", "confirm", "csrf_token", "plug_flow"})


@dataclasses.dataclass(frozen=True)
class Actor:
    """Who makes a change: the staff account (id and name at the time) and the client's IP."""

    admin_id: int | None
    name: str
    ip: str


INSERT_SQL = """
    INSERT INTO audit_log (admin_id, admin_name, client_ip, action, target, summary, before, after)
    VALUES (%(admin_id)s, %(name)s, %(ip)s, %(action)s, %(target)s, %(summary)s, %(before)s::jsonb, %(after)s::jsonb)
"""


def _plain(value: typing.Any) -> typing.Any:
    """A value as JSON can hold it: times as ISO text, decimals as text, files by name, secrets masked."""
    if isinstance(value, dict):
        return {str(k): ("***" if k in SECRET_FIELDS else _plain(v)) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_plain(v) for v in value]
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, decimal.Decimal | dt.timedelta):
        return str(value)
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def _args(actor: Actor, action: str, target: str, summary: str, before: typing.Any, after: typing.Any
          ) -> dict[str, typing.Any]:
    return {
        "admin_id": actor.admin_id, "name": actor.name, "ip": actor.ip, "action": action, "target": target,
        "summary": summary[:500],
        "before": None if before is None else encoding.dumps_str(_plain(before)),
        "after": None if after is None else encoding.dumps_str(_plain(after)),
    }


async def record(cur: aiopg.Cursor, actor: Actor, action: str, target: str = "", summary: str = "",
                 before: typing.Any = None, after: typing.Any = None) -> None:
    """An entry in the caller's transaction: it exists exactly when the change does."""
    await cur.execute(INSERT_SQL, _args(actor, action, target, summary, before, after))


async def record_now(pool: aiopg.Pool, actor: Actor, action: str, target: str = "", summary: str = "",
                     before: typing.Any = None, after: typing.Any = None) -> None:
    """An entry of its own, for a change some other service has just made."""
    await db.execute(pool, INSERT_SQL, _args(actor, action, target, summary, before, after))


# Where the name of an entry's target ("<kind>:<id>") is read: its table and name column. Entries keep ids
# (a name changes, an id does not); the log shows and searches the names of today.
TARGET_NAMES = {
    "user": ("users", "username"), "order": ("orders", "order_no"), "admin": ("admins", "username"),
    "room": ("lives", "title"), "lives": ("lives", "title"), "competitions": ("competitions", "title"),
    "teams": ("teams", "name"), "players": ("players", "cn_name"), "videos": ("videos", "title"),
    "banners": ("banners", "title"), "products": ("businesses", "title"), "campaign": ("notice_campaigns", "title"),
}
# One subquery per kind (the table and column names are ours, never input): the targets whose name matches.
NAMED_TARGETS_SQL = " UNION ALL ".join(
    f"SELECT '{kind}:' || id FROM {table} WHERE {column} ILIKE %(s)s" for kind, (table, column) in TARGET_NAMES.items())


async def target_names(pool: aiopg.Pool, targets: typing.Iterable[str]) -> dict[str, str]:
    """The current name of each target that has one ({"user:8": "捣乱的小号"}); one query per kind present."""
    ids: dict[str, set[int]] = {}
    for target in targets:
        kind, _, ident = target.partition(":")
        if kind in TARGET_NAMES and ident.isdigit() and len(ident) < 19:
            ids.setdefault(kind, set()).add(int(ident))
    names: dict[str, str] = {}
    for kind, wanted in ids.items():
        table, column = TARGET_NAMES[kind]
        for row in await db.fetchall(pool, f"SELECT id, {column} AS name FROM {table} WHERE id = ANY(%s)",
                                     (sorted(wanted),)):
            if row["name"]:
                names[f"{kind}:{row['id']}"] = row["name"]
    return names


async def search(pool: aiopg.Pool, query: ListQuery, action: str = "", date_from: dt.date | None = None,
                 date_to: dt.date | None = None, actions: typing.Sequence[str] = ()) -> tuple[list[db.Row], int]:
    """Entries newest first; `query.search` matches the staff name, the target or its name (a member's, an
    order's number, a match's title ...), the summary, the IP or the changed values; `action` is a prefix of
    the action (e.g. "refund") or, with `actions`, those actions too (the codes whose names match what staff
    typed); the dates are the club's days, both included."""
    clauses: list[str] = []
    args: dict[str, typing.Any] = {}
    if query.search:
        clauses.append("(admin_name ILIKE %(s)s OR target ILIKE %(s)s OR summary ILIKE %(s)s OR client_ip ILIKE %(s)s"
                       " OR before::text ILIKE %(s)s OR after::text ILIKE %(s)s"
                       f" OR target IN ({NAMED_TARGETS_SQL}))")
        args["s"] = like_pattern(query.search)
    if action:
        clauses.append("(action LIKE %(action)s OR action = ANY(%(actions)s))")
        args["action"] = action.replace("%", "").replace("_", "\\_") + "%"
        args["actions"] = list(actions)
    # Connections run in the club's time zone: a date is the club's day.
    if date_from is not None:
        clauses.append("at >= %(date_from)s::date")
        args["date_from"] = date_from
    if date_to is not None:
        clauses.append("at < %(date_to)s::date + 1")
        args["date_to"] = date_to
    return await fetch_page(pool, "id, at, admin_id, admin_name, client_ip, action, target, summary, before, after",
                            "audit_log", " AND ".join(clauses), args, "at DESC, id DESC", query)


async def for_target(pool: aiopg.Pool, target: str, limit: int = 50) -> list[db.Row]:
    return await db.fetchall(pool, "SELECT id, at, admin_name, client_ip, action, summary, before, after"
                                   " FROM audit_log WHERE target = %s ORDER BY id DESC LIMIT %s", (target, limit))
