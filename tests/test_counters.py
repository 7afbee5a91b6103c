import asyncio

import psycopg2
import pytest
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError

from jiandong.keys import view_counts_key
from jiandong.services.counters import IncrementBatcher
from jiandong.settings import Settings, SettingsError
from jiandong.store.kv import tagged
from tests.helpers.api import get_json, login
from tests.helpers.cluster import async_client
from tests.helpers.content import add_live, add_video, play
from tests.helpers.waiting import until


@pytest.fixture
async def client(make_client):
    # The background flusher stays out of the way; tests flush explicitly unless they test the loop.
    return await make_client(counter_flush_interval=3600)


def views_key(settings, kind: str, *parts: str) -> str:
    return tagged(settings, ("views", kind), *parts)


def counter_keys(redis_sync, settings) -> list[str]:
    return sorted(redis_sync.scan_iter(match=f"{settings.redis_prefix}{{views:*"))




async def test_concurrent_plays_flush_exactly(client, token, sql, redis_sync, settings):
    video_id = add_video(sql, "决赛", browse_num=10)
    live_id = add_live(sql, "直播", browse_num=3)
    await asyncio.gather(play(client, token, video_id, 1, 200), play(client, token, live_id, 2, 50))
    assert sql("SELECT browse_num FROM videos") == [{"browse_num": 10}]

    moved = await client.server.app[view_counts_key].flush()
    assert moved == {"video": 200, "live": 50}
    assert sql("SELECT browse_num FROM videos") == [{"browse_num": 210}]
    assert sql("SELECT browse_num FROM lives") == [{"browse_num": 53}]
    assert counter_keys(redis_sync, settings) == []
    # Nothing counted twice: the served count equals the stored one.
    assert (await get_json(client, f"/api/v1/competitionvideo/{video_id}", token))["browse_num"] == 210
    assert await client.server.app[view_counts_key].flush() == {"video": 0, "live": 0}


async def test_concurrent_flushes_move_each_count_once(client, token, sql, redis_sync, settings):
    ids = [add_video(sql, f"视频{i}") for i in range(5)]
    counts = client.server.app[view_counts_key]

    async def plays_and_flushes():
        await asyncio.gather(*(play(client, token, video_id, 1, 20) for video_id in ids))

    await asyncio.gather(plays_and_flushes(), *(counts.flush() for _ in range(5)))
    await asyncio.gather(counts.flush(), counts.flush())
    assert sql("SELECT sum(browse_num) AS n FROM videos") == [{"n": 100}]
    assert counter_keys(redis_sync, settings) == []


async def test_plays_during_a_flush_are_kept(client, token, sql, db_conn, database_url, redis_sync, settings):
    video_id = add_video(sql, "决赛")
    await play(client, token, video_id, 1, 3)
    counts = client.server.app[view_counts_key]

    # Hold the row so the flush is stuck in its UPDATE, after it took the counts out of the main hash.
    blocker = psycopg2.connect(database_url)
    try:
        with blocker.cursor() as cur:
            cur.execute("SELECT id FROM videos WHERE id = %s FOR UPDATE", (video_id,))
        flush = asyncio.create_task(counts.flush())
        await until(
            lambda: sql(
                "SELECT 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%%UPDATE videos%%'"
            ),
            "the flush to wait for the row lock",
        )
        assert pending_main(redis_sync, settings) == {}
        await play(client, token, video_id, 1, 2)
        assert pending_main(redis_sync, settings) == {str(video_id): "2"}
        # Served counts include the in-flight ones.
        assert (await get_json(client, f"/api/v1/competitionvideo/{video_id}", token))["browse_num"] == 5
    finally:
        blocker.rollback()
        blocker.close()
    assert await flush == {"video": 3, "live": 0}
    assert sql("SELECT browse_num FROM videos") == [{"browse_num": 3}]
    assert pending_main(redis_sync, settings) == {str(video_id): "2"}
    assert (await get_json(client, f"/api/v1/competitionvideo/{video_id}", token))["browse_num"] == 5
    await counts.flush()
    assert sql("SELECT browse_num FROM videos") == [{"browse_num": 5}]
    assert counter_keys(redis_sync, settings) == []


def pending_main(redis_sync, settings, kind: str = "video") -> dict[str, str]:
    return redis_sync.hgetall(views_key(settings, kind))


@pytest.fixture
def failing_live_updates(sql):
    sql(
        "CREATE FUNCTION test_refuse_update() RETURNS trigger LANGUAGE plpgsql AS"
        " $$ BEGIN RAISE EXCEPTION 'refused by test'; END $$"
    )
    sql("CREATE TRIGGER test_refuse_update BEFORE UPDATE ON lives FOR EACH ROW EXECUTE FUNCTION test_refuse_update()")
    try:
        yield lambda: sql("DROP TRIGGER IF EXISTS test_refuse_update ON lives")
    finally:
        sql("DROP TRIGGER IF EXISTS test_refuse_update ON lives")
        sql("DROP FUNCTION test_refuse_update()")


async def test_a_failed_flush_puts_the_counts_back(client, token, sql, redis_sync, settings, failing_live_updates):
    video_id = add_video(sql, "回放")
    live_id = add_live(sql, "直播")
    await play(client, token, video_id, 1, 2)
    await play(client, token, live_id, 2, 4)
    counts = client.server.app[view_counts_key]
    with pytest.raises(psycopg2.Error, match="refused by test"):
        await counts.flush()
    # Videos went through; the lives' counts are back in the main hash, still served.
    assert sql("SELECT browse_num FROM videos") == [{"browse_num": 2}]
    assert sql("SELECT browse_num FROM lives") == [{"browse_num": 0}]
    assert counter_keys(redis_sync, settings) == [views_key(settings, "live")]
    assert pending_main(redis_sync, settings, "live") == {str(live_id): "4"}
    assert (await get_json(client, f"/api/v1/competitionlive/{live_id}", token))["browse_num"] == 4

    failing_live_updates()  # the database recovers
    await play(client, token, live_id, 2, 1)
    assert await counts.flush() == {"video": 0, "live": 5}
    assert sql("SELECT browse_num FROM lives") == [{"browse_num": 5}]
    assert counter_keys(redis_sync, settings) == []


async def test_counts_of_a_dead_flusher_are_put_back(client, token, sql, redis_sync, settings):
    video_id = add_video(sql, "回放")
    flushing, dead, busy = (views_key(settings, "video", *parts) for parts in (
        ("flushing",), ("flush", "dead"), ("flush", "busy")))
    # A flusher that died after taking its counts: its key is listed as in flight since long ago.
    redis_sync.hset(dead, str(video_id), 7)
    redis_sync.zadd(flushing, {dead: 1_000})
    # One still working (listed just now) is left alone.
    redis_sync.hset(busy, str(video_id), 1)
    now_ms = int(redis_sync.time()[0]) * 1000
    redis_sync.zadd(flushing, {busy: now_ms})
    await play(client, token, video_id, 1, 2)
    assert (await get_json(client, f"/api/v1/competitionvideo/{video_id}", token))["browse_num"] == 10

    counts = client.server.app[view_counts_key]
    assert await counts.recover_stale() == 1
    assert pending_main(redis_sync, settings) == {str(video_id): "9"}
    assert redis_sync.zrange(flushing, 0, -1) == [busy]
    assert (await get_json(client, f"/api/v1/competitionvideo/{video_id}", token))["browse_num"] == 10
    await counts.flush()
    assert sql("SELECT browse_num FROM videos") == [{"browse_num": 9}]


@pytest.mark.single_redis("the keys of versions before the hash tags exist only on a single Redis")
async def test_counts_kept_under_an_earlier_versions_keys_are_flushed(client, token, sql, redis_sync, settings):
    """Versions before the hash tags kept pending plays in `<prefix>views:<kind>` (flush keys listed in
    `...:flushing`): a flush round after the upgrade carries them over, a live flush's key only once it is dead."""
    video_id, live_id = add_video(sql, "回放"), add_live(sql, "直播")
    earlier = f"{settings.redis_prefix}views:"
    redis_sync.hset(earlier + "video", str(video_id), 5)
    redis_sync.hset(earlier + "live", str(live_id), 2)
    dead, busy = earlier + "video:flush:dead", earlier + "video:flush:busy"
    redis_sync.hset(dead, str(video_id), 7)
    redis_sync.hset(busy, str(video_id), 100)
    now_ms = int(redis_sync.time()[0]) * 1000
    redis_sync.zadd(earlier + "video:flushing", {dead: 1_000, busy: now_ms})
    await play(client, token, video_id, 1)

    counts = client.server.app[view_counts_key]
    assert await counts.recover_stale() == 3
    assert await counts.flush() == {"video": 13, "live": 2}
    assert sql("SELECT browse_num FROM videos") == [{"browse_num": 13}]
    assert sql("SELECT browse_num FROM lives") == [{"browse_num": 2}]
    # What is left: the flush still in flight (its earlier-version process finishes it).
    assert sorted(redis_sync.scan_iter(match=earlier + "*")) == [busy, earlier + "video:flushing"]


async def test_shutdown_flushes_pending_counts(make_client, sql, redis_sync, settings):
    client = await make_client(counter_flush_interval=3600)
    token = await login(client)
    video_id = add_video(sql, "回放")
    live_id = add_live(sql, "直播")
    await play(client, token, video_id, 1, 4)
    await play(client, token, live_id, 2, 2)
    await client.close()
    assert sql("SELECT browse_num FROM videos") == [{"browse_num": 4}]
    assert sql("SELECT browse_num FROM lives") == [{"browse_num": 2}]
    assert counter_keys(redis_sync, settings) == []
    assert redis_sync.get(f"{settings.redis_prefix}lease:counter_flush") is None


async def test_background_flush_by_one_of_two_processes(make_client, sql, redis_sync, settings, caplog):
    # Two apps on one Redis prefix stand for two server processes.
    first = await make_client(counter_flush_interval=0.05)
    second = await make_client(counter_flush_interval=0.05)
    video_id = add_video(sql, "回放")
    await play(first, await login(first, "a"), video_id, 1, 3)
    await play(second, await login(second, "b"), video_id, 1, 4)
    await until(lambda: sql("SELECT browse_num FROM videos")[0]["browse_num"] == 7, "the background flush")
    assert pending_main(redis_sync, settings) == {}
    holder = redis_sync.get(f"{settings.redis_prefix}lease:counter_flush")
    assert holder is not None
    # A failing round (Redis keys of the wrong type) is logged and the loop carries on.
    redis_sync.set(views_key(settings, "live", "flushing"), "not a sorted set")
    await play(first, await login(first, "a"), video_id, 1, 1)
    await until(lambda: "counter flush: round failed" in caplog.text, "a failed round")
    redis_sync.delete(views_key(settings, "live", "flushing"))
    await until(lambda: sql("SELECT browse_num FROM videos")[0]["browse_num"] == 8, "the next flush")


async def test_batched_increments_are_exact_and_errors_reach_every_caller(redis_url, settings, redis_sync):
    key = f"{settings.redis_prefix}views:batch"
    good = await async_client(redis_url, decode_responses=True)
    try:
        batcher = IncrementBatcher(good)
        await asyncio.gather(*(batcher.incr(key, str(i % 3)) for i in range(300)))
        assert redis_sync.hgetall(key) == {"0": "100", "1": "100", "2": "100"}
    finally:
        await good.aclose()
    # Nothing listens on port 1: every caller of the failed batch gets the error, none hangs.
    bad = Redis.from_url("redis://127.0.0.1:1", decode_responses=True)
    try:
        batcher = IncrementBatcher(bad)
        results = await asyncio.gather(*(batcher.incr(key, "0") for _ in range(20)), return_exceptions=True)
        assert all(isinstance(r, RedisConnectionError) for r in results)
        assert redis_sync.hget(key, "0") == "100"
    finally:
        await bad.aclose()


def test_flush_interval_must_be_positive():
    with pytest.raises(SettingsError, match="counter_flush_interval"):
        Settings(counter_flush_interval=0)
