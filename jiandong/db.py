"""PostgreSQL: the aiopg pool context, query helpers and the numbered SQL migrations."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import typing
from pathlib import Path

import aiopg
import psycopg2
import psycopg2.extras
from aiohttp import web

from .keys import pg_key, settings_key

logger = logging.getLogger(__name__)

SQL_DIR = Path(__file__).resolve().parent.parent / "sql"
MIGRATION_FILE = re.compile(r"^(\d{3})_[a-z0-9_]+\.sql$")
# Any constant works; every process that migrates takes the same session lock.
MIGRATION_LOCK = 7_318_004_211

Row = dict[str, typing.Any]
# Positional (%s) or named (%(name)s) parameters.
Args = typing.Sequence[typing.Any] | typing.Mapping[str, typing.Any]
DictCursor = psycopg2.extras.RealDictCursor


def connect_options(timezone: str) -> dict[str, str]:
    # Connections run in the club's time zone, so timestamps read back are local (formats.fmt_time).
    return {"options": f"-c TimeZone={timezone}", "application_name": "jiandong"}


async def pg_ctx(app: web.Application) -> typing.AsyncIterator[None]:
    settings = app[settings_key]
    await asyncio.to_thread(migrate, settings.database_url)
    pool = await aiopg.create_pool(
        settings.database_url,
        minsize=1,
        maxsize=settings.db_pool_size,
        timeout=30,
        **connect_options(settings.timezone),
    )
    app[pg_key] = pool
    yield
    pool.close()
    await pool.wait_closed()


async def fetchone(pool: aiopg.Pool, sql: str, args: Args = ()) -> Row | None:
    async with pool.acquire() as conn, conn.cursor(cursor_factory=DictCursor) as cur:
        await cur.execute(sql, args)
        return await cur.fetchone()


async def fetchall(pool: aiopg.Pool, sql: str, args: Args = ()) -> list[Row]:
    async with pool.acquire() as conn, conn.cursor(cursor_factory=DictCursor) as cur:
        await cur.execute(sql, args)
        return await cur.fetchall()


async def fetchval(pool: aiopg.Pool, sql: str, args: Args = ()) -> typing.Any:
    async with pool.acquire() as conn, conn.cursor() as cur:
        await cur.execute(sql, args)
        row = await cur.fetchone()
        return row[0] if row else None


async def execute(pool: aiopg.Pool, sql: str, args: Args = ()) -> int:
    """Run one statement; the number of rows it touched."""
    async with pool.acquire() as conn, conn.cursor() as cur:
        await cur.execute(sql, args)
        return cur.rowcount


@contextlib.asynccontextmanager
async def transaction(pool: aiopg.Pool) -> typing.AsyncIterator[aiopg.Cursor]:
    """A dict cursor inside BEGIN ... COMMIT (ROLLBACK when the block raises)."""
    async with pool.acquire() as conn, conn.cursor(cursor_factory=DictCursor) as cur:
        async with cur.begin():
            yield cur


def is_unique_violation(exc: BaseException, constraint: str | None = None) -> bool:
    if not isinstance(exc, psycopg2.errors.UniqueViolation):
        return False
    return constraint is None or getattr(exc.diag, "constraint_name", None) == constraint


def migration_files(sql_dir: Path = SQL_DIR) -> list[tuple[int, str, Path]]:
    found = []
    for path in sorted(sql_dir.iterdir()):
        match = MIGRATION_FILE.match(path.name)
        if match:
            found.append((int(match.group(1)), path.stem, path))
    versions = [v for v, _, _ in found]
    if len(versions) != len(set(versions)):
        raise RuntimeError(f"two migrations share a number in {sql_dir}")
    return found


def migrate(dsn: str, sql_dir: Path = SQL_DIR) -> list[str]:
    """Apply the migrations not yet recorded, each in its own transaction; the names applied.

    Safe when several processes start at once: they queue on one advisory lock and each
    re-reads what is applied after getting it.
    """
    applied_now = []
    conn = psycopg2.connect(dsn)
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK,))
            try:
                cur.execute(
                    "CREATE TABLE IF NOT EXISTS schema_migrations ("
                    " version integer PRIMARY KEY, name text NOT NULL,"
                    " applied_at timestamptz NOT NULL DEFAULT now())"
                )
                cur.execute("SELECT version FROM schema_migrations")
                done = {row[0] for row in cur.fetchall()}
                for version, name, path in migration_files(sql_dir):
                    if version in done:
                        continue
                    with conn.cursor() as step:
                        step.execute("BEGIN")
                        try:
                            step.execute(path.read_text(encoding="utf-8"))
                            step.execute(
                                "INSERT INTO schema_migrations (version, name) VALUES (%s, %s)", (version, name)
                            )
                            step.execute("COMMIT")
                        except Exception:
                            step.execute("ROLLBACK")
                            raise
                    logger.info("applied migration %s", name)
                    applied_now.append(name)
            finally:
                cur.execute("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK,))
    finally:
        conn.close()
    return applied_now
