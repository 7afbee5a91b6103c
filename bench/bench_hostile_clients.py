"""Hostile clients against a running server: the cost they can put on it, measured (run by hand).

    python bench/bench_hostile_clients.py big-bodies --url http://127.0.0.1:8080 --pid PID
        200 concurrent 10 MB bodies (half with a Content-Length, half chunked): the server's RSS
        before, at its peak and after.
    python bench/bench_hostile_clients.py idle-flood --url http://127.0.0.1:8080 --log server.log
        thousands of idle TCP connections held open while the API is asked: its answers and their
        time, and how many lines the server's log grew by.

Traffic goes only to the given URL (a server on this machine); every loop is bounded in count and time.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import resource
import time
from pathlib import Path
from urllib.parse import urlsplit

MB = 1024 * 1024
CHUNK = 64 * 1024
TARGET = "/api/v1/token/user"


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


async def push_body(host: str, port: int, size: int, chunked: bool, deadline: float) -> str:
    """Send one oversized form body; the status line the server answered with (or how it ended)."""
    reader, writer = await asyncio.open_connection(host, port)
    framing = b"Transfer-Encoding: chunked" if chunked else f"Content-Length: {size}".encode()
    writer.write(b"POST " + TARGET.encode() + b" HTTP/1.1\r\nHost: bench\r\n"
                 b"Content-Type: application/x-www-form-urlencoded\r\n" + framing + b"\r\n\r\n")
    writer.write(b"5\r\ncode=\r\n" if chunked else b"code=")
    sent, block = 5, b"x" * CHUNK
    try:
        while sent < size and time.monotonic() < deadline:
            data = block[: size - sent]
            writer.write(b"%x\r\n%s\r\n" % (len(data), data) if chunked else data)
            await writer.drain()
            sent += len(data)
        if chunked:
            writer.write(b"0\r\n\r\n")
            await writer.drain()
    except (ConnectionError, OSError):
        pass  # the server refused and closed: what it answered is still in our buffer
    try:
        status = await asyncio.wait_for(reader.readline(), max(0.1, deadline - time.monotonic()))
    except (ConnectionError, OSError, TimeoutError):
        status = b"(no answer)"
    writer.close()
    with contextlib.suppress(Exception):
        await writer.wait_closed()
    return status.decode(errors="replace").strip() or "(closed)"


async def big_bodies(args: argparse.Namespace) -> None:
    url = urlsplit(args.url)
    before = rss_mb(args.pid)
    peak = before
    deadline = time.monotonic() + args.timeout
    tasks = [asyncio.create_task(push_body(url.hostname, url.port, args.size * MB, i % 2 == 1, deadline))
             for i in range(args.clients)]
    while not all(t.done() for t in tasks):
        peak = max(peak, rss_mb(args.pid))
        await asyncio.sleep(0.02)
    answers: dict[str, int] = {}
    for task in tasks:
        answers[task.result()] = answers.get(task.result(), 0) + 1
    await asyncio.sleep(1)
    after = rss_mb(args.pid)
    print(f"{args.clients} concurrent {args.size} MB bodies to {TARGET} (half with Content-Length, half chunked)")
    print(f"answers: {answers}")
    print(f"server RSS: before {before:.1f} MB, peak {peak:.1f} MB (+{peak - before:.1f}), "
          f"after {after:.1f} MB (+{after - before:.1f})")


async def ask_api(host: str, port: int) -> tuple[str, float]:
    started = time.monotonic()
    reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), 10)
    writer.write(b"GET /api/v1/openapi.json HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
    status = (await asyncio.wait_for(reader.readline(), 10)).decode().strip()
    await asyncio.wait_for(reader.read(), 10)
    writer.close()
    return status, time.monotonic() - started


async def idle_flood(args: argparse.Namespace) -> None:
    url = urlsplit(args.url)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, args.connections + 256), hard))
    log = Path(args.log) if args.log else None
    lines_before = len(log.read_text(errors="replace").splitlines()) if log else 0
    held: list[asyncio.StreamWriter] = []
    failed = 0
    started = time.monotonic()
    for _ in range(args.connections):
        try:
            _, writer = await asyncio.wait_for(asyncio.open_connection(url.hostname, url.port), 5)
            held.append(writer)
        except (OSError, TimeoutError):
            failed += 1
    opened = time.monotonic() - started
    print(f"opened {len(held)} idle connections in {opened:.1f} s ({failed} failed to open)")
    for i in range(args.requests):
        status, took = await ask_api(url.hostname, url.port)
        print(f"  API request {i + 1} while flooded: {status!r} in {took * 1000:.0f} ms")
    await asyncio.sleep(args.hold)
    for i in range(args.requests):
        status, took = await ask_api(url.hostname, url.port)
        print(f"  API request {i + 1} after {args.hold:.0f} s more: {status!r} in {took * 1000:.0f} ms")
    for writer in held:
        writer.close()
    if log:
        grown = len(log.read_text(errors="replace").splitlines()) - lines_before
        print(f"server log grew by {grown} lines while {len(held)} idle connections were held "
              f"{opened + args.hold:.0f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    bodies = sub.add_parser("big-bodies", help="concurrent oversized bodies; the server's RSS")
    bodies.add_argument("--url", required=True, help="the server's base URL (on this machine)")
    bodies.add_argument("--pid", type=int, required=True, help="the server process whose RSS is read")
    bodies.add_argument("--clients", type=int, default=200)
    bodies.add_argument("--size", type=int, default=10, help="MB per body (default 10)")
    bodies.add_argument("--timeout", type=float, default=60.0, help="seconds the whole run may take")
    flood = sub.add_parser("idle-flood", help="idle connections held open; the API's answers")
    flood.add_argument("--url", required=True, help="the server's base URL (on this machine)")
    flood.add_argument("--connections", type=int, default=5000)
    flood.add_argument("--requests", type=int, default=3, help="API requests made during the flood")
    flood.add_argument("--hold", type=float, default=20.0, help="seconds the flood is held after opening")
    flood.add_argument("--log", help="the server's log file, to count the lines the flood added")
    args = parser.parse_args()
    asyncio.run(big_bodies(args) if args.command == "big-bodies" else idle_flood(args))


if __name__ == "__main__":
    main()
