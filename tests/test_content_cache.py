import asyncio

from jiandong.keys import content_cache_key


async def test_cache_serves_until_invalidated_in_another_process(make_client):
    first = await make_client()
    second = await make_client()
    cache_a = first.server.app[content_cache_key]
    cache_b = second.server.app[content_cache_key]
    await asyncio.sleep(0.1)  # both listeners subscribed
    calls = []

    def loader(value):
        async def load():
            calls.append(value)
            return value
        return load

    assert await cache_b.get(("competition", 1), loader("old")) == "old"
    assert await cache_b.get(("competition", 1), loader("new")) == "old"
    assert await cache_b.get(("video", 1), loader("video")) == "video"
    await cache_a.invalidate("competition")
    for _ in range(100):
        if await cache_b.get(("competition", 1), loader("new")) == "new":
            break
        await asyncio.sleep(0.01)
    else:
        raise AssertionError("the other process never dropped its entry")
    # other kinds survive
    assert await cache_b.get(("video", 1), loader("other")) == "video"
    assert calls == ["old", "video", "new"]


async def test_concurrent_misses_share_one_load(client):
    cache = client.server.app[content_cache_key]
    calls = 0

    async def load():
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.05)
        return {"id": 7}

    results = await asyncio.gather(*(cache.get(("competition", 7), load) for _ in range(20)))
    assert calls == 1 and all(r == {"id": 7} for r in results)


async def test_failed_load_is_not_cached(client):
    cache = client.server.app[content_cache_key]

    async def fail():
        raise RuntimeError("db down")

    async def ok():
        return 1

    for _ in range(2):
        try:
            await cache.get(("live", 1), fail)
        except RuntimeError:
            pass
        else:
            raise AssertionError("expected the loader's error")
    assert await cache.get(("live", 1), ok) == 1


async def test_least_recently_used_entries_go_first(client, monkeypatch):
    from jiandong.services import content_cache

    monkeypatch.setattr(content_cache, "MAX_ENTRIES", 3)
    cache = client.server.app[content_cache_key]
    loads = []

    def loader(name):
        async def load():
            loads.append(name)
            return name
        return load

    for name in ("a", "b", "c"):
        await cache.get(("video", name), loader(name))
    await cache.get(("video", "a"), loader("a"))  # a is now the most recently used
    await cache.get(("video", "d"), loader("d"))  # b goes
    for name in ("a", "c", "d", "b"):
        await cache.get(("video", name), loader(name))
    assert loads == ["a", "b", "c", "d", "b"]
