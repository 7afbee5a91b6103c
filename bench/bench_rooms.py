"""Many live rooms over two server processes, on one Redis and on a Redis Cluster in one run: deliveries/s,
latency, server CPU per delivery and each Redis node's CPU per message.

    python bench/bench_rooms.py [--rooms 20] [--viewers 100] [--big 2000] [--rate 2] [--big-rate 20]
                                [--duration 10] [--procs 2] [--only single|cluster] [--own-redis] [--smoke]

Starts two `python server.py` processes (a database `jiandong_bench_rooms` of its own, a Redis prefix of
its own), `--rooms` rooms of `--viewers` websocket viewers and one room of `--big` viewers, each room's
viewers split over the two processes, from `--procs` client processes. Each room has a sender of its own,
on the process that holds fewer of the room's viewers (so every message crosses Redis to the other one
too), sending SEND_ALL `--rate` times a second (`--big-rate` in the big room) for `--duration` seconds
with its send time in the content.

It runs twice: on the single Redis at --redis-url (embedded when nothing answers there; with --own-redis
a redis-server of its own, whose CPU no other client shares), then on a Redis Cluster of three masters and
three replicas it starts itself (tests/helpers/cluster.py; needs Redis 7, else only the single Redis runs).
Each run prints delivered / expected, deliveries per second, p50 and p99 latency, both server processes'
user+sys CPU over the broadcast window per delivery, and for each Redis node its CPU over the window
(INFO cpu) per message sent, beside the rooms whose slot its shard owns, the messages sent in them, its
idle CPU just before and the commands it ran most: where on a cluster a room's traffic costs CPU. A table
comparing the two runs comes last.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import multiprocessing
import re
import resource
import shutil
import socket
import sys
import time
import typing
from urllib.parse import urlsplit

# bench/ is the script's directory, so its modules import by name.
from bench_fanout import CONNECT_BATCH, Viewer, quantile, raise_fd_limit, ws_url
from common import ROOT, Run, add_live, bench_run, cpu_times, free_port, log, parser, request, server_pid, start

DATABASE = "jiandong_bench_rooms"
# A sender's SEND_ALL as the server frames it: `rooms <room> <n> <send time>` survives sanitising unchanged.
STAMP = re.compile(r'"content": ?"rooms (\d+) (\d+) ([0-9.]+)')
# The viewer counts settle (two count rounds) before the window; the Redis nodes' idle CPU is read meanwhile.
SETTLE = 2.5
# How long the clients may take after the last send to receive what is still on its way.
GRACE = 10.0
# Descriptors a process needs beyond its sockets (the interpreter, logs, Redis and database pools).
SPARE_FDS = 200


def parse_args() -> typing.Any:
    p = parser(__doc__, DATABASE)
    p.add_argument("--rooms", type=int, default=20, help="small rooms (default 20)")
    p.add_argument("--viewers", type=int, default=100, help="websocket viewers per small room (default 100)")
    p.add_argument("--big", type=int, default=2000, help="viewers of the big room, 0 for none (default 2000)")
    p.add_argument("--rate", type=float, default=2.0, help="SEND_ALL per second in each small room (default 2)")
    p.add_argument("--big-rate", type=float, default=20.0, help="SEND_ALL per second in the big room (default 20)")
    p.add_argument("--procs", type=int, default=2, help="client processes (default 2)")
    p.add_argument("--only", choices=["single", "cluster"], help="run on one kind of Redis only")
    p.add_argument("--own-redis", action="store_true",
                   help="the single-Redis run on a redis-server of its own (as a cluster node is configured), not"
                        " --redis-url: its CPU figures then hold no other client's work")
    args = p.parse_args()
    if args.smoke:
        args.rooms, args.viewers, args.big, args.duration, args.procs = 4, 10, 100, 2, 1
    if args.rooms < 0 or args.viewers < 1 or args.big < 0 or args.rooms + (args.big > 0) < 1:
        p.error("at least one room: --rooms and --big must not be negative, --viewers must be positive")
    if args.duration < 1 or args.rate <= 0 or args.big_rate <= 0 or args.procs < 1:
        p.error("--duration, --rate, --big-rate and --procs must be positive")
    return args


# --- the rooms -----------------------------------------------------------------------------------

class Room(typing.NamedTuple):
    id: int
    big: bool
    rate: float  # SEND_ALL per second
    messages: int  # SEND_ALL over the run
    # viewers on server 0 and on server 1; the sender goes to `sender_on`, one with the fewest
    viewers: tuple[int, int]
    sender_on: int


def plan(args: typing.Any) -> list[Room]:
    """The small rooms (ids 1..N) and the big one (N+1); the odd viewer and, on a tie, the sender alternate."""
    rooms = []
    sizes = [(args.viewers, False)] * args.rooms + ([(args.big, True)] if args.big else [])
    for index, (size, big) in enumerate(sizes):
        more = index % 2
        split = [0, 0]
        split[more], split[1 - more] = size - size // 2, size // 2
        rate = args.big_rate if big else args.rate
        rooms.append(Room(index + 1, big, rate, int(rate * args.duration), (split[0], split[1]), 1 - more))
    return rooms


def describe(rooms: list[Room], args: typing.Any) -> str:
    small = [r for r in rooms if not r.big]
    parts = [f"{len(small)} x {args.viewers} at {args.rate:g}/s"] if small else []
    parts += [f"1 x {args.big} at {args.big_rate:g}/s"] if len(small) < len(rooms) else []
    return f"{sum(sum(r.viewers) for r in rooms)} viewers in {len(rooms)} rooms ({', '.join(parts)})"


# --- viewers -------------------------------------------------------------------------------------

class Seen(typing.NamedTuple):
    """What one client process saw: each room's delays (s), the stamped messages received, how many of those
    belonged to another room than the viewer's."""

    latencies: dict[int, list[float]]
    received: int
    misrouted: int


def client_process(viewers: list[tuple[str, int]], want: int, ready: typing.Any, go: typing.Any,
                   stop: typing.Any) -> Seen:
    raise_fd_limit()
    return asyncio.run(watch(viewers, want, ready, go, stop))


async def watch(viewers: list[tuple[str, int]], want: int, ready: typing.Any, go: typing.Any,
                stop: typing.Any) -> Seen:
    """Connect each (url, room) viewer, wait for its LOGIN echo, then note the delay of each stamped message
    until `want` came or the main process says it is over."""
    latencies: dict[int, list[float]] = {}
    received = misrouted = 0
    done = asyncio.Event()
    stamp = re.compile(STAMP.pattern.encode())
    clock = time.time

    def on_text(room: int, payload: bytes) -> None:
        nonlocal received, misrouted
        match = stamp.search(payload)
        if match:
            latencies.setdefault(room, []).append(clock() - float(match.group(3)))
            misrouted += int(match.group(1)) != room
            received += 1
            if received == want:
                done.set()

    loop = asyncio.get_running_loop()
    opened: list[Viewer] = []

    async def open_one(url: str, room: int) -> None:
        parts = urlsplit(url)
        upgrade = (f"GET {parts.path}?{parts.query} HTTP/1.1\r\nHost: {parts.netloc}\r\nUpgrade: websocket\r\n"
                   "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                   "Sec-WebSocket-Version: 13\r\n\r\n").encode()
        sock = socket.socket()
        sock.setblocking(False)
        await loop.sock_connect(sock, (parts.hostname, parts.port))
        _, viewer = await loop.create_connection(lambda: Viewer(upgrade, functools.partial(on_text, room)), sock=sock)
        await asyncio.wait_for(viewer.joined, 60)
        opened.append(viewer)

    for first in range(0, len(viewers), CONNECT_BATCH):
        await asyncio.gather(*(open_one(url, room) for url, room in viewers[first:first + CONNECT_BATCH]))
    ready.put(len(opened))
    await loop.run_in_executor(None, go.wait)
    # Polled, since a thread blocked on the manager's event would hold up the exit.
    while not done.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(done.wait(), 0.2)
        if await loop.run_in_executor(None, stop.is_set):
            break
    for viewer in opened:
        if viewer.transport is not None:
            viewer.transport.close()
    return Seen(latencies, received, misrouted)


class Fleet:
    """Client processes, each with its share of the viewers; `close()` ends them however the run ends."""

    def __init__(self, shares: list[list[tuple[str, int]]], wants: list[int]) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.manager = ctx.Manager()
        self.ready, self.go, self.stop = self.manager.Queue(), self.manager.Event(), self.manager.Event()
        self.pool = ctx.Pool(len(shares))
        self.results = [self.pool.apply_async(client_process, (share, want, self.ready, self.go, self.stop))
                        for share, want in zip(shares, wants, strict=True)]

    def wait_ready(self, timeout: float = 300) -> int:
        n = 0
        deadline = time.monotonic() + timeout
        for _ in self.results:
            try:
                n += self.ready.get(timeout=max(1, deadline - time.monotonic()))
            except Exception:
                for result in self.results:
                    if result.ready():
                        result.get()  # raises the client's failure
                raise SystemExit("the viewers did not connect in time") from None
        return n

    def finish(self, grace: float) -> list[Seen]:
        """The clients' results: they stop on their own once all came, or `grace` seconds from now."""
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and not all(result.ready() for result in self.results):
            time.sleep(0.05)
        self.go.set()
        self.stop.set()
        return [result.get(60) for result in self.results]

    def close(self) -> None:
        self.pool.terminate()
        self.pool.join()
        with contextlib.suppress(Exception):
            self.manager.shutdown()


# --- senders -------------------------------------------------------------------------------------

class Sender(typing.NamedTuple):
    room: Room
    url: str  # the room's socket URL on the sender's server
    token: str


async def join(session: typing.Any, sender: Sender) -> typing.Any:
    """The sender's socket, in its room and signed in (its own LOGIN echo came back)."""
    from jiandong.lib import encoding

    # In the room from the upgrade on: a socket in no room would turn the lobby channel on for every room.
    ws = await session.ws_connect(sender.url, autoping=True)
    await ws.send_str(encoding.dumps_str({"type": "LOGIN", "room_id": str(sender.room.id), "token": sender.token}))
    while True:
        msg = await ws.receive(timeout=30)
        if not isinstance(msg.data, str):
            raise SystemExit(f"the sender of room {sender.room.id} was not let in: {msg.type.name} {msg.data}")
        if '"myself":true' in msg.data:
            return ws


async def send_room(ws: typing.Any, sender: Sender, start_at: float) -> tuple[int, str | None]:
    """SEND_ALL at the room's rate on a fixed schedule (never waiting for acknowledgements); how many were
    acknowledged, and the first error frame if any."""
    import aiohttp

    from jiandong.lib import encoding

    room, count = sender.room, sender.room.messages
    acked, error = 0, None

    async def acks() -> None:
        nonlocal acked, error
        async for msg in ws:
            if msg.type is aiohttp.WSMsgType.TEXT:
                if '"type":"ERROR"' in msg.data and error is None:
                    error = msg.data
                if '"myself":true' in msg.data and STAMP.search(msg.data):
                    acked += 1
                    if acked == count:
                        return

    reader = asyncio.create_task(acks())
    for i in range(count):
        delay = start_at + i / room.rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        await ws.send_str(encoding.dumps_str({"type": "SEND_ALL", "room_id": str(room.id), "token": sender.token,
                                              "content": f"rooms {room.id} {i} {time.time():.6f}"}))
    try:
        await asyncio.wait_for(reader, 30)
    except TimeoutError:
        reader.cancel()
    await ws.close()
    return acked, error


async def broadcast(senders: list[Sender], settled: typing.Callable[[], None],
                    on_air: typing.Callable[[], None]) -> list[tuple[int, str | None]]:
    """Every sender joins its room; after SETTLE seconds (`settled` called at its start) `on_air` is called and
    they all send from the same instant."""
    import aiohttp

    async with aiohttp.ClientSession() as session:
        sockets = await asyncio.gather(*(join(session, s) for s in senders))
        settled()
        await asyncio.sleep(SETTLE)
        on_air()
        start_at = time.monotonic() + 0.05
        return list(await asyncio.gather(*(send_room(ws, s, start_at) for ws, s in zip(sockets, senders,
                                                                                         strict=True))))


# --- Redis nodes ---------------------------------------------------------------------------------

class Node(typing.NamedTuple):
    """A Redis node as the tables show it: the rooms its shard owns (a replica: its master's)."""

    name: str
    role: str  # "single", "master" or "replica"
    client: typing.Any  # redis.Redis
    rooms: tuple[int, ...]
    shard: str  # its master's name (its own for a master or the single Redis)


def redis_cpu(node: Node) -> tuple[float, dict[str, int]]:
    """The node's user+sys CPU seconds so far (INFO cpu) and the calls of each command (INFO commandstats;
    a script's commands counted too)."""
    info = node.client.info("cpu")
    calls = {name.removeprefix("cmdstat_"): int(stat["calls"])
             for name, stat in node.client.info("commandstats").items()}
    return float(info["used_cpu_sys"]) + float(info["used_cpu_user"]), calls


def busiest_commands(before: dict[str, int], after: dict[str, int], top: int = 6) -> str:
    """The commands called most between two readings, `name calls, ...` (our own INFO left out)."""
    calls = {name: n - before.get(name, 0) for name, n in after.items() if name != "info"}
    ranked = sorted(((n, name) for name, n in calls.items() if n > 0), reverse=True)
    return ", ".join(f"{name} {n}" for n, name in ranked[:top]) or "none"


def single_nodes(url: str, rooms: list[Room]) -> list[Node]:
    import redis

    parts = urlsplit(url)
    name = f"{parts.hostname}:{parts.port or 6379}" if parts.scheme != "unix" else url
    return [Node(name, "single", redis.Redis.from_url(url, socket_timeout=10), tuple(r.id for r in rooms), name)]


def cluster_nodes(cluster: typing.Any, prefix: str, rooms: list[Room]) -> list[Node]:
    """Masters first, each followed by its replicas; each room placed by its channel's slot."""
    from jiandong.settings import load_settings
    from jiandong.store.room_channels import room_channel

    settings = load_settings({}, redis_prefix=prefix)
    view = cluster.nodes()
    owned: dict[str, list[int]] = {}
    for room in rooms:
        slot = cluster.slot_of(room_channel(settings, room.id))
        owner = next(n for n in view if n.is_master and n.owns(slot))
        owned.setdefault(owner.id, []).append(room.id)
    nodes = []
    for master in sorted((n for n in view if n.is_master), key=lambda n: n.port):
        shard = tuple(owned.get(master.id, []))
        nodes.append(Node(master.address, "master", cluster.client(master), shard, master.address))
        for replica in sorted((n for n in view if n.master_id == master.id), key=lambda n: n.port):
            nodes.append(Node(replica.address, "replica", cluster.client(replica), shard, master.address))
    return nodes


# --- one run -------------------------------------------------------------------------------------

class Outcome(typing.NamedTuple):
    failed: int
    per_second: float
    delivered: int
    expected: int
    p50: float
    p99: float
    server_us: float
    # each node with its CPU seconds over the window
    redis: list[tuple[Node, float]]
    messages: int


def start_servers(run: Run, part: str, env: dict[str, str]) -> list[str]:
    """Two server.py processes of this part, one after the other (the first migrates the schema)."""
    bases = []
    for index in range(2):
        port = free_port()
        log(f"starting server.py {index + 1} of 2 ...")
        start(run.stack, f"server-{part}-{index + 1}",
              [sys.executable, "server.py", "--host", "127.0.0.1", "--port", str(port)],
              {**env, "JIANDONG_PUBLIC_URL": f"http://127.0.0.1:{port}"}, run.work, port, ready_path="/readyz")
        bases.append(f"http://127.0.0.1:{port}")
    return bases


def sender_token(base: str, room: int) -> str:
    """A development login of the room's own sender (a user may hold only a few sockets per process)."""
    return request(f"{base}/api/v1/token/user", data=f"code=bench-rooms-{room}".encode(),
                   headers={"Content-Type": "application/x-www-form-urlencoded"})["token"]


def check_fds(rooms: list[Room], procs: int) -> None:
    """Enough descriptors for a server's viewers and a client process's share (the servers inherit the limit)."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    per_server = max(sum(r.viewers[i] for r in rooms) for i in (0, 1)) + len(rooms)
    per_client = -(-sum(sum(r.viewers) for r in rooms) // procs)
    need = max(per_server, per_client) + SPARE_FDS
    if soft < need:
        raise SystemExit(f"RLIMIT_NOFILE is {soft}, this run needs about {need} descriptors per process"
                         " (ulimit -n, or fewer viewers / more --procs)")


def measure(args: typing.Any, run: Run, part: str, redis_url: str, nodes_of: typing.Callable[[], list[Node]],
            rooms: list[Room]) -> Outcome:
    """Two servers on `redis_url`, the rooms' viewers and senders; the figures of the broadcast window."""
    messages = sum(r.messages for r in rooms)
    env = {
        **run.env,
        "JIANDONG_REDIS_URL": redis_url,
        # Every sender at full speed: neither its own limit nor its address's may hold it back.
        "JIANDONG_CHAT_RATE_COUNT": str(messages + 1000),
        "JIANDONG_CHAT_RATE_ADDRESS_COUNT": "0",
        # Every viewer connects from 127.0.0.1: the per-address cap and the chat's share must let them in.
        "JIANDONG_CHAT_MAX_PER_ADDRESS": "1000000",
        "JIANDONG_MAX_CONNECTIONS": "30000",
        "JIANDONG_CHAT_CONNECTION_SHARE": "0.9",
    }
    bases = start_servers(run, part, env)
    for room in rooms:
        add_live(env["JIANDONG_DATABASE_URL"], room.id)
    pids = [server_pid(int(b.rsplit(":", 1)[1])) for b in bases]
    nodes = nodes_of()
    senders = [Sender(r, f"{ws_url(bases[r.sender_on])}?room_id={r.id}", sender_token(bases[r.sender_on], r.id))
               for r in rooms]

    viewers = [(f"{ws_url(bases[server])}?room_id={room.id}", room.id)
               for room in rooms for server in (0, 1) for _ in range(room.viewers[server])]
    # Each client process gets viewers of every room and both servers, interleaved.
    shares = [viewers[i::args.procs] for i in range(args.procs) if viewers[i::args.procs]]
    per_room = {r.id: r.messages for r in rooms}
    wants = [sum(per_room[room] for _, room in share) for share in shares]
    expected = sum(wants)
    log(f"connecting {len(viewers)} viewers from {len(shares)} client process(es) ...")
    fleet = Fleet(shares, wants)
    marks: dict[str, typing.Any] = {}

    def read(name: str) -> None:
        marks[name] = (time.monotonic(), [cpu_times(pid) for pid in pids], [redis_cpu(n) for n in nodes])

    try:
        connected = fleet.wait_ready()
        log(f"{connected} viewers in {len(rooms)} rooms; {len(senders)} senders join, then send {messages}"
            f" SEND_ALL over {args.duration} s ...")
        fleet.go.set()
        sent = asyncio.run(broadcast(senders, functools.partial(read, "settle"), functools.partial(read, "start")))
        seen = fleet.finish(GRACE)
        read("end")
    finally:
        fleet.close()

    (t_settle, _, idle_before), (t_start, cpu_before, redis_before), (t_end, cpu_after, redis_after) = (
        marks["settle"], marks["start"], marks["end"])
    window = t_end - t_start
    user = sum(a[0] - b[0] for a, b in zip(cpu_after, cpu_before, strict=True))
    system = sum(a[1] - b[1] for a, b in zip(cpu_after, cpu_before, strict=True))
    delivered = sum(s.received for s in seen)
    misrouted = sum(s.misrouted for s in seen)
    acked = sum(a for a, _ in sent)
    errors = [e for _, e in sent if e]
    latencies = {r.id: [x for s in seen for x in s.latencies.get(r.id, [])] for r in rooms}
    every = [x for xs in latencies.values() for x in xs]
    big = [x for r in rooms if r.big for x in latencies[r.id]]
    small = [x for r in rooms if not r.big for x in latencies[r.id]]
    server_us = (user + system) / delivered * 1e6 if delivered else float("nan")

    print(f"{describe(rooms, args)}, over 2 server processes, for {args.duration} s")
    print(f"SEND_ALL sent / acked  {messages} / {acked}" + (f"; first error: {errors[0][:200]}" if errors else ""))
    print(f"delivered / expected   {delivered} / {expected} ({100 * delivered / expected:.2f} %)"
          + (f", {misrouted} in a room they were not sent to" if misrouted else ""))
    print(f"deliveries per second  {delivered / window:8.0f} (all rooms, over the {window:.1f} s window)")
    print(f"latency p50 / p99      {1000 * quantile(every, 0.5):8.1f} / {1000 * quantile(every, 0.99):.1f} ms"
          + (f"   (big room {1000 * quantile(big, 0.5):.1f} / {1000 * quantile(big, 0.99):.1f},"
             f" small rooms {1000 * quantile(small, 0.5):.1f} / {1000 * quantile(small, 0.99):.1f})"
             if big and small else ""))
    print(f"server CPU             {user + system:8.2f} s (user {user:.2f}, system {system:.2f}) ="
          f" {server_us:.2f} µs per delivery (both processes)")
    idle_span = t_start - t_settle
    print(f"Redis nodes: CPU over the window (INFO cpu), per message sent ({messages}); idle = before the window,"
          f" over {idle_span:.1f} s")
    print(f"  {'node':<17} {'role':<16} {'rooms of its shard':<22} {'their msgs':>10} {'CPU ms':>8}"
          f" {'idle ms/s':>9} {'µs/msg sent':>11} {'net µs/own msg':>14}")
    redis = []
    for node, (idle0, _), (before, calls0), (after, calls1) in zip(nodes, idle_before, redis_before, redis_after,
                                                                    strict=True):
        used = after - before
        idle_rate = (before - idle0) / idle_span
        own = sum(per_room[room] for room in node.rooms)
        net = (used - idle_rate * window) / own * 1e6 if own else float("nan")
        owned = f"{sum(not r.big and r.id in node.rooms for r in rooms)} small"
        owned += " + the big one" if any(r.big and r.id in node.rooms for r in rooms) else ""
        role = f"replica of {node.shard.rsplit(':', 1)[1]}" if node.role == "replica" else node.role
        print(f"  {node.name:<17} {role:<16} {owned:<22} {own:>10} {1000 * used:8.1f} {1000 * idle_rate:9.2f}"
              f" {used / messages * 1e6:11.1f} {net:14.1f}")
        print(f"  {'':<17} commands over the window: {busiest_commands(calls0, calls1)}")
        redis.append((node, used))
    failed = int(delivered != expected or acked != messages or bool(misrouted) or bool(errors))
    return Outcome(failed, delivered / window, delivered, expected, quantile(every, 0.5), quantile(every, 0.99),
                   server_us, redis, messages)


def own_redis(run: Run) -> str:
    """A redis-server of this run's own (no persistence, as LocalCluster starts its nodes), stopped with the run."""
    server = shutil.which("redis-server", path="/usr/local/bin:/usr/bin") or shutil.which("redis-server")
    if server is None:
        raise SystemExit("--own-redis: no redis-server found")
    port = free_port()
    log(f"starting {server} on port {port} ...")
    start(run.stack, "redis-single", [server, "--port", str(port), "--bind", "127.0.0.1", "--daemonize", "no",
                                      "--save", "", "--appendonly", "no"], run.env, run.work, port)
    return f"redis://127.0.0.1:{port}/0"


def part(args: typing.Any, run: Run, kind: str, rooms: list[Room]) -> Outcome | None:
    """One run, on servers (and for "cluster" a LocalCluster) of its own, all stopped when it ends."""
    with contextlib.ExitStack() as stack:
        here = run._replace(stack=stack)
        if kind == "single":
            url = own_redis(here) if args.own_redis else run.env["JIANDONG_REDIS_URL"]
            print(f"\n== single Redis ({url}{', of its own' if args.own_redis else ''})", flush=True)
            return measure(args, here, kind, url, lambda: single_nodes(url, rooms), rooms)
        if str(ROOT) not in sys.path:
            sys.path.insert(0, str(ROOT))
        from tests.helpers.cluster import LocalCluster, unavailable

        reason = unavailable()
        if reason:
            print(f"\n== Redis Cluster: not run, {reason}", flush=True)
            return None
        log("starting a Redis Cluster (3 masters, 3 replicas) ...")
        cluster = LocalCluster()
        stack.callback(cluster.stop)
        cluster.start()
        print(f"\n== Redis Cluster ({cluster.url})", flush=True)
        prefix = run.env["JIANDONG_REDIS_PREFIX"]
        return measure(args, here, kind, cluster.url, lambda: cluster_nodes(cluster, prefix, rooms), rooms)


def compare(results: dict[str, Outcome]) -> None:
    """Single against cluster, one column each."""
    names = {"single": "single Redis", "cluster": "Redis Cluster"}
    columns = [(names[k], r) for k, r in results.items()]

    def per_message(r: Outcome, used: list[float]) -> str:
        return f"{sum(used) / r.messages * 1e6:.1f}"

    def busiest(r: Outcome) -> str:
        node, used = max(r.redis, key=lambda nu: nu[1])
        total = sum(u for _, u in r.redis)
        return f"{node.name} {100 * used / total:.0f}%" if total > 0 else "-"

    rows: list[tuple[str, typing.Callable[[Outcome], str]]] = [
        ("deliveries/s (all rooms)", lambda r: f"{r.per_second:.0f}"),
        ("delivered/expected", lambda r: f"{r.delivered}/{r.expected}"),
        ("latency p50 ms", lambda r: f"{1000 * r.p50:.1f}"),
        ("latency p99 ms", lambda r: f"{1000 * r.p99:.1f}"),
        ("server CPU µs/delivery", lambda r: f"{r.server_us:.2f}"),
        ("Redis nodes", lambda r: str(len(r.redis))),
        ("Redis CPU µs/msg, all nodes", lambda r: per_message(r, [u for _, u in r.redis])),
        ("Redis CPU µs/msg, masters", lambda r: per_message(r, [u for n, u in r.redis if n.role != "replica"])),
        ("Redis CPU µs/msg, busiest node", lambda r: per_message(r, [max(u for _, u in r.redis)])),
        ("busiest node, share of CPU", busiest),
    ]
    width = max(len(label) for label, _ in rows)
    print(f"\n{'':<{width}} | " + " | ".join(f"{name:>22}" for name, _ in columns))
    print("-" * width + "-+-" + "-+-".join("-" * 22 for _ in columns))
    for label, cell in rows:
        print(f"{label:<{width}} | " + " | ".join(f"{cell(r):>22}" for _, r in columns))


def main() -> int:
    args = parse_args()
    # The servers and the client processes inherit the limit: thousands of sockets need more than 1024.
    raise_fd_limit()
    rooms = plan(args)
    check_fds(rooms, args.procs)
    kinds = [args.only] if args.only else ["single", "cluster"]
    results: dict[str, Outcome] = {}
    with bench_run(args, DATABASE) as run:
        for kind in kinds:
            outcome = part(args, run, kind, rooms)
            if outcome is not None:
                results[kind] = outcome
            sys.stdout.flush()
    if results:
        compare(results)
    return max((r.failed for r in results.values()), default=1)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        # Everything started is stopped by now: the with-blocks unwound on the way out.
        log("interrupted")
        sys.exit(130)
