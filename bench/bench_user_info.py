"""GET /api/v1/user/info on the real server against a bare aiohttp handler, loaded the same way in one run.

    python bench/bench_user_info.py [--duration 10] [--connections 50] [--threads 2] [--smoke]

Starts `python server.py` (a database `jiandong_bench` of its own on the PostgreSQL at --database-url,
Redis at --redis-url; embedded servers when those do not answer) and bench/bare_server.py, logs in
with a development WeChat code, then loads both with wrk (or, without wrk, an aiohttp client in
--threads processes) and prints requests/s of each and their ratio. Both servers are one process.
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
import typing
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
DATABASE = "jiandong_bench"
PATH = "/api/v1/user/info"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=10, help="seconds of load per server (default 10)")
    parser.add_argument("--connections", type=int, default=50, help="concurrent keep-alive connections (default 50)")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads / client processes (default 2)")
    parser.add_argument("--warmup", type=int, default=2, help="seconds of unmeasured load first (default 2)")
    parser.add_argument("--client", choices=["auto", "wrk", "python"], default="auto",
                        help="load generator: wrk when on PATH (auto), or the aiohttp client")
    parser.add_argument("--smoke", action="store_true", help="a 1 s run with 4 connections, to check it works")
    parser.add_argument("--database-url", default="postgresql://postgres@127.0.0.1:5432/postgres",
                        help="PostgreSQL admin URL; the database jiandong_bench is made there")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0", help="Redis URL")
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

def postgres(stack: contextlib.ExitStack, admin_url: str, var_dir: Path) -> str:
    """A fresh, empty database for the run (dropped at the end); embedded if the server does not answer."""
    import psycopg2

    try:
        psycopg2.connect(admin_url, connect_timeout=3).close()
    except psycopg2.OperationalError:
        from jiandong.embedded import start_postgres

        log(f"no PostgreSQL at {admin_url}; starting an embedded one")
        admin_url, stop = start_postgres(var_dir, database="postgres")
        stack.callback(stop)

    def run(statement: str) -> None:
        conn = psycopg2.connect(admin_url)
        conn.autocommit = True
        try:
            with conn.cursor() as cur:
                cur.execute(statement)
        finally:
            conn.close()

    run(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")
    run(f"CREATE DATABASE {DATABASE}")
    stack.callback(run, f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")
    return urlsplit(admin_url)._replace(path=f"/{DATABASE}").geturl()


def redis_server(stack: contextlib.ExitStack, url: str, var_dir: Path, prefix: str) -> str:
    import redis

    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=3)
        client.ping()
    except redis.RedisError:
        from jiandong.embedded import start_redis

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
          port: int) -> None:
    """Start a server process, stopped (SIGTERM, then SIGKILL) when the stack unwinds; wait for its port."""
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
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = log_path.read_text(errors="replace")[-3000:]
            raise SystemExit(f"{name} exited with {process.returncode}:\n{tail}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return
        time.sleep(0.1)
    raise SystemExit(f"{name} did not listen on port {port} within 120 s; see {log_path}")


def request(url: str, data: bytes | None = None, headers: dict[str, str] | None = None) -> typing.Any:
    req = urllib.request.Request(url, data=data, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return json.load(resp)
    except urllib.error.HTTPError as exc:
        raise SystemExit(f"{url}: HTTP {exc.code}: {exc.read().decode(errors='replace')}") from None


# --- load ----------------------------------------------------------------------------------------

class Result(typing.NamedTuple):
    requests_per_second: float
    requests: int
    errors: int


def wrk(url: str, token: str, duration: int, connections: int, threads: int) -> Result:
    out = subprocess.run(
        ["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration}s", "-H", f"token: {token}", url],
        capture_output=True, text=True, check=True,
    ).stdout
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    total = re.search(r"(\d+) requests in", out)
    if rps is None or total is None:
        raise SystemExit(f"could not read wrk's output:\n{out}")
    errors = sum(int(n) for n in re.findall(r"Non-2xx or 3xx responses: (\d+)", out))
    socket_errors = re.search(r"Socket errors: (.*)", out)
    if socket_errors:
        errors += sum(int(n) for n in re.findall(r"\d+", socket_errors.group(1)))
    return Result(float(rps.group(1)), int(total.group(1)), errors)


def _client_process(url: str, token: str, duration: float, connections: int) -> tuple[int, int, float]:
    return asyncio.run(_client_loop(url, token, duration, connections))


async def _client_loop(url: str, token: str, duration: float, connections: int) -> tuple[int, int, float]:
    import aiohttp

    ok = errors = 0
    connector = aiohttp.TCPConnector(limit=connections)
    async with aiohttp.ClientSession(connector=connector, headers={"token": token}) as session:
        started = time.monotonic()
        deadline = started + duration

        async def worker() -> None:
            nonlocal ok, errors
            while time.monotonic() < deadline:
                try:
                    async with session.get(url) as resp:
                        await resp.read()
                        if resp.status == 200:
                            ok += 1
                        else:
                            errors += 1
                except aiohttp.ClientError:
                    errors += 1

        await asyncio.gather(*(worker() for _ in range(connections)))
        return ok, errors, time.monotonic() - started


def python_client(url: str, token: str, duration: int, connections: int, threads: int) -> Result:
    """N keep-alive connections for a fixed time, spread over `threads` processes (one loop each)."""
    shares = [connections // threads + (1 if i < connections % threads else 0) for i in range(threads)]
    with multiprocessing.get_context("spawn").Pool(threads) as pool:
        results = pool.starmap(_client_process, [(url, token, duration, share) for share in shares])
    ok = sum(r[0] for r in results)
    errors = sum(r[1] for r in results)
    elapsed = max(r[2] for r in results)
    return Result(ok / elapsed, ok + errors, errors)


# --- main ----------------------------------------------------------------------------------------

def main() -> int:
    args = parse_args()
    use_wrk = args.client == "wrk" or (args.client == "auto" and shutil.which("wrk") is not None)
    if args.client == "wrk" and shutil.which("wrk") is None:
        raise SystemExit("wrk is not on PATH (apt-get install wrk), or use --client python")
    load = wrk if use_wrk else python_client

    # SIGTERM unwinds like Ctrl-C, so the servers and the database are cleaned up either way.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    with contextlib.ExitStack() as stack:
        work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="jiandong-bench-")))
        prefix = f"jdbench:{os.getpid()}:"
        database_url = postgres(stack, args.database_url, work / "var")
        redis_url = redis_server(stack, args.redis_url, work / "var", prefix)

        # Only the variables meant for the server: an unrelated JIANDONG_* would stop it.
        env = {k: v for k, v in os.environ.items() if not k.startswith("JIANDONG_")}
        env.update(
            JIANDONG_DATABASE_URL=database_url,
            JIANDONG_REDIS_URL=redis_url,
            JIANDONG_REDIS_PREFIX=prefix,
            JIANDONG_VAR_DIR=str(work / "var"),
            JIANDONG_LOG_LEVEL="WARNING",
            JIANDONG_CHAT_PORT="0",
        )
        app_port = free_port()
        log("starting server.py ...")
        start(stack, "server", [sys.executable, "server.py", "--host", "127.0.0.1", "--port", str(app_port)],
              env, work, app_port)
        app_url = f"http://127.0.0.1:{app_port}{PATH}"
        token = request(f"http://127.0.0.1:{app_port}/api/v1/token/user", data=b"code=bench-user",
                        headers={"Content-Type": "application/x-www-form-urlencoded"})["token"]
        body = request(app_url, headers={"token": token})

        body_file = work / "body.json"
        body_file.write_text(json.dumps(body, ensure_ascii=False), encoding="utf-8")
        bare_port = free_port()
        start(stack, "bare", [sys.executable, str(ROOT / "bench" / "bare_server.py"), "--port", str(bare_port),
                              "--body-file", str(body_file)], env, work, bare_port)
        bare_url = f"http://127.0.0.1:{bare_port}{PATH}"
        if request(bare_url).keys() != body.keys():
            raise SystemExit("the bare handler's body differs from user/info's")

        client = "wrk" if use_wrk else "aiohttp client"
        log(f"load: {client}, {args.threads} thread(s), {args.connections} connections, {args.duration} s per server")
        results = {}
        for name, url in (("bare", bare_url), ("user/info", app_url)):
            if args.warmup:
                load(url, token, args.warmup, args.connections, args.threads)
            results[name] = load(url, token, args.duration, args.connections, args.threads)
            log(f"  {name}: {results[name].requests} requests, {results[name].errors} errors")

    bare, app = results["bare"], results["user/info"]
    print(f"client: {client}, {args.threads} thread(s), {args.connections} connections, {args.duration} s per server")
    print(f"bare aiohttp handler   {bare.requests_per_second:10.1f} requests/s")
    print(f"GET {PATH}  {app.requests_per_second:10.1f} requests/s")
    print(f"ratio user/info / bare {app.requests_per_second / bare.requests_per_second:10.2f}")
    if bare.errors or app.errors:
        print(f"errors: bare {bare.errors}, user/info {app.errors}", file=sys.stderr)
        return 1
    if not (bare.requests and app.requests):
        print("no request completed", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
