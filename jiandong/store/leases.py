"""Redis leases that pick the one process running a singleton job (DESIGN.md §5), and that job's lifecycle."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
import typing
import uuid

from redis.asyncio import Redis

from .outages import Streak

if typing.TYPE_CHECKING:
    from ..ops.metrics import Metrics

logger = logging.getLogger(__name__)

# A few intervals, so a slow round does not cost the lease; a dead holder is replaced this soon.
MIN_LEASE_TTL = 10.0

# Compare-and-act: only the holder's own value may extend or drop the lease, so a process that
# lost it (paused past the TTL, then resumed) cannot cut short its successor's term.
RENEW_LUA = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""
RELEASE_LUA = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('DEL', KEYS[1])
end
return 0
"""


def holder_id() -> str:
    """A value no other process (or other lease object) will ever use: host, pid and a random part."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:12]}"


class Lease:
    """A lease on `key` for `ttl` seconds: `acquire()` takes or renews it, `release()` gives it up.

    Any process may take the lease once the holder stops renewing it (it died) and the TTL ran out.
    `held` is the local belief, which ends a little before the Redis key expires.
    """

    def __init__(self, redis: Redis, key: str, ttl: float, value: str | None = None) -> None:
        if ttl <= 0:
            raise ValueError("ttl must be positive")
        self.redis = redis
        self.key = key
        self.ttl_ms = max(1, int(ttl * 1000))
        self.value = value or holder_id()
        self._valid_until = 0.0
        self._renew = redis.register_script(RENEW_LUA)
        self._release = redis.register_script(RELEASE_LUA)

    @property
    def held(self) -> bool:
        return time.monotonic() < self._valid_until

    async def acquire(self) -> bool:
        """Take the lease if it is free, or renew it if it is ours; whether we hold it now."""
        if self.held and await self.renew():
            return True
        started = time.monotonic()
        if await self.redis.set(self.key, self.value, nx=True, px=self.ttl_ms):
            self._valid_until = started + self.ttl_ms / 1000
            return True
        # The key may still carry our value (the local belief lapsed first): renew rather than wait it out.
        return await self.renew()

    async def renew(self) -> bool:
        """Extend our lease by the TTL; False when it is no longer ours."""
        started = time.monotonic()
        if await self._renew(keys=[self.key], args=[self.value, self.ttl_ms]):
            # Counted from before the call: the key may have been extended a little after `started`.
            self._valid_until = started + self.ttl_ms / 1000
            return True
        self._valid_until = 0.0
        return False

    async def release(self) -> bool:
        """Give the lease up if it is ours (another process may take it at once)."""
        self._valid_until = 0.0
        return bool(await self._release(keys=[self.key], args=[self.value]))

    async def __aenter__(self) -> Lease:
        return self

    async def __aexit__(self, *exc: object) -> None:
        try:
            await self.release()
        except Exception:
            # The key expires on its own; a failed release only delays the next holder.
            logger.warning("could not release lease %s", self.key, exc_info=True)


async def run_as_leader(
    lease: Lease,
    interval: float,
    job: typing.Callable[[], typing.Awaitable[object]],
    *,
    name: str,
    stop: asyncio.Event,
    metrics: Metrics | None = None,
) -> None:
    """Every `interval` seconds: take or renew `lease`, and run `job` while holding it, until `stop` is set.

    A round in progress finishes before the loop returns. A failing round (Redis or the job) is
    logged, once per streak of failures, and the loop carries on. The lease TTL should span a few
    intervals, so a holder keeps it through a slow round and a dead holder is replaced soon.
    `metrics` get which process leads, and each round's end, duration and failure.
    """
    was_leader = False
    streak = Streak(logger, name)
    while True:
        try:
            await asyncio.wait_for(stop.wait(), interval)
            return
        except asyncio.TimeoutError:
            pass
        try:
            leader = await lease.acquire()
            if leader != was_leader:
                logger.info("%s: %s the lease", name, "took" if leader else "lost")
                was_leader = leader
                if metrics is not None:
                    metrics.job_leader.labels(name).set(int(leader))
            if leader:
                started = time.monotonic()
                try:
                    await job()
                finally:
                    if metrics is not None:
                        metrics.job_duration.labels(name).observe(time.monotonic() - started)
                        metrics.job_last_run.labels(name).set(time.time())
        except Exception as exc:
            streak.failed(exc)
            if metrics is not None:
                metrics.job_failures.labels(name).inc()
        else:
            streak.succeeded()


@contextlib.asynccontextmanager
async def job_under_lease(
    redis: Redis,
    key: str,
    interval: float,
    job: typing.Callable[[], typing.Awaitable[object]],
    *,
    name: str,
    shutdown_wait: float,
    metrics: Metrics | None = None,
) -> typing.AsyncIterator[asyncio.Task[None]]:
    """Runs `job` every `interval` seconds in the one process holding the lease on `key`, for the
    body of the `async with`; the loop's task is what it yields.

    The lease TTL spans three intervals (at least MIN_LEASE_TTL seconds). On the way out the loop
    is stopped, not cancelled (a cancel in the middle of a round would leave its commit in doubt):
    a round in progress is let finish for `shutdown_wait` seconds, then the lease is released so
    the next holder need not wait for the TTL. Failures on the way out are logged, not raised.
    """
    lease = Lease(redis, key, ttl=max(3 * interval, MIN_LEASE_TTL))
    stop = asyncio.Event()
    task = asyncio.create_task(
        run_as_leader(lease, interval, job, name=name, stop=stop, metrics=metrics), name=name.replace(" ", "-")
    )
    try:
        yield task
    finally:
        stop.set()
        try:
            await asyncio.wait_for(task, shutdown_wait)
        except Exception:
            logger.exception("%s loop did not stop cleanly", name)
        try:
            await lease.release()
        except Exception:
            logger.warning("could not release the %s lease", name, exc_info=True)
