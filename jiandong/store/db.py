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

from ..keys import pg_key, settings_key

logger = logging.getLogger(__name__)

SQL_DIR = Path(__file__).resolve().parents[2] / "sql"
MIGRATION_FILE = re.compile(r"^(\d{3})_[a-z0-9_]+\.sql$")
# Any constant works; every process that migrates takes the same session lock.
MIGRATION_LOCK = 7_318_004_211
SEARCH_INDEXES_FILE = "search_indexes.sql"

Row = dict[str, typing.Any]
# Positional (%s) or named (%(name)s) parameters.
Args = typing.Sequence[typing.Any] | typing.Mapping[str, typing.Any]
DictCursor = psycopg2.extras.RealDictCursor


def connect_options(timezone: str, timeout: float | None = None) -> dict[str, str]:
    """libpq options: the club's time zone (timestamps read back are local, see formats.fmt_time),
    and with `timeout` (seconds) a server-side statement timeout one second past it.

    The client gives up on a statement after `timeout` (aiopg's timeout) and drops the connection,
    which a frozen server needs; the server-side one is only a backstop for a statement that keeps
    running on a live server after its client gave up. It must not fire first: aiopg turns the
    server's QueryCanceledError into a CancelledError of the request.
    """
    options = f"-c TimeZone={timezone}"
    if timeout is not None:
        options += f" -c statement_timeout={int((timeout + 1) * 1000)}"
    return {"options": options, "application_name": "jiandong"}


class DatabaseTimeout(TimeoutError):
    """PostgreSQL did not answer in time: no free connection, no connection, or no statement result."""


async def pg_ctx(app: web.Application) -> typing.AsyncIterator[None]:
    settings = app[settings_key]
    await asyncio.to_thread(migrate, settings.database_url)
    # `timeout` bounds aiopg's every connect and statement (a timed-out connection is closed).
    pool = await aiopg.create_pool(
        settings.database_url,
        minsize=1,
        maxsize=settings.db_pool_size,
        timeout=settings.db_timeout,
        **connect_options(settings.timezone, settings.db_timeout),
    )
    app[pg_key] = pool
    yield
    pool.close()
    await pool.wait_closed()


@contextlib.asynccontextmanager
async def connection(pool: aiopg.Pool) -> typing.AsyncIterator[aiopg.Connection]:
    """A pooled connection, waited for at most the pool's timeout; DatabaseTimeout when PostgreSQL is too slow.

    The wait covers opening a new connection too: against a frozen server that is what hangs.
    """
    acquiring = asyncio.ensure_future(pool.acquire())
    try:
        done, _ = await asyncio.wait({acquiring}, timeout=pool.timeout)
    except asyncio.CancelledError:
        _abandon(pool, acquiring)
        raise
    if not done:
        _abandon(pool, acquiring)
        raise DatabaseTimeout(f"no PostgreSQL connection within {pool.timeout} s")
    conn = acquiring.result()
    try:
        yield conn
    except TimeoutError as exc:
        # aiopg closes a connection whose connect or statement timed out: that is PostgreSQL's delay.
        if conn.closed and not isinstance(exc, DatabaseTimeout):
            raise DatabaseTimeout(f"no answer from PostgreSQL within {pool.timeout} s") from exc
        raise
    finally:
        await pool.release(conn)


def _abandon(pool: aiopg.Pool, acquiring: asyncio.Future[aiopg.Connection]) -> None:
    """Stop waiting for a connection; one that arrives anyway goes back to the pool, not astray."""

    def give_back(future: asyncio.Future[aiopg.Connection]) -> None:
        if not future.cancelled() and future.exception() is None:
            pool.release(future.result())

    acquiring.add_done_callback(give_back)
    acquiring.cancel()


async def fetchone(pool: aiopg.Pool, sql: str, args: Args = ()) -> Row | None:
    async with connection(pool) as conn, conn.cursor(cursor_factory=DictCursor) as cur:
        await cur.execute(sql, args)
        return await cur.fetchone()


async def fetchall(pool: aiopg.Pool, sql: str, args: Args = ()) -> list[Row]:
    async with connection(pool) as conn, conn.cursor(cursor_factory=DictCursor) as cur:
        await cur.execute(sql, args)
        return await cur.fetchall()


async def fetchval(pool: aiopg.Pool, sql: str, args: Args = ()) -> typing.Any:
    async with connection(pool) as conn, conn.cursor() as cur:
        await cur.execute(sql, args)
        row = await cur.fetchone()
        return row[0] if row else None


async def execute(pool: aiopg.Pool, sql: str, args: Args = ()) -> int:
    """Run one statement; the number of rows it touched."""
    async with connection(pool) as conn, conn.cursor() as cur:
        await cur.execute(sql, args)
        return cur.rowcount


@contextlib.asynccontextmanager
async def transaction(pool: aiopg.Pool) -> typing.AsyncIterator[aiopg.Cursor]:
    """A dict cursor inside BEGIN ... COMMIT (ROLLBACK when the block raises)."""
    async with connection(pool) as conn, conn.cursor(cursor_factory=DictCursor) as cur:
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
                if (sql_dir / SEARCH_INDEXES_FILE).exists():
                    cur.execute((sql_dir / SEARCH_INDEXES_FILE).read_text(encoding="utf-8"))
            finally:
                cur.execute("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK,))
    finally:
        conn.close()
    return applied_now


# The embedded PostgreSQL (pgserver) is built without the contrib modules: nothing there to act on.
EMBEDDED_SEARCH = ("search scans every row on the embedded PostgreSQL, which has no pg_trgm (fine for trying the "
                   "server out); a PostgreSQL with pg_trgm (JIANDONG_DATABASE_URL) indexes it")


def search_advice(dsn: str, *, embedded: bool = False) -> str | None:
    """What to do so that search uses its trigram indexes, or None when it does (after migrate).

    On the embedded PostgreSQL (`embedded`), a note that search scans rows there, with nothing to do.
    """
    conn = psycopg2.connect(dsn)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm'),"
                        " EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'pg_trgm'),"
                        " current_database()")
            installed, available, database = cur.fetchone()
    finally:
        conn.close()
    if installed:
        return None
    if embedded:
        return EMBEDDED_SEARCH
    then = (f'as a superuser: psql -d {database} -c "CREATE EXTENSION pg_trgm", then restart the server '
            "(or run python server.py migrate), which builds the search indexes")
    if available:
        return f"search scans every row: pg_trgm is not installed in this database. To index it, {then}"
    return ("search scans every row: this PostgreSQL has no pg_trgm (fine for a demo). To index it, install "
            f"PostgreSQL's contrib modules (Debian: apt-get install postgresql-contrib), then {then}")
