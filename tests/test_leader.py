import asyncio
import logging

import pytest
from redis.asyncio import Redis

from jiandong.tasks.leader import Lease, run_as_leader

WAIT = 15.0


@pytest.fixture
async def redis(redis_url):
    client = Redis.from_url(redis_url, decode_responses=True)
    yield client
    await client.aclose()


@pytest.fixture
def key(settings):
    return f"{settings.redis_prefix}lease:test"


async def wait_until(predicate, what: str) -> None:
    deadline = asyncio.get_running_loop().time() + WAIT
    while not await predicate():
        assert asyncio.get_running_loop().time() < deadline, f"gave up waiting for {what}"
        await asyncio.sleep(0.02)


async def test_only_one_of_two_holders_gets_the_lease(redis, key):
    a, b = Lease(redis, key, ttl=30), Lease(redis, key, ttl=30)
    results = await asyncio.gather(a.acquire(), b.acquire())
    assert sorted(results) == [False, True]
    holder, other = (a, b) if results[0] else (b, a)
    assert await redis.get(key) == holder.value and holder.held and not other.held
    # Taking it again renews it; the other still cannot.
    assert await holder.acquire() and not await other.acquire()
    assert await holder.renew() and not await other.renew()
    assert 29_000 < await redis.pttl(key) <= 30_000
    # Only the holder's release drops the key.
    assert not await other.release() and await redis.get(key) == holder.value
    assert await holder.release() and await redis.get(key) is None and not holder.held
    assert await other.acquire() and await redis.get(key) == other.value


async def test_takeover_after_expiry_and_renew_fails_after_loss(redis, key):
    old = Lease(redis, key, ttl=0.2)
    assert await old.acquire()
    new = Lease(redis, key, ttl=30)
    assert not await new.acquire()

    async def expired() -> bool:
        return await redis.exists(key) == 0

    # The old holder stopped renewing (it "died"): once the TTL runs out anyone may take over.
    await wait_until(expired, "the lease to expire")
    assert not old.held
    assert await new.acquire() and await redis.get(key) == new.value
    assert not await old.renew() and not old.held
    assert not await old.acquire()
    assert not await old.release()
    assert await redis.get(key) == new.value


async def test_context_manager_releases(redis, key):
    async with Lease(redis, key, ttl=30) as lease:
        assert await lease.acquire()
        assert await redis.get(key) == lease.value
    assert await redis.get(key) is None


async def test_run_as_leader_runs_the_job_in_one_loop_and_fails_over(redis, key, caplog):
    runs = {"a": 0, "b": 0}
    fail = {"a": True, "b": True}

    def job(name):
        async def run():
            runs[name] += 1
            if fail[name] and runs[name] == 1:
                raise RuntimeError("first round fails")

        return run

    stops = {"a": asyncio.Event(), "b": asyncio.Event()}
    leases = {"a": Lease(redis, key, ttl=0.5), "b": Lease(redis, key, ttl=0.5)}
    assert await leases["a"].acquire()  # a starts as the holder
    tasks = {
        name: asyncio.create_task(run_as_leader(leases[name], 0.02, job(name), name=f"job {name}", stop=stops[name]))
        for name in ("a", "b")
    }
    try:
        async def a_ran_twice() -> bool:
            return runs["a"] >= 3

        with caplog.at_level(logging.ERROR, logger="jiandong.tasks.leader"):
            await wait_until(a_ran_twice, "the holder's rounds")
        assert runs["b"] == 0
        # The failed first round was logged and the loop went on.
        assert any("round failed" in r.getMessage() for r in caplog.records)

        # The holder stops without releasing (as if it died): the other takes over after the TTL.
        stops["a"].set()
        await tasks["a"]

        async def b_took_over() -> bool:
            return runs["b"] >= 2

        await wait_until(b_took_over, "the takeover")
        assert await redis.get(key) == leases["b"].value
    finally:
        for name in tasks:
            stops[name].set()
        await asyncio.gather(*tasks.values())
