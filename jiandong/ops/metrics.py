"""Prometheus metrics: the families, the registry an app holds, their sampling, and /metrics (guarded).

One process: the app's own CollectorRegistry is scraped. With --workers N, prometheus-client's
multiprocess mode: the parent points PROMETHEUS_MULTIPROC_DIR at a directory of this instance
(`<var_dir>/metrics/<port>`, emptied at each start) before it starts the workers, each worker's values go to
files there, and a scrape of any worker reads them all (MultiProcessCollector). Gauges say how they
add up over the workers (`multiprocess_mode`): connections are summed, a viewer count read from
Redis (the same in every worker) is the maximum, a lease holder keeps its pid label.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import secrets
import shutil
import typing
from pathlib import Path

from aiohttp import web
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

from ..keys import metrics_key, outages_key, pg_key, realtime_key, settings_key
from ..lib.stopping import cancel_and_wait
from ..settings import Settings

# prometheus-client reads it when it is imported (a worker imports it after its parent set it).
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
METRICS_PATH = "/metrics"
# Seconds between two readings of what is a state rather than an event (open sockets, the pool).
SAMPLE_INTERVAL = 2.0
# Route label of a request no route matched: raw paths never become labels (bounded cardinality).
UNMATCHED = "<unmatched>"
ORDER_STATES = {-1: "closed", 0: "awaiting", 1: "paid", 2: "timed_out", 3: "refunding", 4: "refunded", 5: "cancelled"}


def multiprocess_dir() -> str | None:
    return os.environ.get(MULTIPROC_ENV) or None


def prepare_multiprocess_dir(settings: Settings) -> Path:
    """For a --workers parent: an empty metrics directory of this instance, named to the workers-to-be.

    By port: two instances on one host (a restart without a gap) never empty each other's.
    """
    path = Path(settings.metrics_dir or Path(settings.var_dir) / "metrics" / str(settings.port)).resolve()
    # The last run's files would add its counts to this one's.
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    os.environ[MULTIPROC_ENV] = str(path)
    return path


def worker_gone(pid: int) -> None:
    """A worker exited: its live gauges stop counting (its counters stay: counts never go back)."""
    path = multiprocess_dir()
    if path:
        multiprocess.mark_process_dead(pid, path)


class Metrics:
    """Every metric family of an app, registered in a registry of its own (no global one)."""

    def __init__(self) -> None:
        r = self.registry = CollectorRegistry(auto_describe=True)
        # What holds counts back for a while (web.access: the HTTP metrics), flushed before a scrape.
        self.before_collect: list[typing.Callable[[], None]] = []
        # HTTP
        self.http_requests = Counter("jiandong_http_requests", "HTTP requests answered, by route template",
                                     ["route", "method", "status"], registry=r)
        self.http_duration = Histogram("jiandong_http_request_duration_seconds",
                                       "Time to answer an HTTP request (websocket sessions excluded)", ["route"],
                                       registry=r)
        # Chat
        self.chat_connections = Gauge("jiandong_chat_connections", "Open chat websockets",
                                      multiprocess_mode="livesum", registry=r)
        self.chat_rooms = Gauge("jiandong_chat_rooms", "Rooms with a socket, per process, summed",
                                multiprocess_mode="livesum", registry=r)
        self.chat_viewers = Gauge("jiandong_chat_viewers", "Viewers of every room on every process (presence)",
                                  multiprocess_mode="livemax", registry=r)
        self.chat_received = Counter("jiandong_chat_messages_received", "Frames received from clients, by type",
                                     ["type"], registry=r)
        self.chat_refused = Counter("jiandong_chat_connections_refused", "Chat websockets refused: past an "
                                    "address's or a user's cap, or past the chat's share of the process's "
                                    "connections", ["reason"], registry=r)
        self.chat_deliveries = Counter("jiandong_chat_deliveries", "Writes of frames to chat sockets", registry=r)
        self.chat_slow_dropped = Counter("jiandong_chat_slow_readers_dropped",
                                         "Chat sockets closed (1008) for leaving too much unread", registry=r)
        self.chat_batch_frames = Histogram("jiandong_chat_batch_frames", "Frames per batched write to a room",
                                           buckets=(1, 2, 3, 5, 8, 13, 21, 34, 55), registry=r)
        self.chat_history_lag = Gauge("jiandong_chat_history_lag_seconds",
                                      "Age of the oldest message the last history write stored",
                                      multiprocess_mode="livemax", registry=r)
        self.pubsub_reconnects = Counter("jiandong_redis_pubsub_reconnects",
                                         "Chat subscriptions to Redis made again after a lost connection", registry=r)
        self.chat_resubscriptions = Counter(
            "jiandong_chat_resubscriptions", "Chat subscriptions made again on a Redis Cluster though the connection "
            "held, by what showed them lost: sunsubscribe (a slot moved or a failover), slots (the slot map moved), "
            "silence (a probed channel stayed silent)", ["reason"], registry=r)
        self.chat_gaps = Counter("jiandong_chat_gaps", "Room messages heard after one this process had not heard "
                                 "(what was missed is then read from the history stream)", registry=r)
        self.chat_replayed = Counter("jiandong_chat_replayed_messages", "Room messages delivered from the history "
                                     "streams, not live: sent while a subscription was being made or restored",
                                     registry=r)
        # Dependencies
        self.db_pool = Gauge("jiandong_db_pool_connections", "PostgreSQL pool connections by state",
                             ["state"], multiprocess_mode="livesum", registry=r)
        self.db_pool_waiting = Gauge("jiandong_db_pool_waiting", "Requests waiting for a free PostgreSQL connection",
                                     multiprocess_mode="livesum", registry=r)
        self.dependency_errors = Counter("jiandong_dependency_errors",
                                         "PostgreSQL and Redis calls that failed for the dependency (down, slow)",
                                         ["dependency"], registry=r)
        self.dependency_up = Gauge("jiandong_dependency_up", "1 while a dependency answers (0: some process sees "
                                   "it down)", ["dependency"], multiprocess_mode="livemin", registry=r)
        # Business
        self.payment_notifications = Counter("jiandong_payment_notifications",
                                             "WeChat Pay notifications, by outcome", ["outcome"], registry=r)
        self.notifications_dropped = Counter(
            "jiandong_notifications_dropped", "WeChat Pay notifications refused and not kept, as they name no order "
            "or refund of ours (anyone may post them), by kind (payment, refund) and reason", ["kind", "reason"],
            registry=r)
        self.order_transitions = Counter("jiandong_order_transitions", "Order status changes",
                                         ["from_status", "to_status"], registry=r)
        self.refunds = Counter("jiandong_refunds", "Refunds that reached an outcome (success, closed, change, "
                               "failed), by outcome", ["outcome"], registry=r)
        self.refunded_fen = Counter("jiandong_refunded_fen", "Money refunded, in fen (1/100 yuan)", registry=r)
        self.sms = Counter("jiandong_sms_codes", "Verification codes asked for, by result", ["result"], registry=r)
        self.logins = Counter("jiandong_logins", "Logins (token/user), by result", ["result"], registry=r)
        # Background jobs (one process holds each job's lease)
        self.job_leader = Gauge("jiandong_job_leader", "1 in the process holding the job's lease", ["job"],
                                multiprocess_mode="liveall", registry=r)
        self.job_last_run = Gauge("jiandong_job_last_run_timestamp_seconds", "When the job's last round ended",
                                  ["job"], multiprocess_mode="max", registry=r)
        self.job_duration = Histogram("jiandong_job_duration_seconds", "Time a job's round took", ["job"],
                                      registry=r)
        self.job_failures = Counter("jiandong_job_failures", "Failed rounds of a job", ["job"], registry=r)

    def order_transition(self, from_status: int, to_status: int) -> None:
        self.order_transitions.labels(ORDER_STATES.get(from_status, str(from_status)),
                                      ORDER_STATES.get(to_status, str(to_status))).inc()

    def flush(self) -> None:
        """Hand what is held back to prometheus-client; on the event loop, where it is counted."""
        for flush in self.before_collect:
            flush()

    def exposition(self) -> bytes:
        """The text format of every metric: this process's, or with --workers those of every worker."""
        path = multiprocess_dir()
        if path is None:
            return generate_latest(self.registry)
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=path)
        return generate_latest(registry)


def allowed(request: web.Request, settings: Settings) -> bool:
    """A scrape from an allowed network, or with the bearer token when one is set."""
    if settings.metrics_token:
        given = request.headers.get("Authorization", "")
        if secrets.compare_digest(given.encode(), f"Bearer {settings.metrics_token}".encode()):
            return True
    try:
        remote = ipaddress.ip_address(request.remote or "")
    except ValueError:
        return False
    return any(remote in ipaddress.ip_network(net) for net in settings.metrics_allow)


async def get_metrics(request: web.Request) -> web.Response:
    if not allowed(request, request.config_dict[settings_key]):
        raise web.HTTPForbidden(text="metrics: not from an allowed network (JIANDONG_METRICS_ALLOW) nor with the "
                                     "bearer token (JIANDONG_METRICS_TOKEN)\n")
    metrics = request.config_dict[metrics_key]
    metrics.flush()
    # Reading every worker's files is disk work: off the loop.
    body = await asyncio.to_thread(metrics.exposition)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


def sample(app: web.Application) -> None:
    """Set the gauges that describe a state: the pool, the dependencies, the chat sockets."""
    metrics = app[metrics_key]
    pool = app[pg_key]
    in_use = pool.size - pool.freesize
    metrics.db_pool.labels("in_use").set(in_use)
    metrics.db_pool.labels("idle").set(pool.freesize)
    # aiopg keeps its waiters in a Condition; no public count exists.
    waiters = getattr(getattr(pool, "_cond", None), "_waiters", None)
    metrics.db_pool_waiting.set(len(waiters) if waiters is not None else 0)
    outages = app[outages_key]
    for name in outages.names():
        metrics.dependency_up.labels(name).set(0 if outages.is_down(name) else 1)
    realtime = app.get(realtime_key)
    if realtime is not None:
        metrics.chat_connections.set(len(realtime.hub.conns))
        metrics.chat_rooms.set(len(realtime.hub.rooms))


async def metrics_ctx(app: web.Application) -> typing.AsyncIterator[None]:
    """The sampling of state gauges, every SAMPLE_INTERVAL seconds while the app runs."""

    async def sampling() -> None:
        while True:
            sample(app)
            await asyncio.sleep(SAMPLE_INTERVAL)

    task = asyncio.create_task(sampling(), name="metrics-sampling")
    yield
    await cancel_and_wait(task)
    # With --workers the counts outlive the process in the shared files: the last ones held back go there.
    app[metrics_key].flush()
