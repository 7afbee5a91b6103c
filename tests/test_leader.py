"""Redis leases, and the singleton jobs of several real server processes that they keep to one process."""

import asyncio
import logging
import os
import signal

import aiohttp
import pytest

from jiandong.store.kv import rkey
from jiandong.store.leases import Lease, run_as_leader
from tests.fakes import wechat as fake_wechat
from tests.fakes import wechatpay as fake_pay
from tests.fakes.aliyun_live import FakeAliyunLive
from tests.helpers.cluster import async_client
from tests.helpers.content import add_video, play
from tests.helpers.lives import add_stream, aliyun_settings, statuses
from tests.helpers.orders import add_product, order_row, order_with_prepay, wx_buyer
from tests.helpers.servers import server_env
from tests.helpers.waiting import until


@pytest.fixture
async def redis(redis_url):
    client = await async_client(redis_url, decode_responses=True)
    yield client
    await client.aclose()


@pytest.fixture
def key(settings):
    return f"{settings.redis_prefix}lease:test"


async def test_only_one_of_two_holders_gets_the_lease(redis, key):
    a, b = Lease(redis, key, ttl=30), Lease(redis, key, ttl=30)
    results = await asyncio.gather(a.acquire(), b.acquire())
    assert sorted(results) == [False, True]
    holder, other = (a, b) if results[0] else (b, a)
    assert await redis.get(key) == holder.value and holder.held and not other.held
    # Taking it again renews it; the other still cannot.
    assert await holder.acquire() and not await other.acquire()
    assert await holder.renew() and not await other.renew()
    # Renewed for the whole TTL again (the key would have lost some of it otherwise).
    await redis.pexpire(key, 1000)
    assert await holder.renew() and await redis.pttl(key) > 1000
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
    await until(expired, "the lease to expire")
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

        with caplog.at_level(logging.ERROR, logger="jiandong.store.leases"):
            await until(a_ran_twice, "the holder's rounds")
        assert runs["b"] == 0
        # The failed first round was logged and the loop went on.
        assert any("round failed" in r.getMessage() for r in caplog.records)

        # The holder stops without releasing (as if it died): the other takes over after the TTL.
        stops["a"].set()
        await tasks["a"]

        async def b_took_over() -> bool:
            return runs["b"] >= 2

        await until(b_took_over, "the takeover")
        assert await redis.get(key) == leases["b"].value
    finally:
        for name in tasks:
            stops[name].set()
        await asyncio.gather(*tasks.values())


# -- the singleton jobs of real server processes ------------------------------------------------

# The leases of the order upkeep, the counter flush and the Aliyun Live poll.
JOBS = ("orders", "counter_flush", "live_status")


@pytest.fixture
async def fake_live(aiohttp_server):
    fake = FakeAliyunLive()
    fake.url = str((await aiohttp_server(fake.app())).make_url("/"))
    return fake


def holder(redis_sync, settings, job: str) -> str | None:
    """The value of a job's lease: its holder's own."""
    return redis_sync.get(rkey(settings, "lease", job))


async def test_a_second_process_runs_no_singleton_job_until_the_holder_is_gone(
    servers, settings, tmp_path, sql, redis_sync, wechat, wxpay, fake_live
):
    """Each job's work is done only under its lease: a process that does not hold it never does it, even
    while the holder is frozen, until the holder's lease runs out and it takes over."""
    env = server_env(settings, tmp_path / "var", **{f"JIANDONG_{k.upper()}": str(v) for k, v in {
        **fake_wechat.settings_for(wechat), **fake_pay.settings_for(wxpay),
        **aliyun_settings(fake_live), "live_poll_interval": 0.1, "counter_flush_interval": 0.1,
        "reconcile_interval": 0.1,
        # With a WeChat AppID the server does not start without a public URL.
        "public_url": "https://club.example.com",
    }.items()})
    first, port, _ = await servers.start(env)
    await until(lambda: all(holder(redis_sync, settings, job) for job in JOBS), "the first process to take every lease")
    first_holds = {job: holder(redis_sync, settings, job) for job in JOBS}
    async with aiohttp.ClientSession(base_url=f"http://127.0.0.1:{port}") as http:
        token = await wx_buyer(http, wechat, sql)
        order = await order_with_prepay(http, token, add_product(sql))
    video_id = add_video(sql, "回放")
    live_id = add_stream(sql, "s1", 0)
    second, port, _ = await servers.start(env)
    os.kill(first.pid, signal.SIGSTOP)
    try:
        # Work for each job: a view to count, a payment whose notification is lost, a stream going live.
        async with aiohttp.ClientSession(base_url=f"http://127.0.0.1:{port}") as http:
            await play(http, token, video_id, 1)
        wxpay.pay(order["order_no"])
        fake_live.streams = [("live", "s1")]
        done = {
            "counter_flush": lambda: sql("SELECT browse_num FROM videos WHERE id = %s", video_id)[0]["browse_num"] == 1,
            "orders": lambda: order_row(sql, order["id"])["status"] == 1,
            "live_status": lambda: statuses(sql) == {"s1": 1},
        }
        by = {}

        def all_done() -> bool:
            # Who held each job's lease when its work was first seen done.
            for job, check in done.items():
                if job not in by and check():
                    by[job] = holder(redis_sync, settings, job)
            return len(by) == len(done)

        await until(all_done, "the second process to do every job")
        # Done by the second process once it had taken the lease over, never alongside the first.
        assert all(by[job] not in (None, first_holds[job]) for job in JOBS), (first_holds, by)
        assert {value.split(":")[1] for value in by.values()} == {str(second.pid)}
        assert sql("SELECT live_status FROM lives WHERE id = %s", live_id) == [{"live_status": 1}]
    finally:
        os.kill(first.pid, signal.SIGCONT)
