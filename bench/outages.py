"""Outages under traffic: PostgreSQL and Redis stopped and frozen while clients use the server, and
Redis restarted under a chat of two server processes.

    python bench/outages.py [--outage 10] [--clients 8] [--chat-runs 3]

Every server is one of this run's own (tests/helpers/own_servers.py: the installed binaries, a temporary
directory), never a shared one. For each fault it prints the status and latency of the requests
made while the dependency was away, the server's log lines about it (and how many tracebacks), and
how long after the dependency came back the first request succeeded. For the chat it prints, per
run, how many acknowledged messages never reached a live viewer and how long until every message
sent after the restart had arrived.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from common import add_live  # noqa: E402  (bench/ is the script's directory)

from jiandong.lib import encoding  # noqa: E402
from tests.helpers.own_servers import OwnPostgres, OwnRedis  # noqa: E402
from tests.helpers.servers import free_port  # noqa: E402

DB_TIMEOUT, REDIS_TIMEOUT = 3.0, 2.0
# The chat's rooms (published lives) during the Redis restarts.
CHAT_ROOMS = (101, 102)


def log(message: str) -> None:
    print(message, flush=True)


class Server:
    """python server.py against the run's own PostgreSQL and Redis; its log kept in a file."""

    def __init__(self, directory: Path, database_url: str, redis_url: str, name: str) -> None:
        self.port = free_port()
        self.chat_port = free_port()
        self.log_path = directory / f"{name}.log"
        env = {
            **os.environ, "JIANDONG_DATABASE_URL": database_url, "JIANDONG_REDIS_URL": redis_url,
            "JIANDONG_REDIS_PREFIX": "outages:", "JIANDONG_VAR_DIR": str(directory / name),
            "JIANDONG_HOST": "127.0.0.1", "JIANDONG_DB_TIMEOUT": str(DB_TIMEOUT),
            "JIANDONG_REDIS_TIMEOUT": str(REDIS_TIMEOUT), "JIANDONG_CHAT_RATE_COUNT": "1000",
            "JIANDONG_CHAT_RATE_ADDRESS_COUNT": "0", "JIANDONG_CHAT_HISTORY_INTERVAL": "0.2",
        }
        self.log_file = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [sys.executable, "server.py", "--port", str(self.port), "--chat-port", str(self.chat_port)],
            cwd=ROOT, env=env, stdout=self.log_file, stderr=subprocess.STDOUT,
        )
        self.base = f"http://127.0.0.1:{self.port}"

    async def ready(self, session: aiohttp.ClientSession) -> None:
        for _ in range(300):
            try:
                async with session.get(f"{self.base}/api/v1/openapi.json") as resp:
                    if resp.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
        raise SystemExit(f"the server did not start; see {self.log_path}")

    def log_lines(self, start: int) -> list[str]:
        return self.log_path.read_text(errors="replace").splitlines()[start:]

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(30)
        self.log_file.close()


async def login(session: aiohttp.ClientSession, base: str, code: str) -> str:
    async with session.post(f"{base}/api/v1/token/user", data={"code": code}) as resp:
        return (await resp.json())["token"]


async def traffic(session: aiohttp.ClientSession, base: str, token: str, stop: asyncio.Event,
                  record: list[tuple[float, int, float]], fresh_tokens: bool) -> None:
    """Requests one after another until `stop`: (start, status, seconds) each."""
    while not stop.is_set():
        started = time.monotonic()
        # An unknown token needs Redis to be resolved; member/info needs PostgreSQL.
        headers = {"token": uuid.uuid4().hex if fresh_tokens else token}
        try:
            async with session.get(f"{base}/api/v1/member/info", headers=headers,
                                   timeout=aiohttp.ClientTimeout(total=60)) as resp:
                await resp.read()
                status = resp.status
        except (aiohttp.ClientError, asyncio.TimeoutError):
            status = 0
        record.append((started, status, time.monotonic() - started))
        await asyncio.sleep(0.05)


async def fault(session: aiohttp.ClientSession, server: Server, token: str, target: OwnPostgres | OwnRedis,
                kind: str, seconds: float, clients: int) -> None:
    name = "PostgreSQL" if isinstance(target, OwnPostgres) else "Redis"
    lines_before = len(server.log_lines(0))
    record: list[tuple[float, int, float]] = []
    stop = asyncio.Event()
    ok = 401 if isinstance(target, OwnRedis) else 404
    workers = [asyncio.create_task(traffic(session, server.base, token, stop, record, isinstance(target, OwnRedis)))
               for _ in range(clients)]
    await asyncio.sleep(1.0)
    down_at = time.monotonic()
    await asyncio.to_thread(target.stop if kind == "stopped" else target.freeze)
    await asyncio.sleep(seconds)
    await asyncio.to_thread(target.start if kind == "stopped" else target.thaw)
    up_at = time.monotonic()
    while not any(start >= up_at and status == ok for start, status, _ in record):
        if time.monotonic() - up_at > 60:
            break
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.5)
    stop.set()
    await asyncio.gather(*workers)
    during = [(status, took) for start, status, took in record if down_at <= start < up_at]
    statuses: dict[int, int] = {}
    for status, _ in during:
        statuses[status] = statuses.get(status, 0) + 1
    latencies = sorted(took for _, took in during)
    recovered = min((start + took - up_at for start, status, took in record if start >= up_at and status == ok),
                    default=float("nan"))
    lines = server.log_lines(lines_before)
    mentions = [line for line in lines if name in line and ("unavailable" in line or "is back" in line)]
    tracebacks = sum(line.startswith("Traceback") for line in lines)
    log(f"\n{name} {kind} for {seconds:.0f} s, {clients} clients:")
    log(f"  requests while away: {len(during)}, statuses {dict(sorted(statuses.items()))}")
    if latencies:
        log(f"  latency while away: p50 {statistics.median(latencies) * 1000:.0f} ms, "
            f"max {latencies[-1] * 1000:.0f} ms (timeout {DB_TIMEOUT if name == 'PostgreSQL' else REDIS_TIMEOUT} s)")
    log(f"  first success {recovered:.2f} s after it came back")
    log(f"  log lines about it: {len(mentions)}, tracebacks in the log meanwhile: {tracebacks}")
    for line in mentions:
        log(f"    {line[:200]}")


class Viewer:
    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.heard: list[str] = []
        self.heard_at: dict[str, float] = {}
        self.acked: list[str] = []
        self.errors = 0
        self.task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for msg in self.ws:
            if msg.type is not aiohttp.WSMsgType.TEXT or msg.data == "@heart":
                continue
            frame = encoding.loads(msg.data)
            if frame.get("type") == "SEND_ALL":
                if frame["myself"]:
                    self.acked.append(frame["content"])
                else:
                    self.heard.append(frame["content"])
                    self.heard_at.setdefault(frame["content"], time.monotonic())
            elif frame.get("type") == "ERROR":
                self.errors += 1


async def chat_restart(session: aiohttp.ClientSession, servers: list[Server], redis: OwnRedis, run: int) -> None:
    """Two processes, two rooms, a viewer of each room on each; Redis killed 6 s, then everyone talks."""
    tokens = [await login(session, s.base, f"chat-{i}") for i, s in enumerate(servers)]
    viewers: dict[tuple[int, int], Viewer] = {}
    for room in CHAT_ROOMS:
        for i, server in enumerate(servers):
            ws = await session.ws_connect(f"ws://127.0.0.1:{server.chat_port}/")
            await ws.send_str(encoding.dumps_str({"type": "LOGIN", "room_id": room, "token": tokens[i]}))
            viewers[room, i] = Viewer(ws)
    await asyncio.sleep(0.5)

    async def talk(label: str, count: int, pause: float) -> None:
        async def one(room: int, i: int) -> None:
            for n in range(count):
                content = f"{label}-{run}-{room}-{i}-{n}"
                await viewers[room, i].ws.send_str(encoding.dumps_str(
                    {"type": "SEND_ALL", "room_id": room, "token": tokens[i], "content": content}))
                await asyncio.sleep(pause)
        await asyncio.gather(*(one(room, i) for room, i in viewers))

    await talk("before", 3, 0.05)
    await asyncio.to_thread(redis.kill)
    await asyncio.sleep(6)
    await asyncio.to_thread(redis.start)
    back = time.monotonic()
    await talk("after", 40, 0.05)

    def lost() -> int:
        missing = 0
        for (room, i), viewer in viewers.items():
            other = viewers[room, 1 - i]
            missing += sum(1 for content in other.acked if content not in viewer.heard)
        return missing

    deadline = time.monotonic() + 20
    while lost() and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    complete = time.monotonic() - back
    # Fan-out resumed: the first message sent since the restart that a viewer heard (each viewer hears
    # only the other process's).
    resumed = min((at for v in viewers.values() for content, at in v.heard_at.items() if content.startswith("after")),
                  default=float("nan")) - back
    acked = sum(len(v.acked) for v in viewers.values())
    duplicates = sum(len(v.heard) - len(set(v.heard)) for v in viewers.values())
    log(f"  run {run}: {acked} messages acknowledged, {lost()} never reached a live viewer, {duplicates} duplicates;"
        f" fan-out resumed {resumed:.2f} s after Redis came back; every message sent since (40 per sender"
        f" over 2 s) had arrived {complete:.2f} s after it did"
        f" ({sum(v.errors for v in viewers.values())} sends refused while it was down or returning)")
    for viewer in viewers.values():
        await viewer.ws.close()
        viewer.task.cancel()


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--outage", type=float, default=10.0, help="seconds each dependency stays away")
    parser.add_argument("--clients", type=int, default=8, help="clients making requests meanwhile")
    parser.add_argument("--chat-runs", type=int, default=3, help="Redis restarts under the chat")
    parser.add_argument("--chat-only", action="store_true", help="only the Redis restarts under the chat")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="jiandong-outages-") as tmp:
        directory = Path(tmp)
        postgres, redis = OwnPostgres(), OwnRedis(directory / "redis")
        await asyncio.to_thread(postgres.start)
        await asyncio.to_thread(redis.start)
        servers: list[Server] = []
        try:
            database = await asyncio.to_thread(postgres.create_database, "club")
            async with aiohttp.ClientSession() as session:
                server = Server(directory, database, redis.url, "server")
                servers.append(server)
                await server.ready(session)
                token = await login(session, server.base, "outage")
                for target in () if args.chat_only else (postgres, redis):
                    for kind in ("stopped", "frozen"):
                        await fault(session, server, token, target, kind, args.outage, args.clients)
                log("\nRedis killed for 6 s under a chat of two processes and two rooms:")
                for room in CHAT_ROOMS:
                    await asyncio.to_thread(add_live, database, room)
                second = Server(directory, database, redis.url, "second")
                servers.append(second)
                await second.ready(session)
                for run in range(1, args.chat_runs + 1):
                    await chat_restart(session, servers, redis, run)
        finally:
            for server in servers:
                server.stop()
            postgres.close()
            redis.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
