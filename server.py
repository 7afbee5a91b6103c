"""Command line: python server.py [serve] [--host --port ...] | migrate."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys

from aiohttp import web

from jiandong.app import create_app
from jiandong.db import migrate
from jiandong.demo import DEMO_LOGIN_CODE, load_demo, load_large
from jiandong.embedded import EmbeddedError, servers_for
from jiandong.settings import Settings, SettingsError, configure_logging, load_settings

logger = logging.getLogger("jiandong")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="server.py",
        description="jiandong API server. Settings come from JIANDONG_* environment variables; flags override them.",
    )
    parser.add_argument("command", nargs="?", default="serve", choices=["serve", "migrate", "demo"],
                        help="serve (default); migrate: apply the SQL migrations and exit; "
                             "demo: load the demo data and exit")
    parser.add_argument("--demo", action="store_true", help="load the demo data (once) before serving")
    parser.add_argument("--demo-size", choices=["small", "large"], default="small",
                        help="large adds 10,000 matches and 100,000 videos for benchmarks")
    parser.add_argument("--host", help="listen address (JIANDONG_HOST)")
    parser.add_argument("--port", type=int, help="HTTP port (JIANDONG_PORT)")
    parser.add_argument("--chat-port", type=int, help="chat websocket port (JIANDONG_CHAT_PORT)")
    parser.add_argument("--database-url", help="PostgreSQL URL; none = embedded (JIANDONG_DATABASE_URL)")
    parser.add_argument("--redis-url", help="Redis URL; none = embedded (JIANDONG_REDIS_URL)")
    parser.add_argument("--var-dir", help="data directory of the embedded servers (JIANDONG_VAR_DIR)")
    parser.add_argument("--log-level", help="DEBUG, INFO, WARNING, ERROR (JIANDONG_LOG_LEVEL)")
    return parser.parse_args(argv)


def load_demo_data(settings: Settings, size: str) -> None:
    migrate(settings.database_url)
    if load_demo(settings.database_url, settings.timezone):
        logger.info("demo data loaded; log in with the code %r to see a player card", DEMO_LOGIN_CODE)
    else:
        logger.info("demo data already loaded")
    if size == "large" and not load_large(settings.database_url):
        logger.info("large demo data already loaded")


async def serve(settings: Settings) -> None:
    """One app on the HTTP port and, when set, the chat port too (its websocket at /), until SIGTERM or SIGINT."""
    runner = web.AppRunner(create_app(settings), access_log=None)
    await runner.setup()
    try:
        ports = [settings.port] + ([settings.chat_port] if settings.chat_port else [])
        for port in ports:
            await web.TCPSite(runner, settings.host, port).start()
        logger.info("serving on %s port(s) %s", settings.host, ", ".join(map(str, ports)))
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        await stop.wait()
        logger.info("shutting down")
    finally:
        # Stops accepting, closes the chat sockets with 1001, lets requests finish, then the contexts.
        await runner.cleanup()


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
        )
    except SettingsError as exc:
        print(f"jiandong: bad setting: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings)
    try:
        with servers_for(settings) as settings:
            if args.command == "migrate":
                applied = migrate(settings.database_url)
                print(f"applied {len(applied)} migration(s): {', '.join(applied) or 'none'}")
                return 0
            if args.command == "demo" or args.demo:
                load_demo_data(settings, args.demo_size)
                if args.command == "demo":
                    return 0
            logger.info("settings: %s", settings.public())
            asyncio.run(serve(settings))
    except EmbeddedError as exc:
        print(f"jiandong: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
