"""The start-up banner: where the API, its docs and the chat are, and how to get data to look at."""

from __future__ import annotations

import psycopg2

from ..demo.club import DEMO_LOGIN_CODE, DEMO_USER_NAME
from ..settings import Settings


def local_url(settings: Settings, port: int, scheme: str = "http") -> str:
    """This server's address on `port` as seen from this machine (localhost for a wildcard host)."""
    host = "localhost" if settings.host in ("", "0.0.0.0", "::") else settings.host
    return f"{scheme}://[{host}]:{port}" if ":" in host else f"{scheme}://{host}:{port}"


def owner_exists(dsn: str) -> bool:
    """Whether the console has an active owner account (then the banner no longer suggests making one)."""
    conn = psycopg2.connect(dsn)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT EXISTS (SELECT 1 FROM admins WHERE role = 'owner' AND is_active)")
            return bool(cur.fetchone()[0])
    finally:
        conn.close()


def banner(settings: Settings, data: str, embedded: bool, has_owner: bool = False) -> str:
    """What to open next; `data` is demo.demo_state's answer, `embedded` whether the database is this
    server's own (then loading the demo means a restart: two processes cannot share its var dir),
    `has_owner` whether the console has its first account already."""
    http, ws = local_url(settings, settings.port), local_url(settings, settings.port, "ws")
    chat = f"{ws}/ws?room_id=1"
    if settings.chat_port:
        chat += f" and {local_url(settings, settings.chat_port, 'ws')}/?room_id=1"
    lines = [
        "ready:",
        f"  API      {http}/api/v1/  (the README walks through it with curl)",
        f"  docs     {http}/Docs/jiandong.html  (OpenAPI: {http}/api/v1/openapi.json)",
        f"  chat     {chat}",
        f"  console  {http}/admin/" + ("" if has_owner else "  (first account: python server.py create-admin NAME)"),
    ]
    login = f"log in with the code {DEMO_LOGIN_CODE!r} (user {DEMO_USER_NAME})"
    if data == "demo":
        lines.append(f"  demo     loaded: {login}")
    elif data == "empty":
        load = ("stop this server (Ctrl-C) and start it again with --demo" if embedded
                else "run python server.py demo")
        lines.append(f"  no data yet: {load}, then {login}")
    return "\n".join(lines)
