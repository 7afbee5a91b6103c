"""What the benchmarks share: the databases, server.py and the bare handler as subprocesses, the load generators.

A benchmark measures an endpoint of the real server and bench/bare_server.py answering the same
body, with the same client, connections and duration in the same run, and prints the ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import types
import typing
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
LOGIN_CODE = "bench-user"


def parser(description: str | None, database: str) -> argparse.ArgumentParser:
    """The options every benchmark takes."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=10, help="seconds of load per server (default 10)")
    parser.add_argument("--connections", type=int, default=50, help="concurrent keep-alive connections (default 50)")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads / client processes (default 2)")
    parser.add_argument("--warmup", type=int, default=2, help="seconds of unmeasured load first (default 2)")
    parser.add_argument("--client", choices=["auto", "wrk", "python"], default="auto",
                        help="load generator: wrk when on PATH (auto), or the aiohttp client")
    parser.add_argument("--smoke", action="store_true", help="a 1 s run with 4 connections, to check it works")
    parser.add_argument("--database-url", default="postgresql://postgres@127.0.0.1:5432/postgres",
                        help=f"PostgreSQL admin URL; the database {database} is made there")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0", help="Redis URL")
    parser.add_argument("--event-loop", choices=["auto", "uvloop", "asyncio"], default="auto",
                        help="server.py's event loop (JIANDONG_EVENT_LOOP; default auto: uvloop when installed)")
    parser.add_argument("--bare-event-loop", choices=["auto", "uvloop", "asyncio"], default="asyncio",
                        help="the bare server's event loop (default asyncio: the plain aiohttp every ratio is "
                             "measured against; uvloop shows what the loop alone gives)")
    parser.add_argument("--quiet-log", action="store_true",
                        help="the server at log level WARNING: no access lines (default INFO, as deployed)")
    return parser


def parse(parser: argparse.ArgumentParser) -> argparse.Namespace:
    args = parser.parse_args()
    if args.smoke:
        args.duration, args.connections, args.threads, args.warmup = 1, 4, 1, 0
    if args.duration < 1 or args.connections < 1 or args.threads < 1:
        parser.error("--duration, --connections and --threads must be at least 1")
    args.threads = min(args.threads, args.connections)
    return args


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# --- servers -------------------------------------------------------------------------------------

def postgres(stack: contextlib.ExitStack, admin_url: str, var_dir: Path, database: str, *, keep: bool = False) -> str:
    """The URL of `database`: made fresh and dropped at the end, or with `keep` made once and kept
    (with its data) for the next run. Embedded PostgreSQL in var_dir if the server does not answer."""
    import psycopg2

    try:
        psycopg2.connect(admin_url, connect_timeout=3).close()
    except psycopg2.OperationalError:
        from jiandong.ops.embedded import start_postgres

        log(f"no PostgreSQL at {admin_url}; starting an embedded one in {var_dir}")
        admin_url, stop = start_postgres(var_dir, database="postgres")
        stack.callback(stop)

    def run(statement: str, *params: typing.Any) -> typing.Any:
        conn = psycopg2.connect(admin_url)
        conn.autocommit = True
        try:
            with conn.cursor() as cur:
                cur.execute(statement, params or None)
                return cur.fetchone() if cur.description else None
        finally:
            conn.close()

    if keep:
        if run("SELECT 1 FROM pg_database WHERE datname = %s", database) is None:
            run(f"CREATE DATABASE {database}")
    else:
        run(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")
        run(f"CREATE DATABASE {database}")
        stack.callback(run, f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")
    return urlsplit(admin_url)._replace(path=f"/{database}").geturl()


def redis_server(stack: contextlib.ExitStack, url: str, var_dir: Path, prefix: str) -> str:
    """The Redis URL (embedded if nothing answers at `url`); keys under `prefix` go at the end."""
    import redis

    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=3)
        client.ping()
    except redis.RedisError:
        from jiandong.ops.embedded import start_redis

        log(f"no Redis at {url}; starting an embedded one")
        url, stop = start_redis(var_dir)
        stack.callback(stop)
        client = redis.Redis.from_url(url)

    def forget_keys() -> None:
        with contextlib.closing(client):
            keys = list(client.scan_iter(match=prefix + "*", count=1000))
            if keys:
                client.delete(*keys)

    stack.callback(forget_keys)
    return url


def start(stack: contextlib.ExitStack, name: str, argv: list[str], env: dict[str, str], log_dir: Path,
          port: int, ready_path: str | None = None, wait: float = 120.0) -> None:
    """Start a server process, stopped (SIGTERM, then SIGKILL) when the stack unwinds; wait (up to `wait`
    seconds) for its port or, with `ready_path`, until GET of that path answers 200."""
    log_path = log_dir / f"{name}.log"
    log_file = open(log_path, "wb")
    stack.callback(log_file.close)
    process = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=log_file, stderr=subprocess.STDOUT,
                               stdin=subprocess.DEVNULL)

    def stop() -> None:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    stack.callback(stop)
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = log_path.read_text(errors="replace")[-3000:]
            raise SystemExit(f"{name} exited with {process.returncode}:\n{tail}")
        if ready_path is None:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        else:
            with contextlib.suppress(OSError), \
                    urllib.request.urlopen(f"http://127.0.0.1:{port}{ready_path}", timeout=5) as resp:
                if resp.status == 200:
                    return
        time.sleep(0.1)
    raise SystemExit(f"{name} did not listen on port {port} within {wait:g} s; see {log_path}")


@contextlib.contextmanager
def cursor(database_url: str) -> typing.Iterator[typing.Any]:
    """A cursor on the database, in a transaction committed when the block ends without an error."""
    import psycopg2

    conn = psycopg2.connect(database_url)
    try:
        with conn, conn.cursor() as cur:
            yield cur
    finally:
        conn.close()


def add_live(database_url: str, live_id: int) -> None:
    """A published live with this id: a room the chat takes messages in (once server.py made the schema)."""
    with cursor(database_url) as cur:
        cur.execute("INSERT INTO lives (id, title, stream_name) VALUES (%s, %s, %s) ON CONFLICT (id) DO NOTHING",
                    (live_id, f"直播间 {live_id}", f"bench-room-{live_id}"))


def request(url: str, data: bytes | None = None, headers: dict[str, str] | None = None) -> typing.Any:
    """One request with the standard library; the decoded JSON answer (exits on an HTTP error)."""
    req = urllib.request.Request(url, data=data, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return json.load(resp)
    except urllib.error.HTTPError as exc:
        raise SystemExit(f"{url}: HTTP {exc.code}: {exc.read().decode(errors='replace')}") from None


class Run(typing.NamedTuple):
    """The benchmark's surroundings: what to unwind at the end, a scratch directory, the server's environment
    and the bare server's (its event loop: --bare-event-loop)."""

    stack: contextlib.ExitStack
    work: Path
    env: dict[str, str]
    bare_env: dict[str, str]


@contextlib.contextmanager
def bench_run(args: argparse.Namespace, database: str, *, keep_database: bool = False,
              embedded_dir: Path | None = None) -> typing.Iterator[Run]:
    """Database, Redis and the environment for server.py; all cleaned up on exit, Ctrl-C or SIGTERM.

    `embedded_dir` holds an embedded PostgreSQL that should outlive the run (for a kept database).
    """
    # SIGTERM unwinds like Ctrl-C, so the servers and the database are cleaned up either way.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    with contextlib.ExitStack() as stack:
        work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="jiandong-bench-")))
        prefix = f"jdbench:{os.getpid()}:"
        database_url = postgres(stack, args.database_url, embedded_dir or work / "var", database, keep=keep_database)
        redis_url = redis_server(stack, args.redis_url, work / "var", prefix)
        # Only the variables meant for the server: an unrelated JIANDONG_* would stop it.
        env = {k: v for k, v in os.environ.items() if not k.startswith("JIANDONG_")}
        env.update(
            JIANDONG_DATABASE_URL=database_url,
            JIANDONG_REDIS_URL=redis_url,
            JIANDONG_REDIS_PREFIX=prefix,
            JIANDONG_VAR_DIR=str(work / "var"),
            # As deployed: an access line per request, written to the server's log file.
            JIANDONG_LOG_LEVEL="WARNING" if args.quiet_log else "INFO",
            JIANDONG_CHAT_PORT="0",
            JIANDONG_EVENT_LOOP=args.event_loop,
        )
        yield Run(stack, work, env, {**env, "JIANDONG_EVENT_LOOP": args.bare_event_loop})


def start_app(run: Run, *extra: str) -> str:
    """server.py (one process, unless `extra` says --workers N) on a free port, once ready; its base URL."""
    port = free_port()
    log("starting server.py ...")
    # server.py listens before it migrates the schema: the port open says nothing about the tables.
    # As deployed, with its public URL set (media URLs in answers are made absolute under it).
    env = {**run.env, "JIANDONG_PUBLIC_URL": f"http://127.0.0.1:{port}"}
    start(run.stack, "server", [sys.executable, "server.py", "--host", "127.0.0.1", "--port", str(port), *extra],
          env, run.work, port, ready_path="/readyz")
    return f"http://127.0.0.1:{port}"


def login(base_url: str) -> str:
    """A token from a development WeChat login."""
    return request(f"{base_url}/api/v1/token/user", data=f"code={LOGIN_CODE}".encode(),
                   headers={"Content-Type": "application/x-www-form-urlencoded"})["token"]


def start_bare(run: Run, routes: typing.Sequence[tuple[str, str, typing.Any]]) -> str:
    """bench/bare_server.py answering each (method, path) with its body (JSON, or "<xml>..." text); its URL."""
    argv = [sys.executable, str(ROOT / "bench" / "bare_server.py")]
    for index, (method, path, body) in enumerate(routes):
        if isinstance(body, str) and body.startswith("<xml>"):
            body_file = run.work / f"bare-body-{index}.xml"
            body_file.write_text(body, encoding="utf-8")
        else:
            body_file = run.work / f"bare-body-{index}.json"
            body_file.write_text(json.dumps(body, ensure_ascii=False), encoding="utf-8")
        argv += ["--route", method, path, str(body_file)]
    port = free_port()
    start(run.stack, "bare", [*argv, "--port", str(port)], run.bare_env, run.work, port)
    return f"http://127.0.0.1:{port}"


def start_bare_fanout(run: Run) -> str:
    """bench/bare_fanout_server.py, the fan-out baseline; its base URL."""
    port = free_port()
    log("starting bare_fanout_server.py ...")
    argv = [sys.executable, str(ROOT / "bench" / "bare_fanout_server.py"), "--port", str(port)]
    start(run.stack, "bare-fanout", argv, run.bare_env, run.work, port)
    return f"http://127.0.0.1:{port}"


def start_socketio_fanout(run: Run) -> str:
    """bench/socketio_fanout_server.py (python-socketio with its Redis manager on the run's Redis); its base URL."""
    port = free_port()
    log("starting socketio_fanout_server.py ...")
    argv = [sys.executable, str(ROOT / "bench" / "socketio_fanout_server.py"), "--port", str(port),
            "--redis-url", run.env["JIANDONG_REDIS_URL"], "--channel", run.env["JIANDONG_REDIS_PREFIX"] + "socketio"]
    start(run.stack, "socketio-fanout", argv, run.bare_env, run.work, port)
    return f"http://127.0.0.1:{port}"


# --- server processes ----------------------------------------------------------------------------

TICK = os.sysconf("SC_CLK_TCK")


def server_pid(port: int) -> int:
    """The pid of our server.py (or bare_fanout_server.py) child listening on `port`."""
    me = str(os.getpid())
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = f.read().rsplit(")", 1)[1].split()[1]
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        if ppid == me and any(a.endswith(b"server.py") for a in argv) and str(port).encode() in argv:
            return int(entry)
    raise SystemExit(f"no server.py child on port {port}")


def children(pid: int) -> list[int]:
    """The processes whose parent is `pid` (a --workers server's workers)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    if f.read().rsplit(")", 1)[1].split()[1] == str(pid):
                        found.append(int(entry))
            except OSError:
                continue
    return found


def cpu_times(pid: int) -> tuple[float, float]:
    """User and system CPU seconds of a process and its children (a --workers server's workers) so far."""
    user = system = 0.0
    for one in [pid, *children(pid)]:
        try:
            with open(f"/proc/{one}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # utime and stime: fields 14 and 15 of stat(5), counted after the command name here
        user, system = user + int(fields[11]) / TICK, system + int(fields[12]) / TICK
    return user, system


# --- load ----------------------------------------------------------------------------------------

class Target(typing.NamedTuple):
    """One request, sent over and over."""

    url: str
    method: str = "GET"
    body: bytes = b""
    headers: typing.Mapping[str, str] = types.MappingProxyType({})


class Result(typing.NamedTuple):
    requests_per_second: float
    requests: int
    errors: int
    # The server's user+system CPU per request (its threads and workers included), in microseconds; 0.0
    # when not measured. Less disturbed than requests/s by other work on a shared machine, which takes
    # the server's core away from it but does not make its requests cost more.
    cpu_us: float = 0.0


Load = typing.Callable[[Target, int, int, int], Result]


SAFE_LUA = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 -_./:=&%+")


def _lua_string(value: str) -> str:
    """A Lua string literal of the UTF-8 bytes of `value` (three-digit escapes, never ambiguous)."""
    return '"' + "".join(chr(b) if b in SAFE_LUA else f"\\{b:03d}" for b in value.encode()) + '"'


def wrk_script(target: Target, directory: Path) -> Path:
    """A wrk Lua script sending the target's method, headers and body (wrk takes bodies only from Lua)."""
    lines = [f"wrk.method = {_lua_string(target.method)}"]
    if target.body:
        lines.append(f"wrk.body = {_lua_string(target.body.decode())}")
    for name, value in target.headers.items():
        lines.append(f"wrk.headers[{_lua_string(name)}] = {_lua_string(value)}")
    fd, path = tempfile.mkstemp(prefix="wrk-", suffix=".lua", dir=directory)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    return Path(path)


def wrk(target: Target, duration: int, connections: int, threads: int) -> Result:
    argv = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration}s"]
    with tempfile.TemporaryDirectory(prefix="jiandong-wrk-") as scratch:
        if target.method != "GET" or target.body:
            argv += ["-s", str(wrk_script(target, Path(scratch)))]
        else:
            for name, value in target.headers.items():
                argv += ["-H", f"{name}: {value}"]
        out = subprocess.run([*argv, target.url], capture_output=True, text=True, check=True).stdout
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    total = re.search(r"(\d+) requests in", out)
    if rps is None or total is None:
        raise SystemExit(f"could not read wrk's output:\n{out}")
    errors = sum(int(n) for n in re.findall(r"Non-2xx or 3xx responses: (\d+)", out))
    socket_errors = re.search(r"Socket errors: (.*)", out)
    if socket_errors:
        errors += sum(int(n) for n in re.findall(r"\d+", socket_errors.group(1)))
    return Result(float(rps.group(1)), int(total.group(1)), errors)


def _client_process(target: Target, duration: float, connections: int) -> tuple[int, int, float]:
    return asyncio.run(_client_loop(target, duration, connections))


async def _client_loop(target: Target, duration: float, connections: int) -> tuple[int, int, float]:
    import aiohttp

    ok = errors = 0
    connector = aiohttp.TCPConnector(limit=connections)
    async with aiohttp.ClientSession(connector=connector, headers=dict(target.headers)) as session:
        started = time.monotonic()
        deadline = started + duration

        async def worker() -> None:
            nonlocal ok, errors
            while time.monotonic() < deadline:
                try:
                    async with session.request(target.method, target.url, data=target.body or None) as resp:
                        await resp.read()
                        if resp.status == 200:
                            ok += 1
                        else:
                            errors += 1
                except aiohttp.ClientError:
                    errors += 1

        await asyncio.gather(*(worker() for _ in range(connections)))
        return ok, errors, time.monotonic() - started


def python_client(target: Target, duration: int, connections: int, threads: int) -> Result:
    """N keep-alive connections for a fixed time, spread over `threads` processes (one loop each)."""
    shares = [connections // threads + (1 if i < connections % threads else 0) for i in range(threads)]
    target = target._replace(headers=dict(target.headers))  # picklable for the worker processes
    with multiprocessing.get_context("spawn").Pool(threads) as pool:
        results = pool.starmap(_client_process, [(target, duration, share) for share in shares])
    ok = sum(r[0] for r in results)
    errors = sum(r[1] for r in results)
    elapsed = max(r[2] for r in results)
    return Result(ok / elapsed, ok + errors, errors)


def choose_load(args: argparse.Namespace) -> tuple[str, Load]:
    """The load generator the options ask for, and its name."""
    if args.client == "wrk" and shutil.which("wrk") is None:
        raise SystemExit("wrk is not on PATH (apt-get install wrk), or use --client python")
    if args.client == "wrk" or (args.client == "auto" and shutil.which("wrk") is not None):
        return "wrk", wrk
    return "aiohttp client", python_client


def measure(load: Load, name: str, target: Target, args: argparse.Namespace) -> Result:
    """Warm up, then load `target` for the measured time."""
    if args.warmup:
        load(target, args.warmup, args.connections, args.threads)
    pid = server_pid(urlsplit(target.url).port or 80)
    before = sum(cpu_times(pid))
    result = load(target, args.duration, args.connections, args.threads)
    if result.requests:
        result = result._replace(cpu_us=(sum(cpu_times(pid)) - before) / result.requests * 1e6)
    log(f"  {name}: {result.requests} requests, {result.errors} errors, {result.cpu_us:.1f} µs of server CPU each")
    return result


def cpu_ratio(bare: Result, app: Result) -> float:
    """The bare server's CPU per request over the app's: the share of a bare handler's rate the app would
    reach with a core of its own."""
    return bare.cpu_us / app.cpu_us if app.cpu_us else 0.0


def client_line(client: str, args: argparse.Namespace) -> str:
    return f"client: {client}, {args.threads} thread(s), {args.connections} connections, {args.duration} s per server"
