"""Command line: python server.py [serve] [--host --port --workers ...] | migrate | demo | invalidate ..."""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import getpass
import logging
import multiprocessing
import multiprocessing.connection
import signal
import socket
import sys
import time

import aiopg
import psycopg2
import redis
from aiohttp import web

from jiandong.app import create_app
from jiandong.demo.club import DEMO_LOGIN_CODE, DEMO_USER_NAME, demo_state, load_demo, load_large
from jiandong.lib import eventloop
from jiandong.ops.banner import banner, owner_exists
from jiandong.ops.check import PROBLEM, check, first_line, mask_url_password
from jiandong.ops.embedded import EmbeddedError, servers_for
from jiandong.ops.metrics import prepare_multiprocess_dir, worker_gone
from jiandong.ops.serving import GuardedRunner, PortInUse, fit_open_files, listen
from jiandong.services import admins
from jiandong.services.content_cache import KINDS, publish_invalidation
from jiandong.settings import (
    Settings,
    SettingsError,
    configure_logging,
    field_types,
    load_settings,
    setting_help,
)
from jiandong.store.db import migrate, search_advice

logger = logging.getLogger("jiandong")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="server.py",
        description="jiandong API server. Settings come from JIANDONG_* environment variables; flags override them.",
    )
    parser.add_argument("command", nargs="?", default="serve",
                        choices=["serve", "check", "migrate", "demo", "invalidate", "create-admin"],
                        help="serve (default); check: check the settings, PostgreSQL, Redis and files of a "
                             "deployment, one finding a line (exit status 1 on a problem); "
                             "migrate: apply the SQL migrations and exit; "
                             "demo: load the demo data and exit; invalidate: make every running server "
                             "process drop its cached copies (after a change made directly in the database); "
                             "create-admin NAME: a console account (password prompted, or read from stdin)")
    parser.add_argument("what", nargs="*", metavar="WHAT",
                        help=f"for invalidate: user <user id> | content <kind> (kind: {', '.join(KINDS)})")
    parser.add_argument("--role", choices=["owner", "editor", "moderator"], default="owner",
                        help="for create-admin: the account's role (default owner)")
    parser.add_argument("--demo", action="store_true", help="load the demo data (once) before serving")
    parser.add_argument("--demo-size", choices=["small", "large"], default="small",
                        help="large adds 10,000 matches and 100,000 videos for benchmarks")
    # The flags that override a setting say what the setting's own declaration says (jiandong/settings.py).
    types = field_types()
    for name in ("host", "port", "chat_port", "database_url", "redis_url", "var_dir", "log_level", "workers"):
        parser.add_argument(f"--{name.replace('_', '-')}", type=types[name], help=setting_help(name).replace("%", "%%"))
    args = parser.parse_args(argv)
    args.invalidation = None
    match args.command, args.what:
        case "invalidate", ["user", user_id] if user_id.isdigit():
            args.invalidation = ("user", int(user_id))
        case "invalidate", ["content", kind] if kind in KINDS:
            args.invalidation = (kind, None)
        case "invalidate", _:
            parser.error(f"invalidate takes: user <user id> | content <{'|'.join(KINDS)}>")
        case "create-admin", [_]:
            pass
        case "create-admin", _:
            parser.error("create-admin takes the account's name: create-admin NAME [--role owner|editor|moderator]")
        case _, [_, *_]:
            parser.error(f"{args.command} takes no further arguments")
    return args


def invalidate(settings: Settings, kind: str, ident: int | None) -> int:
    """Publish an invalidation on the server's Redis, as the server does after a change; the exit status."""
    if not settings.redis_url:
        print("jiandong: invalidate needs the server's Redis: JIANDONG_REDIS_URL (or --redis-url) and "
              "JIANDONG_REDIS_PREFIX as the server has them; "
              "an embedded Redis is the server's own, and its caches expire on their own", file=sys.stderr)
        return 2
    try:
        heard = asyncio.run(publish_invalidation(settings, kind, ident))
    except redis.RedisError as exc:
        print(f"jiandong: could not publish the invalidation: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    what = kind if ident is None else f"{kind} {ident}"
    print(f"invalidated {what}: {heard} server process(es) received it")
    return 0


def read_password() -> str:
    """The new account's password: prompted twice on a terminal, else the first line of stdin (scripts)."""
    if sys.stdin.isatty():
        password = getpass.getpass("password: ")
        if getpass.getpass("again: ") != password:
            raise ValueError("the two passwords differ")
        return password
    return sys.stdin.readline().rstrip("\r\n")


def create_admin_account(settings: Settings, username: str, role: str) -> int:
    """Add a console account (the first owner, typically); the exit status."""
    try:
        password = read_password()
    except (ValueError, EOFError) as exc:
        print(f"jiandong: {exc}", file=sys.stderr)
        return 2
    migrate(settings.database_url)

    async def create() -> admins.Admin:
        pool = await aiopg.create_pool(settings.database_url, minsize=1, maxsize=1)
        try:
            return await admins.create_admin(pool, username, password, role)
        finally:
            pool.close()
            await pool.wait_closed()

    try:
        account = asyncio.run(create())
    except admins.AdminError as exc:
        print(f"jiandong: {exc}", file=sys.stderr)
        return 1
    print(f"created {account.role} {account.username}; sign in at {settings.base_url}/admin/")
    return 0


def load_demo_data(settings: Settings, size: str) -> None:
    migrate(settings.database_url)
    if load_demo(settings):
        logger.info("demo data loaded; log in with the code %r (%s, a member with a player card, teams, an order"
                    " and chat history) to see every page", DEMO_LOGIN_CODE, DEMO_USER_NAME)
    else:
        logger.info("demo data already loaded")
    if size == "large" and not load_large(settings.database_url):
        logger.info("large demo data already loaded")
    # Servers already running on this database see the demo at once, not when their caches expire.
    async def invalidate_all() -> None:
        for kind in KINDS:
            await publish_invalidation(settings, kind)

    try:
        asyncio.run(invalidate_all())
    except redis.RedisError as exc:
        logger.warning("could not tell running servers about the demo data (%s); they see it within %.0f s",
                       exc, settings.content_cache_ttl)


# What stops a server cleanly: a supervisor's SIGTERM, a terminal's Ctrl-C, and its terminal closing
# (SIGHUP), which would otherwise kill it without closing sockets or stopping its embedded servers.
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


async def serve(settings: Settings, sockets: list[socket.socket], *, banner_text: str = "",
                signals: tuple[int, ...] = STOP_SIGNALS) -> None:
    """One app on the listening sockets (the HTTP port and, when set, the chat port with its websocket
    at /) until one of `signals`; `banner_text` is logged once it accepts."""
    settings = settings.replace(max_connections=fit_open_files(settings.max_connections))
    runner = GuardedRunner(create_app(settings), settings, access_log=None)
    try:
        # Inside: a context that fails at start-up (a key file that does not load) leaves the ones started
        # before it to be cleaned up, their tasks stopped; else the loop would wait for those tasks for ever.
        await runner.setup()
        for sock in sockets:
            await web.SockSite(runner, sock).start()
        ports = [settings.port] + ([settings.chat_port] if settings.chat_port else [])
        logger.info("serving on %s port(s) %s (%s event loop)", settings.host, ", ".join(map(str, ports)),
                    eventloop.chosen(settings.event_loop))
        if banner_text:
            logger.info("%s", banner_text)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in signals:
            loop.add_signal_handler(signum, stop.set)
        await stop.wait()
        logger.info("shutting down")
    finally:
        # Stops accepting, closes the chat sockets with 1001, lets requests finish, then the contexts.
        await runner.cleanup()


# A worker that dies sooner than this after its start is broken (a port taken, a bad setting), not
# unlucky: restarting it would only loop, so the whole server stops instead.
WORKER_MIN_LIFE = 10.0
WORKER_STOP_WAIT = 60.0


def run_worker(settings: Settings, sockets: list[socket.socket], worker: int, banner_text: str) -> None:
    """A worker process: only its parent stops it (with SIGTERM); a terminal's Ctrl-C reaches the parent,
    which forwards it once, so a worker never gets a second signal while it closes its sockets."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    if sys.platform == "linux":
        # A parent killed outright (SIGKILL) must not leave its workers holding the ports: they get SIGTERM.
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    configure_logging(settings, process=f"worker {worker}")
    try:
        eventloop.run(serve(settings, sockets, banner_text=banner_text, signals=(signal.SIGTERM,)),
                      settings.event_loop)
    except SettingsError as exc:
        logger.error("bad setting: %s", exc)
        sys.exit(2)


def serve_workers(settings: Settings, sockets: list[socket.socket], banner_text: str) -> int:
    """N worker processes accepting on the listening sockets the parent bound, each with its own hub
    and process id, and numbered 1 to N in the log (a replacement takes the number of the one it replaces).

    A worker that dies while serving is logged and replaced; one that dies right after its start
    stops the server with status 1. SIGTERM or SIGINT is forwarded to every worker; the parent
    exits once they have closed their sockets and flushed, with 0 if each of them exited cleanly."""
    context = multiprocessing.get_context("spawn")
    stopping = False
    # Before the workers start: they read it when they import prometheus-client.
    metrics_dir = prepare_multiprocess_dir(settings)
    logger.info("metrics of every worker: prometheus-client multiprocess files in %s", metrics_dir)

    def on_signal(signum: int, _frame: object) -> None:
        nonlocal stopping
        if not stopping:
            logger.info("shutting down %d worker(s)", len(workers))
        stopping = True

    def start(number: int, banner_text: str = "") -> tuple[multiprocessing.process.BaseProcess, float]:
        # The sockets are passed on as inherited descriptors (multiprocessing duplicates them for the child).
        process = context.Process(target=run_worker, args=(settings, sockets, number, banner_text),
                                  name=f"jiandong-worker-{number}", daemon=False)
        process.start()
        logger.info("worker %d started (pid %d)", number, process.pid)
        return process, time.monotonic()

    previous = {signum: signal.signal(signum, on_signal) for signum in STOP_SIGNALS}
    workers: list[tuple[multiprocessing.process.BaseProcess, float]] = []
    status = 0
    try:
        # The first worker logs the banner once it accepts.
        workers = [start(n, banner_text if n == 1 else "") for n in range(1, settings.workers + 1)]
        while not stopping:
            # Woken by a worker's exit, or now and then to see whether a signal asked to stop.
            multiprocessing.connection.wait([p.sentinel for p, _ in workers], timeout=0.2)
            for i, (process, started) in enumerate(workers):
                if process.is_alive() or stopping:
                    continue
                process.join()
                worker_gone(process.pid)
                logger.error("worker %d (pid %d) exited with status %s", i + 1, process.pid, process.exitcode)
                if time.monotonic() - started < WORKER_MIN_LIFE:
                    logger.error("the worker died right after its start; stopping the server")
                    stopping, status = True, 1
                    break
                workers[i] = start(i + 1)
    finally:
        for process, _ in workers:
            if process.is_alive():
                process.terminate()
        deadline = time.monotonic() + WORKER_STOP_WAIT
        for process, _ in workers:
            process.join(max(0.0, deadline - time.monotonic()))
            if process.is_alive():
                logger.error("worker %d did not stop within %.0f s; killing it", process.pid, WORKER_STOP_WAIT)
                process.kill()
                process.join()
            if process.exitcode != 0:
                status = status or 1
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    return status


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        settings = load_settings(
            host=args.host,
            port=args.port,
            chat_port=args.chat_port,
            database_url=args.database_url,
            redis_url=args.redis_url,
            var_dir=args.var_dir,
            log_level=args.log_level,
            workers=args.workers,
        )
    except SettingsError as exc:
        if args.command == "check":
            # check reports what is wrong, one finding a line, and 1 for a problem, a bad setting too.
            print(f"{PROBLEM}: {exc}")
            return 1
        print(f"jiandong: bad setting: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings, process="main" if settings.workers > 1 and args.command == "serve" else None)
    if args.invalidation is not None:
        return invalidate(settings, *args.invalidation)
    if args.command == "serve" and (problem := settings.public_url_problem()) is not None:
        print(f"jiandong: {problem}", file=sys.stderr)
        return 2
    if args.command == "check":
        findings = check(settings)
        for finding in findings:
            print(finding)
        return 1 if any(f.level == PROBLEM for f in findings) else 0
    sockets: list[socket.socket] = []
    try:
        if args.command == "serve":
            # First of all: a second start on the ports of a running server stops here, touching nothing.
            sockets = listen(settings.host, [settings.port] + ([settings.chat_port] if settings.chat_port else []))
        embedded = not settings.database_url
        # The URLs nobody set are the embedded servers' (servers_for fills them in).
        origins = {name: "embedded" for name in ("database_url", "redis_url") if not getattr(settings, name)}
        # A command run while the server runs (create-admin, demo, ...) uses its embedded servers.
        with servers_for(settings, join_running=args.command != "serve") as settings:
            if args.command == "create-admin":
                return create_admin_account(settings, args.what[0], args.role)
            if args.command == "migrate":
                applied = migrate(settings.database_url)
                print(f"applied {len(applied)} migration(s): {', '.join(applied) or 'none'}")
                advice = search_advice(settings.database_url, embedded=embedded)
                if advice:
                    print(advice)
                return 0
            if args.command == "demo" or args.demo:
                load_demo_data(settings, args.demo_size)
                if args.command == "demo":
                    return 0
            logger.info("%s", settings.describe(origins))
            # Once here, so that workers start on an up-to-date schema instead of queueing on its lock.
            migrate(settings.database_url)
            advice = search_advice(settings.database_url, embedded=embedded)
            if advice:
                # A configured PostgreSQL without pg_trgm is the operator's to fix; the embedded one is as it is.
                logger.log(logging.INFO if embedded else logging.WARNING, "%s", advice)
            banner_text = banner(settings, demo_state(settings.database_url), embedded,
                                 owner_exists(settings.database_url))
            if settings.workers > 1:
                return serve_workers(settings, sockets, banner_text)
            eventloop.run(serve(settings, sockets, banner_text=banner_text), settings.event_loop)
    except PortInUse as exc:
        print(f"jiandong: {exc} (is this server running already? choose other ports with --port and --chat-port)",
              file=sys.stderr)
        return 1
    except SettingsError as exc:
        # A setting found wrong only when the app starts: a file it names that does not load.
        print(f"jiandong: bad setting: {exc}", file=sys.stderr)
        return 2
    except EmbeddedError as exc:
        print(f"jiandong: {exc}", file=sys.stderr)
        return 1
    except psycopg2.OperationalError as exc:
        print(f"jiandong: cannot reach PostgreSQL at {mask_url_password(settings.database_url)}: {first_line(exc)}",
              file=sys.stderr)
        return 1
    finally:
        for sock in sockets:
            sock.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
