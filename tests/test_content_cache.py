"""The in-process content cache, its invalidation across processes, and `server.py invalidate`."""

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest

from jiandong.keys import content_cache_key
from jiandong.services.content_cache import shape
from tests.helpers.api import login
from tests.helpers.content_cache import listening
from tests.helpers.waiting import until

ROOT = Path(__file__).resolve().parent.parent
# Shapes of this module's own entries (a shape's name is declared once in the whole server).
MATCH = shape("competition", "test_cache_match", object)
CLIP = shape("video", "test_cache_clip", object)
STREAMING = shape("live", "test_cache_streaming", int)
TEXT = shape("config", "test_cache_text", str)


def run_server(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """python server.py with `args`, and of the JIANDONG_* variables only `env`."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("JIANDONG_")}
    return subprocess.run([sys.executable, "server.py", *args], cwd=ROOT, env={**clean, **env},
                          capture_output=True, text=True, timeout=120)


async def invalidate(settings, *what: str) -> subprocess.CompletedProcess[str]:
    """`server.py invalidate ...` against the Redis and key prefix of the app under test."""
    return await asyncio.to_thread(run_server, "invalidate", *what, JIANDONG_REDIS_URL=settings.redis_url,
                                   JIANDONG_REDIS_PREFIX=settings.redis_prefix)




async def test_cache_serves_until_invalidated_in_another_process(make_client, redis_sync, settings):
    first = await make_client()
    second = await make_client()
    cache_a = first.server.app[content_cache_key]
    cache_b = second.server.app[content_cache_key]
    await until(lambda: listening(redis_sync, settings, 2), "both cache listeners")
    calls = []

    def loader(value):
        async def load():
            calls.append(value)
            return value
        return load

    assert await cache_b.get(MATCH(1), loader("old")) == "old"
    assert await cache_b.get(MATCH(1), loader("new")) == "old"
    assert await cache_b.get(CLIP(1), loader("video")) == "video"
    await cache_a.invalidate("competition")

    async def dropped() -> bool:
        return await cache_b.get(MATCH(1), loader("new")) == "new"

    await until(dropped, "the other process to drop its entry")
    # other kinds survive
    assert await cache_b.get(CLIP(1), loader("other")) == "video"
    assert calls == ["old", "video", "new"]


async def test_concurrent_misses_share_one_load(client):
    cache = client.server.app[content_cache_key]
    calls = 0
    answered = asyncio.Event()

    async def load():
        nonlocal calls
        calls += 1
        # A slow query: it answers only once every caller has arrived.
        await answered.wait()
        return {"id": 7}

    callers = asyncio.gather(*(cache.get(MATCH(7), load) for _ in range(20)))
    await until(lambda: calls == 1, "the first load")
    answered.set()
    results = await callers
    assert calls == 1 and all(r == {"id": 7} for r in results)


async def test_failed_load_is_not_cached(client):
    cache = client.server.app[content_cache_key]

    async def fail():
        raise RuntimeError("db down")

    async def ok():
        return 1

    for _ in range(2):
        try:
            await cache.get(STREAMING(1), fail)
        except RuntimeError:
            pass
        else:
            raise AssertionError("expected the loader's error")
    assert await cache.get(STREAMING(1), ok) == 1


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
        await cache.get(CLIP(name), loader(name))
    await cache.get(CLIP("a"), loader("a"))  # a is now the most recently used
    await cache.get(CLIP("d"), loader("d"))  # b goes
    for name in ("a", "c", "d", "b"):
        await cache.get(CLIP(name), loader(name))
    assert loads == ["a", "b", "c", "d", "b"]


async def test_a_shape_holds_its_own_type_under_its_own_keys(client):
    """Two shapes never share an entry, whatever their parts, and a loader returning another type than its
    shape holds is refused: nothing is cached, and a reader gets the declared type or an error."""
    cache = client.server.app[content_cache_key]
    compiled = shape("config", "test_cache_compiled", bytes)

    async def text():
        return "傻瓜"

    async def pattern():
        return b"compiled"

    assert await cache.get(TEXT("chat_banned_words"), text) == "傻瓜"
    assert await cache.get(compiled("chat_banned_words"), pattern) == b"compiled"
    assert await cache.get(TEXT("chat_banned_words"), pattern) == "傻瓜"
    with pytest.raises(TypeError, match="test_cache_text"):
        await cache.get(TEXT("other"), pattern)
    assert await cache.get(TEXT("other"), text) == "傻瓜"
    with pytest.raises(ValueError, match="declared twice"):
        shape("live", "test_cache_text", str)
    with pytest.raises(ValueError, match="unknown content kind"):
        shape("players", "test_cache_players", str)


def test_every_cache_read_names_a_declared_shape():
    """No read of the content cache keys an entry by hand: each passes a shape's key."""
    source = ROOT / "jiandong"
    offenders = [f"{path.relative_to(ROOT)}:{n}" for path in source.rglob("*.py")
                 for n, line in enumerate(path.read_text().splitlines(), 1)
                 if ".get((" in line and ("cache" in line or "content" in line)]
    assert offenders == []


async def test_server_py_invalidate_user_shows_a_change_made_in_the_database(client, settings, sql, redis_sync):
    await until(lambda: listening(redis_sync, settings), "the app's cache listener")
    headers = {"token": await login(client, "edited-by-hand")}

    async def username() -> str:
        return (await (await client.get("/api/v1/user/info", headers=headers)).json())["username"]

    before = await username()
    [user] = sql("UPDATE users SET username = 'Renamed_By_Hand' RETURNING id")
    assert await username() == before  # cached: a change made in the database is not seen yet
    result = await invalidate(settings, "user", str(user["id"]))
    assert (result.returncode, result.stdout, result.stderr) == (
        0, f"invalidated user {user['id']}: 1 server process(es) received it\n", "")

    async def renamed() -> bool:
        return await username() == "Renamed_By_Hand"

    await until(renamed, "user/info to show the new name")


async def test_server_py_invalidate_content_shows_a_change_made_in_the_database(
    client, settings, sql, redis_sync
):
    await until(lambda: listening(redis_sync, settings), "the app's cache listener")
    sql("INSERT INTO config_values (code, name, value) VALUES ('copyright', '版权', '© 2025')")
    headers = {"token": await login(client)}

    async def copyright() -> str:
        resp = await client.post("/api/v1/config/value", data={"code": "copyright"}, headers=headers)
        return (await resp.json())["value"]

    assert await copyright() == "© 2025"
    sql("UPDATE config_values SET value = '© 2026' WHERE code = 'copyright'")
    assert await copyright() == "© 2025"
    result = await invalidate(settings, "content", "config")
    assert (result.returncode, result.stdout) == (0, "invalidated config: 1 server process(es) received it\n")

    async def changed() -> bool:
        return await copyright() == "© 2026"

    await until(changed, "config/value to show the new value")


def test_server_py_invalidate_refuses_what_it_cannot_do():
    for what in (["user", "alice"], ["content", "players"], ["user"], []):
        result = run_server("invalidate", *what, JIANDONG_REDIS_URL="redis://127.0.0.1:6379/15")
        assert result.returncode == 2 and "invalidate takes: user <user id> | content <" in result.stderr
    result = run_server("invalidate", "user", "1")
    assert result.returncode == 2 and "invalidate needs the server's Redis" in result.stderr
    result = run_server("invalidate", "content", "video", JIANDONG_REDIS_URL="redis://127.0.0.1:9/0")
    assert result.returncode == 1 and "could not publish the invalidation" in result.stderr
    assert "Traceback" not in result.stderr
