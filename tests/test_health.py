"""/healthz and /readyz: the process answers; its dependencies answer, its schema is current, it is not stopping."""

from __future__ import annotations

import asyncio
import uuid

from tests.helpers.realtime import FAST
from tests.helpers.waiting import until


async def ready(client) -> tuple[int, dict]:
    resp = await client.get("/readyz")
    return resp.status, await resp.json()


async def test_healthz_and_readyz_when_all_is_well(client):
    resp = await client.get("/healthz")
    assert resp.status == 200 and await resp.json() == {"status": "ok"}
    assert await ready(client) == (200, {"status": "ready"})


async def test_readyz_turns_503_naming_redis_while_it_is_away_and_back(own_redis, make_client):
    client = await make_client(redis_url=own_redis.url, redis_timeout=0.5, redis_prefix=f"r{uuid.uuid4().hex[:8]}:",
                               **FAST)
    assert await ready(client) == (200, {"status": "ready"})
    await asyncio.to_thread(own_redis.kill)
    try:
        resp = await client.get("/readyz")
        body = await resp.json()
        print("Redis stopped:", resp.status, body)
        assert resp.status == 503 and resp.headers["Retry-After"] == "5"
        assert body == {"status": "unavailable", "failing": ["Redis"]}
        # Still up: the process answers, only not ready.
        assert (await client.get("/healthz")).status == 200
    finally:
        await asyncio.to_thread(own_redis.start)
    for _ in range(100):
        status, body = await ready(client)
        if status == 200:
            break
        await asyncio.sleep(0.05)
    print("Redis back:", status, body)
    assert (status, body) == (200, {"status": "ready"})


async def test_readyz_names_a_schema_behind_the_code(client, sql):
    (latest,) = sql("SELECT max(version) AS v FROM schema_migrations")
    sql("DELETE FROM schema_migrations WHERE version = %s", latest["v"])
    try:
        assert await ready(client) == (503, {"status": "unavailable", "failing": ["schema"]})
    finally:
        sql("INSERT INTO schema_migrations (version, name) VALUES (%s, 'restored')", latest["v"])


async def test_readyz_is_503_once_the_server_shuts_down(client):
    assert (await ready(client))[0] == 200
    # What a SIGTERM starts: the shutdown hooks run while requests in flight are still answered.
    await client.app.shutdown()
    assert await ready(client) == (503, {"status": "unavailable", "failing": ["shutdown"]})


async def test_readyz_turns_503_naming_postgresql_while_it_is_away_and_back(own_postgres, make_client):
    database = await asyncio.to_thread(own_postgres.create_database, "health")
    client = await make_client(database_url=database, db_timeout=1.0, **FAST)
    assert await ready(client) == (200, {"status": "ready"})
    await asyncio.to_thread(own_postgres.stop)
    try:
        resp = await client.get("/readyz")
        assert (resp.status, resp.headers["Retry-After"]) == (503, "5")
        assert await resp.json() == {"status": "unavailable", "failing": ["PostgreSQL"]}
        assert (await client.get("/healthz")).status == 200
    finally:
        await asyncio.to_thread(own_postgres.start)
    await until(lambda: _is_ready(client), "readyz to answer 200 again")


async def _is_ready(client) -> bool:
    return (await ready(client))[0] == 200
