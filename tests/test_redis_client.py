"""JIANDONG_REDIS_URL names one Redis or a Redis Cluster (seeds): the server finds out which, and its start-up
log says so when it is a cluster (the URL alone does not tell)."""

from __future__ import annotations

import dataclasses
import logging

import pytest
from aiohttp import web

from jiandong.keys import redis_key, settings_key
from jiandong.store.kv import detect_cluster, is_cluster, redis_ctx, seed_urls


@pytest.mark.parametrize("url, seeds", [
    ("redis://127.0.0.1:6379/15", ["redis://127.0.0.1:6379/15"]),
    ("redis://a:1,b:2/0", ["redis://a:1/0", "redis://b:2/0"]),
    ("redis://:secret@a:1,b:2", ["redis://:secret@a:1", "redis://:secret@b:2"]),
    ("unix:///run/redis.sock", ["unix:///run/redis.sock"]),
])
def test_each_host_of_a_url_is_a_seed(url, seeds):
    assert seed_urls(url) == seeds


async def opened(settings) -> tuple[bool, bool]:
    """Whether redis_ctx opened a cluster client, and whether it still answers PING."""
    app = web.Application()
    app[settings_key] = settings
    ctx = redis_ctx(app)
    await anext(ctx)
    try:
        return is_cluster(app[redis_key]), bool(await app[redis_key].ping())
    finally:
        await anext(ctx, None)


async def test_a_cluster_is_found_through_any_seed_and_named_in_the_log(redis_cluster, settings, caplog):
    # A seed that answers nothing first: the next one is asked.
    dead = "127.0.0.1:1"
    hosts = redis_cluster.url.removeprefix("redis://")
    on_cluster = dataclasses.replace(settings, redis_url=f"redis://{dead},{hosts}")
    with caplog.at_level(logging.INFO, logger="jiandong.store.kv"):
        assert await opened(on_cluster) == (True, True)
    assert await detect_cluster(on_cluster.redis_url, on_cluster)
    lines = [r.getMessage() for r in caplog.records if r.name == "jiandong.store.kv"]
    assert len(lines) == 1 and lines[0].startswith("Redis Cluster of 3 masters at redis://"), lines


@pytest.mark.single_redis
async def test_a_single_redis_is_no_cluster_and_is_not_announced(settings, caplog):
    with caplog.at_level(logging.INFO, logger="jiandong.store.kv"):
        assert await opened(settings) == (False, True)
    assert not [r for r in caplog.records if r.name == "jiandong.store.kv"]
