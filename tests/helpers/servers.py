"""Server processes as `python server.py` starts them, for the tests that need real processes (several
workers, a restart, the command line): their environment, starting them, and a free port."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
from pathlib import Path

import aiohttp

from tests.helpers.realtime import frame_of, send
from tests.helpers.waiting import until

# The checkout: where server.py is.
ROOT = Path(__file__).resolve().parents[2]
# How long a server process of a test may take to start.
START_WAIT = 30.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def server_env(settings, var_dir: Path, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "JIANDONG_DATABASE_URL": settings.database_url,
        "JIANDONG_REDIS_URL": settings.redis_url,
        "JIANDONG_REDIS_PREFIX": settings.redis_prefix,
        "JIANDONG_VAR_DIR": str(var_dir),
        "JIANDONG_HOST": "127.0.0.1",
        "JIANDONG_CHAT_HISTORY_INTERVAL": "0.1",
        "JIANDONG_CHAT_ONLINE_INTERVAL": "0.1",
        "JIANDONG_CHAT_PRESENCE_TTL": "1",
        "JIANDONG_CHAT_RATE_COUNT": "1000",
        "JIANDONG_CHAT_RATE_ADDRESS_COUNT": "0",
        **extra,
    }


class Servers:
    """Server processes started for one test, killed at its end if still running."""

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen[bytes]] = []
        self.session = aiohttp.ClientSession()

    async def start(self, env: dict[str, str], *args: str) -> tuple[subprocess.Popen[bytes], int, int]:
        port, chat_port = free_port(), free_port()
        # A plain Popen, waited on in a thread: asyncio's child watchers are not for a test suite's loops.
        proc = await asyncio.to_thread(
            subprocess.Popen,
            [sys.executable, "server.py", "--port", str(port), "--chat-port", str(chat_port), *args],
            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        self.procs.append(proc)

        async def serving() -> bool:
            assert proc.poll() is None, "the server exited"
            try:
                async with self.session.get(f"http://127.0.0.1:{port}/api/v1/openapi.json") as resp:
                    return resp.status == 200
            except aiohttp.ClientError:
                return False

        await until(serving, "the server to start", wait=START_WAIT)
        return proc, port, chat_port

    async def token(self, port: int, code: str) -> str:
        async with self.session.post(f"http://127.0.0.1:{port}/api/v1/token/user", data={"code": code}) as resp:
            assert resp.status == 200
            return (await resp.json())["token"]

    async def join(self, chat_port: int, room_id: int, token: str) -> tuple[aiohttp.ClientWebSocketResponse, str]:
        ws = await self.session.ws_connect(f"ws://127.0.0.1:{chat_port}/")
        await send(ws, type="LOGIN", room_id=room_id, token=token)
        return ws, (await frame_of(ws, "LOGIN", myself=True))["uuid"]

    async def close(self) -> None:
        await self.session.close()
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
            await asyncio.to_thread(proc.wait)
