"""Live-room fan-out: one room of many websocket clients, one sender, delivery latency and server CPU per delivery.

    python bench/bench_fanout.py [--clients 2000] [--rate 20] [--duration 10] [--procs 2] [--smoke]
    python bench/bench_fanout.py --two-processes     # the room over two server processes (the Redis hop)
    python bench/bench_fanout.py --workers 2 --rate 200   # one server.py --workers 2: the viewers split
                                                     # over its workers by the kernel (deliveries/s)
    python bench/bench_fanout.py --idle 10000        # idle connections: server memory per connection
    python bench/bench_fanout.py --stalled 20        # 20 of the clients stop reading: are they dropped, and
                                                     # does the rest of the room keep its latency?
    python bench/bench_fanout.py --all               # the bare loop (bench/bare_fanout_server.py), then
                                                     # all four of ours, one after the other, in one run
    python bench/bench_fanout.py --sweep 1,5,10,20,50  # one process at each rate, batching on (the server's
                                                     # default window, or --batch-window) and off: where
                                                     # batching starts to pay (CPU per delivery, p50, p99)

Starts `python server.py` (two with --two-processes; a database `jiandong_bench_fanout` of its own,
Redis at --redis-url, embedded servers when those do not answer), connects the clients to one room
at /ws from --procs client processes, logs one sender in and has it SEND_ALL --rate times a second
for --duration seconds with its send time in the content. Each client notes the delay of each
message; the run prints delivered / expected, p50 and p99 latency, and the server's user+sys CPU
time over the broadcast window divided by the deliveries.

With --stalled, the stalled clients connect as an internet client would (an MSS of 1400 bytes, a
small receive buffer; on loopback the kernel would otherwise buffer megabytes for them), every
message carries 450 characters, and the server's chat_buffer_limit is 64 KiB, so that the stalled
clients fall behind within the run. At the end they read again and count as dropped when the
server has closed their connection.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import re
import resource
import socket
import statistics
import sys
import time
import typing
from urllib.parse import urlsplit

# bench/ is the script's directory, so its modules import by name.
from common import (
    add_live,
    bench_run,
    cpu_times,
    log,
    login,
    parser,
    server_pid,
    start_app,
    start_bare_fanout,
    start_socketio_fanout,
)

DATABASE = "jiandong_bench_fanout"
ROOM = 1
# A SEND_ALL of the sender, as the server frames it: the content survives sanitising unchanged.
STAMP = re.compile(r'"content": ?"fanout (\d+) ([0-9.]+)')
STALLED_PAD = "球" * 450
STALLED_BUFFER_LIMIT = 65536
STALLED_MSS = 1400
STALLED_RCVBUF = 4096
CONNECT_BATCH = 100
def parse_args() -> typing.Any:
    p = parser(__doc__, DATABASE)
    p.add_argument("--clients", type=int, default=2000, help="websocket clients in the room (default 2000)")
    p.add_argument("--rate", type=float, default=20.0, help="SEND_ALL per second (default 20)")
    p.add_argument("--procs", type=int, default=2, help="client processes (default 2)")
    p.add_argument("--two-processes", action="store_true", help="split the room over two server processes")
    p.add_argument("--workers", type=int, default=1, help="server.py --workers N (one server; default 1)")
    p.add_argument("--batch-window", type=float, metavar="S",
                   help="the server's chat_batch_window (default: the server's own default)")
    p.add_argument("--idle", type=int, metavar="N", help="only open N idle connections and print memory per connection")
    p.add_argument("--stalled", type=int, metavar="N", default=0, help="N of the clients stop reading after joining")
    p.add_argument("--bare", action="store_true", help="only the bare aiohttp loop (bench/bare_fanout_server.py)")
    p.add_argument("--socketio", action="store_true",
                   help="only python-socketio with its Redis manager (bench/socketio_fanout_server.py; bench extra)")
    p.add_argument("--compare", action="store_true",
                   help="the bare loop, one server process and python-socketio in one run, with the ratios")
    p.add_argument("--sweep", metavar="RATES", help="comma-separated SEND_ALL rates: batching on and off at each")
    p.add_argument("--all", action="store_true",
                   help="one process, two processes, --stalled 20 and --idle 10000 in turn (or scaled to --smoke)")
    args = p.parse_args()
    if args.smoke:
        args.clients, args.duration, args.procs = 50, 2, 1
        if args.idle:
            args.idle = 50
        if args.stalled:
            args.stalled = 2
    if args.clients < 1 or args.duration < 1 or args.rate <= 0 or args.procs < 1:
        p.error("--clients, --duration, --rate and --procs must be positive")
    if not 0 <= args.stalled < args.clients:
        p.error("--stalled must be less than --clients")
    return args


# --- the server process --------------------------------------------------------------------------

def rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise SystemExit("no VmRSS")


def raise_fd_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


# --- clients -------------------------------------------------------------------------------------

def client_process(urls: list[str], expected: int, ready: typing.Any, go: typing.Any, stop: typing.Any,
                   stalled: int) -> tuple[list[float], int, int]:
    raise_fd_limit()
    return asyncio.run(clients(urls, expected, ready, go, stop, stalled))


class Viewer(asyncio.Protocol):
    """A websocket client reduced to what a viewer does: the upgrade, then reading server frames.

    aiohttp's client wakes a task per message, which at tens of thousands of messages a second
    costs the client processes more than the server; this one handles each chunk in its callback,
    so the latency measured is the server's, not the harness's.
    """

    def __init__(self, request: bytes, on_text: typing.Callable[[bytes], None], socketio: bool = False) -> None:
        self.request = request
        self.on_text = on_text
        # Engine.IO 4 over a websocket (python-socketio): "0{...}" opens, "40" joins the namespace, "2" pings.
        self.socketio = socketio
        self.joined = asyncio.get_running_loop().create_future()
        self.lost = asyncio.get_running_loop().create_future()
        self.buffer = bytearray()
        self.upgraded = False
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = typing.cast(asyncio.Transport, transport)
        self.transport.write(self.request)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.joined.done():
            self.joined.set_exception(ConnectionError(f"closed before the LOGIN echo: {exc}"))
        self.lost.set_result(None)

    def data_received(self, data: bytes) -> None:
        buf = self.buffer
        buf += data
        if not self.upgraded:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return
            if not buf.startswith(b"HTTP/1.1 101"):
                self.joined.set_exception(ConnectionError(bytes(buf[:200]).decode(errors="replace")))
                return
            del buf[:end + 4]
            self.upgraded = True
        while len(buf) >= 2:
            n, start = buf[1] & 0x7F, 2
            if n == 126:
                if len(buf) < 4:
                    return
                n, start = int.from_bytes(buf[2:4]), 4
            elif n == 127:
                if len(buf) < 10:
                    return
                n, start = int.from_bytes(buf[2:10]), 10
            if len(buf) < start + n:
                return
            opcode, payload = buf[0] & 0x0F, bytes(buf[start:start + n])
            del buf[:start + n]
            if opcode == 1 and self.socketio:
                self._socketio(payload)
            elif opcode == 1:
                if self.joined.done():
                    self.on_text(payload)
                elif b'"myself":true' in payload:
                    self.joined.set_result(None)
            elif opcode == 9:
                # A pong, masked as a client must, with the zero key (the payload stays as it is).
                assert self.transport is not None
                self.transport.write(bytes((0x8A, 0x80 | len(payload))) + b"\0\0\0\0" + payload)


    def _socketio(self, payload: bytes) -> None:
        if payload.startswith(b"42"):
            if self.joined.done():
                self.on_text(payload)
        elif payload.startswith(b"40"):
            if not self.joined.done():
                self.joined.set_result(None)
        elif payload.startswith(b"0"):
            self.send_text(b"40")
        elif payload == b"2":
            self.send_text(b"3")

    def send_text(self, payload: bytes) -> None:
        """A short text frame, masked as a client must, with the zero key."""
        assert self.transport is not None and len(payload) < 126
        self.transport.write(bytes((0x81, 0x80 | len(payload))) + b"\0\0\0\0" + payload)


def is_socketio(url: str) -> bool:
    return "/socket.io/" in url


async def clients(urls: list[str], expected: int, ready: typing.Any, go: typing.Any, stop: typing.Any,
                  stalled: int) -> tuple[list[float], int, int]:
    """Connect every url (joined by ?room_id=), wait for each LOGIN echo, then record the delay of each stamped message.

    The first `stalled` clients stop reading once joined; the result counts those the server dropped.
    """
    latencies: list[float] = []
    received = 0
    want = expected * (len(urls) - stalled)
    done = asyncio.Event()
    stamp = re.compile(STAMP.pattern.encode())
    clock = time.time

    def on_text(payload: bytes) -> None:
        nonlocal received
        match = stamp.search(payload)
        if match:
            latencies.append(clock() - float(match.group(2)))
            received += 1
            if received == want:
                done.set()

    loop = asyncio.get_running_loop()
    viewers: list[Viewer] = []
    stuck: list[Viewer] = []

    async def open_one(url: str, stall: bool) -> None:
        parts = urlsplit(url)
        request = (f"GET {parts.path}?{parts.query} HTTP/1.1\r\nHost: {parts.netloc}\r\nUpgrade: websocket\r\n"
                   "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                   "Sec-WebSocket-Version: 13\r\n\r\n").encode()
        sock = socket.socket()
        if stall:
            # Before connecting, so the SYN announces them: the server's send side sizes itself on them.
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG, STALLED_MSS)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, STALLED_RCVBUF)
        sock.setblocking(False)
        await loop.sock_connect(sock, (parts.hostname, parts.port))
        _, viewer = await loop.create_connection(
            lambda: Viewer(request, on_text if not stall else _ignore, is_socketio(url)), sock=sock)
        await asyncio.wait_for(viewer.joined, 60)
        if stall:
            assert viewer.transport is not None
            viewer.transport.pause_reading()
            stuck.append(viewer)
        viewers.append(viewer)

    for start in range(0, len(urls), CONNECT_BATCH):
        batch = enumerate(urls[start:start + CONNECT_BATCH], start)
        await asyncio.gather(*(open_one(u, i < stalled) for i, u in batch))
    ready.put(len(viewers))
    await loop.run_in_executor(None, go.wait)
    # Until every message came, or the main process says it is over; polled, since a thread blocked
    # on the manager's event would hold up the exit.
    while not (want and done.is_set()):
        try:
            await asyncio.wait_for(done.wait(), 0.2)
        except TimeoutError:
            pass
        if await loop.run_in_executor(None, stop.is_set):
            break
    # The stalled read again: what the server queued, then its close, or at once its reset.
    for viewer in stuck:
        if viewer.transport is not None and not viewer.transport.is_closing():
            viewer.transport.resume_reading()
    if stuck:
        await asyncio.wait([asyncio.ensure_future(v.lost) for v in stuck], timeout=10)
    dropped = sum(1 for v in stuck if v.lost.done())
    for viewer in viewers:
        if viewer.transport is not None:
            viewer.transport.close()
    return latencies, received, dropped


def _ignore(payload: bytes) -> None:
    """A stalled client's messages: not counted (they are the ones it missed)."""


class Fleet:
    """Client processes, each with its share of the urls."""

    def __init__(self, shares: list[list[str]], expected: int, stalled: int = 0) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.manager = ctx.Manager()
        self.ready, self.go, self.stop = self.manager.Queue(), self.manager.Event(), self.manager.Event()
        self.pool = ctx.Pool(len(shares))
        # The stalled clients spread over the client processes.
        stalls = [stalled // len(shares) + (1 if i < stalled % len(shares) else 0) for i in range(len(shares))]
        self.results = [
            self.pool.apply_async(client_process, (share, expected, self.ready, self.go, self.stop, stall))
            for share, stall in zip(shares, stalls, strict=True)
        ]
        self.size = len(shares)

    def wait_ready(self, timeout: float = 300) -> int:
        n = 0
        deadline = time.monotonic() + timeout
        for _ in range(self.size):
            try:
                n += self.ready.get(timeout=max(1, deadline - time.monotonic()))
            except Exception:
                for result in self.results:
                    if result.ready():
                        result.get()  # raises the client's failure
                raise SystemExit("the clients did not connect in time") from None
        return n

    def finish(self, grace: float = 0, timeout: float = 120) -> list[tuple[list[float], int, int]]:
        """The clients' results: they stop on their own once all came, or `grace` seconds from now."""
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and not all(result.ready() for result in self.results):
            time.sleep(0.05)
        self.go.set()
        self.stop.set()
        out = [result.get(timeout) for result in self.results]
        self.pool.close()
        self.pool.join()
        self.manager.shutdown()
        return out


def split(urls: list[str], parts: int) -> list[list[str]]:
    return [urls[i::parts] for i in range(parts) if urls[i::parts]]


# --- the sender ----------------------------------------------------------------------------------

async def send(url: str, token: str, rate: float, duration: float, pad: str = "") -> int:
    """SEND_ALL `rate` times a second on a fixed schedule (never waiting for acknowledgements); how many were acked."""
    import aiohttp

    from jiandong.lib import encoding

    count = int(rate * duration)
    socketio = is_socketio(url)
    async with aiohttp.ClientSession() as session, session.ws_connect(url, autoping=True) as ws:
        if socketio:
            while not (await ws.receive()).data.startswith("0"):
                pass
            await ws.send_str("40")
            while not (await ws.receive()).data.startswith("40"):
                pass
        else:
            await ws.send_str(encoding.dumps_str({"type": "LOGIN", "room_id": str(ROOM), "token": token}))
            while '"myself":true' not in (await ws.receive()).data:
                pass
        acked = 0

        async def acks() -> None:
            nonlocal acked
            async for msg in ws:
                if msg.type is aiohttp.WSMsgType.TEXT:
                    if socketio and msg.data == "2":
                        await ws.send_str("3")
                    if '"type":"ERROR"' in msg.data:
                        raise SystemExit(f"sender: {msg.data}")
                    if '"myself":true' in msg.data and STAMP.search(msg.data):
                        acked += 1
                        if acked == count:
                            return

        reader = asyncio.create_task(acks())
        start = time.monotonic()
        for i in range(count):
            delay = start + i / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            content = f"fanout {i} {time.time():.6f} {pad}".rstrip()
            if socketio:
                await ws.send_str("42" + encoding.dumps_str(["send_all", {"content": content}]))
            else:
                await ws.send_str(encoding.dumps_str(
                    {"type": "SEND_ALL", "room_id": str(ROOM), "token": token, "content": content}))
        try:
            await asyncio.wait_for(reader, 30)
        except TimeoutError:
            reader.cancel()
        return acked


# --- the runs ------------------------------------------------------------------------------------

def quantile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def ws_url(base: str) -> str:
    return base.replace("http://", "ws://") + "/ws"


class Result(typing.NamedTuple):
    failed: int  # 0 = everything delivered
    p50: float  # seconds
    cpu_per_delivery: float  # microseconds
    p99: float  # seconds


def room_url(base: str, kind: str) -> str:
    if kind == "socketio":
        return base.replace("http://", "ws://") + "/socket.io/?EIO=4&transport=websocket"
    return f"{ws_url(base)}?room_id={ROOM}"


def fanout(args: typing.Any, bases: list[str], stalled: int = 0, kind: str = "jiandong") -> Result:
    """One room's fan-out through `bases`: kind "jiandong" (server.py), "bare" or "socketio"."""
    bare = kind != "jiandong"
    token = "" if bare else login(bases[0])
    pids = [server_pid(int(b.rsplit(":", 1)[1])) for b in bases]
    expected = int(args.rate * args.duration)
    # Clients half on each server; every client process gets clients of one server only.
    procs_per_server = max(1, args.procs // len(bases))
    groups = []
    for index, base in enumerate(bases):
        n = args.clients // len(bases) + (1 if index < args.clients % len(bases) else 0)
        groups.append(split([room_url(base, kind)] * n, procs_per_server))
    shares = [share for group in groups for share in group]
    log(f"connecting {args.clients} clients from {len(shares)} process(es) ...")
    fleet = Fleet(shares, expected, stalled)
    try:
        connected = fleet.wait_ready()
        log(f"{connected} clients in room {ROOM}{f', {stalled} of them stalled' if stalled else ''};"
            f" sending {expected} SEND_ALL over {args.duration} s ...")
        time.sleep(2 * 1.0 + 0.5)  # the viewer counts settle (two count rounds) before the window
        fleet.go.set()
        cpu_before = [cpu_times(pid) for pid in pids]
        started = time.monotonic()
        sender = room_url(bases[0], kind) if kind == "socketio" else ws_url(bases[0])
        acked = asyncio.run(send(sender, token, args.rate, args.duration, STALLED_PAD if stalled else ""))
        results = fleet.finish(grace=10)
        window = time.monotonic() - started
        cpu_after = [cpu_times(pid) for pid in pids]
        user = sum(a[0] - b[0] for a, b in zip(cpu_after, cpu_before, strict=True))
        system = sum(a[1] - b[1] for a, b in zip(cpu_after, cpu_before, strict=True))
    except BaseException:
        fleet.pool.terminate()
        raise

    delivered = sum(r[1] for r in results)
    dropped = sum(r[2] for r in results)
    want = expected * (connected - stalled)
    latencies = [x for r in results for x in r[0]]
    per_delivery = (user + system) / delivered * 1e6 if delivered else float("nan")
    server = {"bare": "the bare aiohttp loop", "socketio": "python-socketio with its Redis manager"}.get(
        kind, f"{len(bases)} server process(es)" + (f" of {args.workers} workers" if args.workers > 1 else ""))
    print(f"clients {connected}, {server}, {args.rate:g} SEND_ALL/s for {args.duration} s"
          f" ({acked}/{expected} acknowledged)")
    if stalled:
        print(f"stalled clients        {stalled}, of which the server dropped {dropped}"
              f" (messages of {len(STALLED_PAD)} characters, chat_buffer_limit {STALLED_BUFFER_LIMIT})")
    print(f"delivered / expected   {delivered} / {want} ({100 * delivered / want:.2f} %)"
          + (" to the clients that read" if stalled else ""))
    print(f"latency p50            {1000 * quantile(latencies, 0.5):8.1f} ms")
    print(f"latency p99            {1000 * quantile(latencies, 0.99):8.1f} ms")
    print(f"latency max            {1000 * max(latencies, default=float('nan')):8.1f} ms")
    print(f"deliveries per second  {delivered / window:8.0f}")
    print(f"server CPU             {user + system:8.2f} s over {window:.1f} s"
          f" = {per_delivery:.2f} µs per delivery" + ("" if bare else " (target <= 8)"))
    print(f"  of which             user {user:.2f} s, system {system:.2f} s")
    if len(bases) == 2:
        near = [x for r in results[:len(groups[0])] for x in r[0]]
        far = [x for r in results[len(groups[0]):] for x in r[0]]
        # Every message goes through Redis, to the sender's own process too: this compares two subscribers.
        print(f"p50 on the sender's process {1000 * statistics.median(near):.1f} ms,"
              f" on the other {1000 * statistics.median(far):.1f} ms"
              f" ({1000 * (statistics.median(far) - statistics.median(near)):+.1f} ms)")
    failed = int(not (delivered == want and acked == expected and dropped == stalled))
    return Result(failed, quantile(latencies, 0.5), per_delivery, quantile(latencies, 0.99))


def idle(args: typing.Any, base: str) -> int:
    pid = server_pid(int(base.rsplit(":", 1)[1]))
    time.sleep(1)
    before = rss_bytes(pid)
    urls = [f"{ws_url(base)}?room_id={ROOM}"] * args.idle
    log(f"opening {args.idle} idle connections from {args.procs} process(es) ...")
    fleet = Fleet(split(urls, args.procs), 0)
    try:
        connected = fleet.wait_ready(600)
        time.sleep(3)  # a few viewer-count rounds reach every socket
        after = rss_bytes(pid)
        fleet.finish()
    except BaseException:
        fleet.pool.terminate()
        raise
    print(f"idle connections       {connected}")
    print(f"server RSS             {before / 2**20:.1f} MiB -> {after / 2**20:.1f} MiB")
    print(f"per connection         {(after - before) / connected / 1024:.1f} KiB")
    return 0 if connected == args.idle else 1


def scenario(args: typing.Any, name: str) -> Result:
    """One scenario, on servers of its own: "bare", "socketio", "one", "two", "stalled" or "idle"."""
    if name == "stalled" and args.smoke:
        # Enough bytes for the stalled clients to fall behind within a smoke run.
        args = argparse.Namespace(**{**vars(args), "rate": 100.0, "duration": 3})
    with bench_run(args, DATABASE) as run:
        # One sender at full speed: neither its own limit nor its address's may hold it back.
        run.env.update(JIANDONG_CHAT_RATE_COUNT=str(int(args.rate * args.duration) + 100),
                       JIANDONG_CHAT_RATE_ADDRESS_COUNT="0",
                       # Every viewer connects from 127.0.0.1 (idle: 10,000 of them), the sender holds one socket
                       # per process: the per-address cap and the chat's share of the process must let them in.
                       JIANDONG_CHAT_MAX_PER_ADDRESS="1000000", JIANDONG_MAX_CONNECTIONS="30000",
                       JIANDONG_CHAT_CONNECTION_SHARE="0.9")
        if args.batch_window is not None:
            run.env.update(JIANDONG_CHAT_BATCH_WINDOW=str(args.batch_window))
        if name == "stalled":
            run.env.update(JIANDONG_CHAT_BUFFER_LIMIT=str(STALLED_BUFFER_LIMIT))
        if name == "bare":
            return fanout(args, [start_bare_fanout(run)], kind="bare")
        if name == "socketio":
            return fanout(args, [start_socketio_fanout(run)], kind="socketio")
        workers = ("--workers", str(args.workers)) if args.workers > 1 else ()
        bases = [start_app(run, *workers) for _ in range(2 if name == "two" else 1)]
        add_live(run.env["JIANDONG_DATABASE_URL"], ROOM)
        if name == "idle":
            return Result(idle(args, bases[0]), float("nan"), float("nan"), float("nan"))
        return fanout(args, bases, args.stalled if name == "stalled" else 0)


def sweep(args: typing.Any, rates: list[float]) -> int:
    """One server process at each rate, with the batch window and with none; a table of the two."""
    rows, status = [], 0
    for rate in rates:
        row = [rate]
        for window in (args.batch_window, 0.0):
            print(f"\n== {rate:g} SEND_ALL/s, batch window {'default' if window is None else window}", flush=True)
            result = scenario(argparse.Namespace(**{**vars(args), "rate": rate, "batch_window": window}), "one")
            status |= result.failed
            row += [result.cpu_per_delivery, result.p50, result.p99]
        rows.append(row)
    print(f"\n{'rate/s':>7} | {'batched: µs/delivery':>20} {'p50 ms':>7} {'p99 ms':>7} | "
          f"{'at once: µs/delivery':>20} {'p50 ms':>7} {'p99 ms':>7} | CPU batched/at once")
    for rate, cpu_b, p50_b, p99_b, cpu_o, p50_o, p99_o in rows:
        print(f"{rate:7g} | {cpu_b:20.2f} {1000 * p50_b:7.1f} {1000 * p99_b:7.1f} | "
              f"{cpu_o:20.2f} {1000 * p50_o:7.1f} {1000 * p99_o:7.1f} | {cpu_b / cpu_o:.2f}")
    return status


def compare(args: typing.Any) -> int:
    """The bare loop, one server process and python-socketio (with Redis), one after the other: CPU per delivery
    and p99 of each, and the ratios the speed targets are stated in."""
    results = {}
    for name, title in (("bare", "the bare aiohttp loop"), ("one", "one server process"),
                        ("socketio", "python-socketio with its Redis manager")):
        print(f"\n== {title}", flush=True)
        results[name] = scenario(args, name)
    bare, one, sio = results["bare"], results["one"], results["socketio"]
    ratio = one.cpu_per_delivery / bare.cpu_per_delivery
    print(f"\nCPU per delivery: server {one.cpu_per_delivery:.2f} µs = {ratio:.2f}x"
          f" the bare loop's, python-socketio {sio.cpu_per_delivery:.2f} µs ="
          f" {sio.cpu_per_delivery / one.cpu_per_delivery:.1f}x the server's")
    print(f"p99: server {1000 * one.p99:.1f} ms = {one.p99 / bare.p99:.2f}x the bare loop's {1000 * bare.p99:.1f} ms,"
          f" python-socketio {1000 * sio.p99:.1f} ms")
    return bare.failed | one.failed | sio.failed


def main() -> int:
    args = parse_args()
    # The servers inherit the limit: 10,000 sockets need more than the usual 1024 descriptors.
    raise_fd_limit()
    if args.sweep:
        return sweep(args, [float(rate) for rate in args.sweep.split(",")])
    if args.compare:
        return compare(args)
    if not args.all:
        name = "bare" if args.bare else "socketio" if args.socketio else "idle" if args.idle else \
            "stalled" if args.stalled else "two" if args.two_processes else "one"
        return scenario(args, name).failed
    args.idle = args.idle or (50 if args.smoke else 10000)
    args.stalled = args.stalled or (2 if args.smoke else 20)
    status = 0
    results: dict[str, Result] = {}
    for name, title in (("bare", "the bare aiohttp loop (no Redis, presence or history): the baseline"),
                        ("one", "one server process"), ("two", "the room over two server processes"),
                        ("stalled", f"{args.stalled} stalled readers in the room"),
                        ("idle", f"{args.idle} idle connections")):
        print(f"\n== {title}", flush=True)
        result = results[name] = scenario(args, name)
        status |= result.failed
        if name == "one":
            ratio = result.cpu_per_delivery / results["bare"].cpu_per_delivery
            print(f"CPU per delivery against the bare loop: {ratio:.2f}")
        if name == "two":
            print(f"two processes against one: p50 {1000 * (result.p50 - results['one'].p50):+.1f} ms")
        sys.stdout.flush()
    return status


if __name__ == "__main__":
    sys.exit(main())
