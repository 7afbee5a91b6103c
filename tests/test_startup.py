"""python server.py as a newcomer starts it: the start-up log, and a second start on ports or a var dir in use."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp
import psycopg2
import pytest

from jiandong.ops.banner import banner, owner_exists
from jiandong.settings import SettingsError, load_settings
from jiandong.store.db import migrate
from tests.fakes.wechatpay_v3 import FakeWeChatPayV3
from tests.helpers.admin import add_admin
from tests.helpers.realtime import frame_of, send
from tests.helpers.servers import ROOT, free_port, server_env

pytestmark = pytest.mark.usefixtures("chat_rooms")

# 2026-11-30T18:51:56.518+08:00 INFO jiandong: ...
LINE_START = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d\d:\d\d (DEBUG|INFO|WARNING|ERROR|CRITICAL) ")


class Server:
    """server.py started by a test, its log in a file; stopped at the test's end if still running."""

    def __init__(self, env: dict[str, str], log: Path, *args: str) -> None:
        self.port, self.chat_port = free_port(), free_port()
        self.log_path = log
        self.args = ["--port", str(self.port), "--chat-port", str(self.chat_port), *args]
        with log.open("wb") as out:
            self.proc = subprocess.Popen([sys.executable, "server.py", *self.args], cwd=ROOT, env=env,
                                         stdout=out, stderr=subprocess.STDOUT)
        self.url = f"http://127.0.0.1:{self.port}"

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8")

    async def ready(self, session: aiohttp.ClientSession, marker: str = "ready:") -> None:
        """Wait until it answers and has logged `marker` (the banner)."""
        for _ in range(600):
            assert self.proc.poll() is None, f"the server exited:\n{self.log()}"
            if marker in self.log():
                async with session.get(f"{self.url}/api/v1/openapi.json") as resp:
                    assert resp.status == 200
                    return
            await asyncio.sleep(0.1)
        raise AssertionError(f"the server did not start:\n{self.log()}")

    def stop(self) -> None:
        # SIGTERM first: a server on embedded PostgreSQL and Redis stops them on its way out, where
        # SIGKILL would leave them running.
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.proc.wait()


@pytest.fixture
async def started():
    servers: list[Server] = []
    session = aiohttp.ClientSession()

    def start(env: dict[str, str], log: Path, *args: str) -> Server:
        servers.append(Server(env, log, *args))
        return servers[-1]

    yield start, session
    await session.close()
    for server in servers:
        await asyncio.to_thread(server.stop)


async def refused(env: dict[str, str], *args: str) -> str:
    """Start server.py again; it must stop at once with one line, and exit status 1: that line."""
    result = await asyncio.to_thread(subprocess.run, [sys.executable, "server.py", *args], cwd=ROOT, env=env,
                                     capture_output=True, text=True, timeout=60)
    assert result.returncode == 1 and result.stdout == "", result
    (line,) = result.stderr.splitlines()
    return line


def port_taken(host: str, port: int) -> str:
    return (f"jiandong: cannot listen on {host} port {port}: Address already in use (is this server running"
            " already? choose other ports with --port and --chat-port)")


async def still_serves(server: Server, session: aiohttp.ClientSession, requests: int = 20, *,
                       live_room: bool = True) -> None:
    """The first server answers: a login, then `requests` calls with its token, and a chat message (taken in
    a live's room; refused with 30005 where the database has no lives yet, `live_room=False`)."""
    async with session.post(f"{server.url}/api/v1/token/user", data={"code": "still-here"}) as resp:
        assert resp.status == 200
        token = (await resp.json())["token"]
    statuses = []
    for _ in range(requests):
        async with session.get(f"{server.url}/api/v1/user/info", headers={"token": token}) as resp:
            statuses.append(resp.status)
    assert statuses == [200] * requests
    async with session.ws_connect(f"ws://127.0.0.1:{server.chat_port}/") as ws:
        await send(ws, type="LOGIN", room_id=7, token=token)
        await frame_of(ws, "LOGIN", myself=True)
        await send(ws, type="SEND_ALL", room_id=7, content="还在", token=token)
        if live_room:
            assert (await frame_of(ws, "SEND_ALL", myself=True))["content"] == "还在"
        else:
            assert (await frame_of(ws, "ERROR"))["error_code"] == 30005


async def test_a_fresh_start_says_where_everything_is_and_refuses_a_second_one(started, tmp_path, reachable_tmp):
    """Embedded PostgreSQL and Redis in a new var dir, as after a clone."""
    start, session = started
    env = {k: v for k, v in os.environ.items() if not k.startswith("JIANDONG_")}
    env["JIANDONG_VAR_DIR"] = str(reachable_tmp / "var")
    server = start(env, tmp_path / "first.log")
    await server.ready(session)
    log = server.log()
    assert "RuntimeDirWarning" not in log and "Traceback" not in log
    # Every line starts with the time and its UTC offset, or continues the line above (indented).
    assert all(LINE_START.match(line) or line.startswith("  ") for line in log.splitlines()), log
    banner = log[log.index("ready:"):].splitlines()
    http, ws, chat = f"http://localhost:{server.port}", f"ws://localhost:{server.port}", server.chat_port
    assert banner[1:6] == [
        f"  API      {http}/api/v1/  (the README walks through it with curl)",
        f"  docs     {http}/Docs/jiandong.html  (OpenAPI: {http}/api/v1/openapi.json)",
        f"  chat     {ws}/ws?room_id=1 and ws://localhost:{chat}/?room_id=1",
        f"  console  {http}/admin/  (first account: python server.py create-admin NAME)",
        "  no data yet: stop this server (Ctrl-C) and start it again with --demo, then log in with the code 'demo'"
        " (user 演示球员)",
    ]
    # The settings one per line, only those not at their default.
    settings = log[log.index("settings ("):].splitlines()
    assert settings[0] == "settings (5 not at their default; secrets masked):"
    assert [line.split(" = ")[0] for line in settings[1:6]] == [
        "  JIANDONG_DATABASE_URL", "  JIANDONG_REDIS_URL", "  JIANDONG_PORT", "  JIANDONG_CHAT_PORT",
        "  JIANDONG_VAR_DIR"]
    # Nobody set the two URLs: they say whose they are.
    assert settings[1].endswith("  (embedded)") and settings[2].endswith("  (embedded)")
    assert not settings[3].endswith("(embedded)")
    # The embedded PostgreSQL has no pg_trgm: nothing to act on, so said once at INFO, not warned about.
    assert [line for line in log.splitlines() if "search" in line and " WARNING " in line] == []
    (search,) = [line for line in log.splitlines() if "search scans every row" in line]
    assert " INFO jiandong: search scans every row on the embedded PostgreSQL" in search
    assert "a PostgreSQL with pg_trgm (JIANDONG_DATABASE_URL) indexes it" in search

    # The same ports: one line naming the port, before anything else is touched.
    assert await refused(env, *server.args) == port_taken("0.0.0.0", server.port)
    # Other ports, the same var dir (its embedded servers): one line naming the directory.
    assert await refused(env, "--port", str(free_port()), "--chat-port", "0") == (
        f"jiandong: {(reachable_tmp / 'var').resolve()} is in use by process {server.proc.pid} (its embedded PostgreSQL"
        " and Redis): stop that server first, or give this one another JIANDONG_VAR_DIR")
    # A command run meanwhile uses the running server's embedded PostgreSQL and Redis, as the banner suggests.
    created = await asyncio.to_thread(subprocess.run, [sys.executable, "server.py", "create-admin", "boss"],
                                      cwd=ROOT, env=env, input="long enough pw\n", capture_output=True, text=True,
                                      timeout=60)
    assert created.returncode == 0 and created.stdout.startswith("created owner boss"), created
    # The address it names is the running server's (its port), not the default port's.
    assert f"sign in at {http}/admin/" in created.stdout, created.stdout
    # Its banner's addresses answer.
    for path in ("/api/v1/", "/Docs/jiandong.html", "/api/v1/openapi.json", "/admin/"):
        async with session.get(f"{server.url}{path}") as resp:
            assert resp.status == 200, path
    await still_serves(server, session, live_room=False)
    assert server.proc.poll() is None


async def test_a_start_on_a_postgresql_without_pg_trgm_warns_what_to_run(started, settings, fresh_database, tmp_path):
    """A configured PostgreSQL whose database lacks pg_trgm (the extension dropped, or never installed):
    search scans every row of a real club's lists, so every start says at WARNING how to index it."""
    start, session = started
    migrate(fresh_database)
    with psycopg2.connect(fresh_database) as conn, conn.cursor() as cur:
        cur.execute("DROP EXTENSION IF EXISTS pg_trgm CASCADE")
    conn.close()
    server = start(server_env(settings.replace(database_url=fresh_database), tmp_path / "var"), tmp_path / "pg.log")
    await server.ready(session)
    warned = [line for line in server.log().splitlines() if "search scans every row" in line]
    database = urlsplit(fresh_database).path.lstrip("/")
    assert len(warned) == 1 and " WARNING jiandong: search scans every row: " in warned[0], warned
    assert f'psql -d {database} -c "CREATE EXTENSION pg_trgm"' in warned[0]


async def test_a_second_start_of_workers_is_refused(started, settings, tmp_path):
    start, session = started
    env = server_env(settings, tmp_path / "var")
    server = start(env, tmp_path / "first.log", "--workers", "2")
    await server.ready(session)
    assert await refused(server_env(settings, tmp_path / "var2"), *server.args) == port_taken("127.0.0.1", server.port)
    await still_serves(server, session)
    assert server.proc.poll() is None
    # Each line names the process that wrote it.
    log = server.log()
    assert "INFO [main] jiandong: worker 2 started" in log
    for worker in (1, 2):
        assert (f"INFO [worker {worker}] jiandong: serving on 127.0.0.1 port(s) {server.port}, {server.chat_port} "
                "(uvloop event loop)") in log


async def test_the_server_runs_on_asyncios_own_loop_when_told_to(started, settings, tmp_path):
    start, session = started
    server = start({**server_env(settings, tmp_path / "var"), "JIANDONG_EVENT_LOOP": "asyncio"}, tmp_path / "a.log")
    await server.ready(session)
    await still_serves(server, session)
    serving = f"jiandong: serving on 127.0.0.1 port(s) {server.port}, {server.chat_port} (asyncio event loop)"
    assert serving in server.log()


def test_uvloop_chosen_but_not_installed_is_a_settings_problem(monkeypatch):
    monkeypatch.setitem(sys.modules, "uvloop", None)
    with pytest.raises(SettingsError, match=r"event_loop is uvloop, which is not installed: pip install"):
        load_settings({"JIANDONG_EVENT_LOOP": "uvloop"})


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is no longer running.
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"


async def test_a_killed_server_leaves_nothing_running_after_the_next_one(started, tmp_path, reachable_tmp):
    """A server killed outright leaves its embedded Redis and PostgreSQL running; the next start stops the
    stale Redis (two on one append-only file would both write it) and takes the PostgreSQL over, and a
    terminal closing (SIGHUP) stops a server as cleanly as Ctrl-C."""
    start, session = started
    env = {k: v for k, v in os.environ.items() if not k.startswith("JIANDONG_")}
    var = reachable_tmp / "var"
    env["JIANDONG_VAR_DIR"] = str(var)
    first = start(env, tmp_path / "first.log")
    await first.ready(session)
    first.proc.kill()
    first.proc.wait()
    stale_redis = int((var / "redis" / "redis-server.pid").read_text())
    assert alive(stale_redis) and (var / "pgdata" / "postmaster.pid").exists()

    second = start(env, tmp_path / "second.log")
    await second.ready(session)
    assert not alive(stale_redis)
    assert "stopping the embedded redis-server" in second.log()
    await still_serves(second, session, live_room=False)
    redis_now = int((var / "redis" / "redis-server.pid").read_text())
    second.proc.send_signal(signal.SIGHUP)
    assert await asyncio.to_thread(second.proc.wait, 60) == 0
    assert "shutting down" in second.log() and "embedded servers stopped" in second.log()
    assert not alive(redis_now) and not (var / "pgdata" / "postmaster.pid").exists()


def test_the_banner_suggests_a_first_account_only_while_there_is_no_owner(settings, sql):
    assert owner_exists(settings.database_url) is False
    assert "create-admin" in banner(settings, "data", False, owner_exists(settings.database_url))
    add_admin(sql, "writer", "editor")
    assert owner_exists(settings.database_url) is False
    add_admin(sql, "boss", "owner")
    assert owner_exists(settings.database_url) is True
    text = banner(settings, "data", False, owner_exists(settings.database_url))
    assert "create-admin" not in text and "/admin/" in text


@pytest.mark.parametrize("workers", ["1", "2"])
@pytest.mark.parametrize("version", ["v2", "v3"])
async def test_a_wechat_pay_key_file_that_does_not_load_stops_the_start_at_once(settings, tmp_path, version, workers):
    """Found only when the app starts (the files are read there): one line naming the setting and status 2, not
    a traceback, and not a process that waits for ever for the tasks the contexts before it had started."""
    fake = FakeWeChatPayV3(tmp_path / "v3")
    merchant = {"JIANDONG_WECHAT_APPID": fake.appid, "JIANDONG_WECHAT_SECRET": "secret",
                "JIANDONG_PUBLIC_URL": "https://club.example.com", "JIANDONG_WECHATPAY_MCH_ID": fake.mchid,
                "JIANDONG_WECHATPAY_CERT_PATH": str(fake.merchant_cert_path),
                "JIANDONG_WECHATPAY_KEY_PATH": str(tmp_path / "missing.pem")}
    if version == "v3":
        merchant.update(JIANDONG_WECHATPAY_APIV3_KEY=fake.api_v3_key,
                        JIANDONG_WECHATPAY_PUBLIC_KEY_PATH=str(fake.public_key_path),
                        JIANDONG_WECHATPAY_PUBLIC_KEY_ID=fake.public_key_id)
        said = f"bad setting: JIANDONG_WECHATPAY_KEY_PATH: {tmp_path / 'missing.pem'} cannot be read"
    else:
        merchant.update(JIANDONG_WECHATPAY_API_KEY="a-merchant-api-key")
        said = "bad setting: JIANDONG_WECHATPAY_CERT_PATH / JIANDONG_WECHATPAY_KEY_PATH: the merchant API certificate"
    env = server_env(settings, tmp_path / "var", **merchant)
    result = await asyncio.to_thread(subprocess.run, [sys.executable, "server.py", "--port", str(free_port()),
                                                      "--chat-port", "0", "--workers", workers],
                                     cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == (2 if workers == "1" else 1), result.stderr
    assert "Traceback" not in result.stderr and said in result.stderr, result.stderr
    assert fake.api_v3_key not in result.stderr
