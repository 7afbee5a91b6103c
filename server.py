"""Command line: python server.py [serve] [--host --port ...] | migrate."""

from __future__ import annotations

import argparse
import logging
import sys

from aiohttp import web

from jiandong.app import create_app
from jiandong.db import migrate
from jiandong.embedded import EmbeddedError, servers_for
from jiandong.settings import SettingsError, configure_logging, load_settings

logger = logging.getLogger("jiandong")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="server.py",
        description="jiandong API server. Settings come from JIANDONG_* environment variables; flags override them.",
    )
    parser.add_argument("command", nargs="?", default="serve", choices=["serve", "migrate"],
                        help="serve (default) or migrate (apply the SQL migrations and exit)")
    parser.add_argument("--host", help="listen address (JIANDONG_HOST)")
    parser.add_argument("--port", type=int, help="HTTP port (JIANDONG_PORT)")
    parser.add_argument("--chat-port", type=int, help="chat websocket port (JIANDONG_CHAT_PORT)")
    parser.add_argument("--database-url", help="PostgreSQL URL; none = embedded (JIANDONG_DATABASE_URL)")
    parser.add_argument("--redis-url", help="Redis URL; none = embedded (JIANDONG_REDIS_URL)")
    parser.add_argument("--var-dir", help="data directory of the embedded servers (JIANDONG_VAR_DIR)")
    parser.add_argument("--log-level", help="DEBUG, INFO, WARNING, ERROR (JIANDONG_LOG_LEVEL)")
    return parser.parse_args(argv)


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
            logger.info("settings: %s", settings.public())
            web.run_app(create_app(settings), host=settings.host, port=settings.port, access_log=None)
    except EmbeddedError as exc:
        print(f"jiandong: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
