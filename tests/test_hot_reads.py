"""Cached content reads: served from each process's cache, changed everywhere on invalidation, counts exact."""

import asyncio
import typing

import pytest

from jiandong.keys import content_cache_key, view_counts_key
from jiandong.lib import encoding
from jiandong.services.counters import LookupBatcher
from tests.helpers.api import get_json, login
from tests.helpers.content import NOTIFY, add_banner, add_competition, add_live, add_video
from tests.helpers.content_cache import listeners
from tests.helpers.lives import SECRET, SRS, srs_body
from tests.helpers.waiting import until


async def two_processes(make_client, redis_sync, settings, **overrides) -> tuple[typing.Any, typing.Any, str]:
    """Two apps on one database and Redis prefix, as two server processes, both listening for
    invalidations; and a token valid in both. Their entries outlive any test (an hour): only an
    invalidation makes them read again."""
    first = await make_client(counter_flush_interval=3600, content_cache_ttl=3600, **overrides)
    second = await make_client(counter_flush_interval=3600, content_cache_ttl=3600, **overrides)
    await until(lambda: listeners(redis_sync, settings) >= 2, "the content cache listeners to subscribe")
    return first, second, await login(first)


async def eventually(read: typing.Callable[[], typing.Awaitable[typing.Any]], expected: typing.Any) -> None:
    """Poll `read` until it gives `expected` (another process applies an invalidation a message away)."""
    async def arrived() -> bool:
        return await read() == expected

    await until(arrived, f"{expected!r}")


class Case(typing.NamedTuple):
    kind: str
    arrange: typing.Callable[[typing.Any], int]  # sql -> id
    request: typing.Callable[[int], tuple[str, str, dict[str, typing.Any]]]  # id -> method, path, kwargs
    pick: typing.Callable[[typing.Any], typing.Any]  # answer -> the value that changes
    change: str  # SQL with one %s for the id


CASES = {
    "competition detail": Case(
        "competition",
        lambda sql: add_competition(sql, "旧标题"),
        lambda i: ("GET", f"/api/v1/competition/{i}", {}),
        lambda body: body["title"],
        "UPDATE competitions SET title = '新标题' WHERE id = %s",
    ),
    "video detail": Case(
        "video",
        lambda sql: add_video(sql, "旧标题"),
        lambda i: ("GET", f"/api/v1/competitionvideo/{i}", {}),
        lambda body: body["title"],
        "UPDATE videos SET title = '新标题' WHERE id = %s",
    ),
    "video list": Case(
        "video",
        lambda sql: add_video(sql, "旧标题"),
        lambda i: ("POST", "/api/v1/competition/video", {"data": {"type": "1"}}),
        lambda body: [item["title"] for item in body["data"]],
        "UPDATE videos SET title = '新标题' WHERE id = %s",
    ),
    "live detail": Case(
        "live",
        lambda sql: add_live(sql, "旧标题"),
        lambda i: ("GET", f"/api/v1/competitionlive/{i}", {}),
        lambda body: body["live_status"],
        "UPDATE lives SET live_status = 1 WHERE id = %s",
    ),
    "live list": Case(
        "live",
        lambda sql: add_live(sql, "旧标题"),
        lambda i: ("GET", "/api/v1/competition/live", {}),
        lambda body: [item["live_status"] for item in body["data"]],
        "UPDATE lives SET live_status = 1 WHERE id = %s",
    ),
    "banner": Case(
        "banner",
        lambda sql: add_banner(sql, 2, title="旧标题"),
        lambda i: ("GET", f"/api/v1/banner/{i}", {}),
        lambda body: body["title"],
        "UPDATE banners SET title = '新标题' WHERE id = %s",
    ),
    "carousel": Case(
        "banner",
        lambda sql: add_banner(sql, 2, title="旧标题"),
        lambda i: ("POST", "/api/v1/banner/by_position", {"data": {"id": "2"}}),
        lambda body: [item["title"] for item in body],
        "UPDATE banners SET title = '新标题' WHERE id = %s",
    ),
    "config value": Case(
        "config",
        lambda sql: sql("INSERT INTO config_values (code, value) VALUES ('ICP', '旧') RETURNING 1 AS id")[0]["id"],
        lambda i: ("POST", "/api/v1/config/value", {"data": [("code[]", "ICP")]}),
        lambda body: body["ICP"],
        "UPDATE config_values SET value = '新' WHERE code = 'ICP' AND 1 = %s",
    ),
}


@pytest.mark.parametrize("name", list(CASES))
async def test_a_change_announced_in_one_process_is_served_by_the_other(name, make_client, sql, redis_sync, settings):
    case = CASES[name]
    first, second, token = await two_processes(make_client, redis_sync, settings)
    ident = case.arrange(sql)
    method, path, kwargs = case.request(ident)

    async def read(client) -> typing.Any:
        return case.pick(await get_json(client, path, token, method=method, **kwargs))

    old = await read(second)
    sql(case.change, ident)
    new = await read(first)  # the first process never cached it: it reads the change
    assert new != old
    # Until the change is announced the second process serves what it cached: that is the caching.
    assert await read(second) == old
    await first.server.app[content_cache_key].invalidate(case.kind)
    await eventually(lambda: read(second), new)


async def test_a_stream_starting_reported_to_one_process_is_served_by_the_other(
    make_client, sql, redis_sync, settings
):
    """A change made through the product (the streaming server's callback), not by calling invalidate."""
    first, second, token = await two_processes(make_client, redis_sync, settings, live_push_secret=SECRET)
    live_id = add_live(sql, "决赛")

    async def statuses() -> tuple[int, list[int]]:
        detail = await get_json(second, f"/api/v1/competitionlive/{live_id}", token)
        page = await get_json(second, "/api/v1/competition/live", token)
        return detail["live_status"], [item["live_status"] for item in page["data"]]

    # Not listed before it starts (its detail answers).
    assert await statuses() == (0, [])
    resp = await first.post(SRS, json=srs_body("on_publish", "s1"))
    assert resp.status == 200 and await resp.json() == {"code": 0, "msg": "OK"}
    assert sql("SELECT live_status FROM lives WHERE id = %s", live_id) == [{"live_status": 1}]
    await eventually(statuses, (1, [1]))


async def test_a_change_made_in_the_database_shows_once_the_cache_ttl_has_passed(make_client, sql):
    client = await make_client(counter_flush_interval=3600, content_cache_ttl=0.5)
    token = await login(client)
    competition = add_competition(sql, "旧")
    assert await title(client, f"/api/v1/competition/{competition}", token) == "旧"
    sql("UPDATE competitions SET title = '新'")
    # Cached: a change made in the database, announced to no one, is not seen yet.
    assert await title(client, f"/api/v1/competition/{competition}", token) == "旧"
    await eventually(lambda: title(client, f"/api/v1/competition/{competition}", token), "新")


async def test_other_kinds_stay_cached_on_an_invalidation(make_client, sql, redis_sync, settings):
    first, second, token = await two_processes(make_client, redis_sync, settings)
    competition = add_competition(sql, "旧")
    video = add_video(sql, "旧")
    assert (await get_json(second, f"/api/v1/competition/{competition}", token))["title"] == "旧"
    assert (await get_json(second, f"/api/v1/competitionvideo/{video}", token))["title"] == "旧"
    sql("UPDATE competitions SET title = '新'")
    sql("UPDATE videos SET title = '新'")
    await first.server.app[content_cache_key].invalidate("video")
    await eventually(lambda: title(second, f"/api/v1/competitionvideo/{video}", token), "新")
    assert await title(second, f"/api/v1/competition/{competition}", token) == "旧"


async def title(client, path: str, token: str) -> str:
    return (await get_json(client, path, token))["title"]


def add_draft_competition(sql) -> int:
    return sql("INSERT INTO competitions (title, play_time, status) VALUES ('草稿', now(), 0) RETURNING id")[0]["id"]


@pytest.mark.parametrize(
    "add_draft, table, path",
    [
        (add_draft_competition, "competitions", "/api/v1/competition/{}"),
        (lambda sql: add_video(sql, "草稿", status=0), "videos", "/api/v1/competitionvideo/{}"),
        (lambda sql: add_live(sql, "草稿", status=0), "lives", "/api/v1/competitionlive/{}"),
        (lambda sql: add_banner(sql, 2, title="草稿", status=0), "banners", "/api/v1/banner/{}"),
    ],
    ids=["competition", "video", "live", "banner"],
)
async def test_a_miss_is_not_cached(make_client, sql, add_draft, table, path):
    client = await make_client(counter_flush_interval=3600)
    token = await login(client)
    ident = add_draft(sql)
    resp = await client.get(path.format(ident), headers={"token": token})
    assert resp.status == 404
    sql(f"UPDATE {table} SET status = 1 WHERE id = %s", ident)
    # Published with no announcement: shown at once, as the miss was not kept.
    body = await get_json(client, path.format(ident), token)
    assert body["id"] == ident and body["title"] == "草稿"


async def test_config_codes_cached_one_by_one_and_unknown_codes_not_at_all(client, token, sql):
    sql("INSERT INTO config_values (code, value) VALUES ('ICP', 'icp'), ('copyright', 'c')")
    path = "/api/v1/config/value"
    assert await get_json(client, path, token, method="POST", data={"code": "ICP"}) == {"value": "icp"}
    sql("UPDATE config_values SET value = value || '2'")
    # ICP comes from the cache; copyright is read now (in the same answer).
    both = await get_json(client, path, token, method="POST", data=[("code[]", "ICP"), ("code[]", "copyright")])
    assert both == {"ICP": "icp", "copyright": "c2"}
    body = await get_json(client, path, token, status=404, method="POST",
                          data=[("code[]", "ICP"), ("code[]", "seo_title")])
    assert body["msg"] == "请求配置不存在: seo_title"
    sql("INSERT INTO config_values (code, value) VALUES ('seo_title', 'n')")
    body = await get_json(client, path, token, method="POST", data=[("code[]", "ICP"), ("code[]", "seo_title")])
    assert body == {"ICP": "icp", "seo_title": "n"}
    await client.server.app[content_cache_key].invalidate("config")
    body = await get_json(client, path, token, method="POST", data=[("code[]", "ICP"), ("code[]", "copyright")])
    assert body == {"ICP": "icp2", "copyright": "c2"}


async def test_concurrent_cold_config_reads_agree(client, token, sql):
    sql("INSERT INTO config_values (code, value) VALUES ('ICP', '1'), ('copyright', '2'), ('seo_title', '3')")
    a, b, c = "ICP", "copyright", "seo_title"
    forms = [[("code[]", a), ("code[]", b)], [("code[]", b), ("code[]", c)], [("code[]", c), ("code[]", a)]]
    bodies = await asyncio.gather(
        *(get_json(client, "/api/v1/config/value", token, method="POST", data=form) for form in forms * 10)
    )
    expected = [{a: "1", b: "2"}, {b: "2", c: "3"}, {c: "3", a: "1"}] * 10
    assert bodies == expected


async def test_deep_pages_are_read_fresh_and_searches_briefly_cached(client, token, sql):
    for i in range(7):
        add_video(sql, f"视频{i}", published=f"2024-05-0{i + 1} 10:00:00+08")
    path = "/api/v1/competition/video"

    async def first_found(search: str) -> str:
        return (await get_json(client, path, token, method="POST", data={"search": search}))["data"][0]["title"]

    assert [v["title"] for v in (await get_json(client, path + "?page=7&size=1", token))["data"]] == ["视频0"]
    assert await first_found("视频0") == "视频0"
    sql("UPDATE videos SET title = title || '改'")
    assert [v["title"] for v in (await get_json(client, path + "?page=7&size=1", token))["data"]] == ["视频0改"]
    # A searched page is kept for SEARCH_CACHE_TTL seconds, or until videos change.
    assert await first_found("视频0") == "视频0"
    await client.server.app[content_cache_key].invalidate("video")
    assert await first_found("视频0") == "视频0改"
    # The first pages are cached.
    assert [v["title"] for v in (await get_json(client, path + "?page=1&size=1", token))["data"]] == ["视频6改"]
    sql("UPDATE videos SET title = 'x'")
    assert [v["title"] for v in (await get_json(client, path + "?page=1&size=1", token))["data"]] == ["视频6改"]


@pytest.mark.parametrize("kind, play_type", [("video", 1), ("live", 2)])
async def test_a_flush_keeps_served_counts_exact_in_every_process(
    kind, play_type, make_client, sql, redis_sync, settings
):
    first, second, token = await two_processes(make_client, redis_sync, settings)
    if kind == "video":
        ident = add_video(sql, "回放", browse_num=5)
    else:
        ident = add_live(sql, "直播", browse_num=5, live_status=1)
    detail = f"/api/v1/competition{kind}/{ident}"
    listing = f"/api/v1/competition/{kind}"

    async def served(client) -> tuple[int, int]:
        item = await get_json(client, detail, token)
        page = await get_json(client, listing, token)
        return item["browse_num"], page["data"][0]["browse_num"]

    for client in (first, second):
        assert await served(client) == (5, 5)  # both cache the stored count
    await asyncio.gather(
        *(get_json(first, NOTIFY, token, method="POST", data={"id": ident, "type": play_type}) for _ in range(7))
    )
    for client in (first, second):
        assert await served(client) == (12, 12)  # the cached count plus the pending plays

    moved = await first.server.app[view_counts_key].flush()
    assert moved[kind] == 7
    assert sql(f"SELECT browse_num FROM {kind}s") == [{"browse_num": 12}]
    # The flushing process dropped its entries before answering again; the other one on the message.
    assert await served(first) == (12, 12)
    await eventually(lambda: served(second), (12, 12))
    assert await served(second) == (12, 12)


async def test_a_thousand_concurrent_plays_survive_a_clean_shutdown(make_client, sql, redis_sync, settings):
    # A short flush interval: background flushes run while the plays come in.
    client = await make_client(counter_flush_interval=0.05)
    watcher = await make_client(counter_flush_interval=3600)
    token = await login(client)
    video_id = add_video(sql, "决赛回放", browse_num=100)
    detail = f"/api/v1/competitionvideo/{video_id}"
    assert (await get_json(watcher, detail, token))["browse_num"] == 100  # cached by the other process

    async def play() -> None:
        body = await get_json(client, NOTIFY, token, method="POST", data={"id": video_id, "type": 1})
        assert body["error_code"] == 0

    for _ in range(5):
        await asyncio.gather(*(play() for _ in range(200)))
    await client.close()  # clean shutdown: the last counts are flushed

    assert sql("SELECT browse_num FROM videos") == [{"browse_num": 1100}]
    assert redis_sync.hgetall(f"{settings.redis_prefix}views:video") == {}
    fresh = await make_client(counter_flush_interval=3600)
    assert (await get_json(fresh, detail, token))["browse_num"] == 1100
    # The process that cached the old count dropped it when the flushes were announced.
    await eventually(lambda: watcher_count(watcher, detail, token), 1100)


async def watcher_count(client, path: str, token: str) -> int:
    return (await get_json(client, path, token))["browse_num"]


async def test_concurrent_count_reads_share_round_trips_and_stay_exact():
    calls: list[list[int]] = []
    gate = asyncio.Event()
    stored = {1: 10, 2: 20}

    async def read(ids: list[int]) -> list[int]:
        calls.append(ids)
        values = [stored.get(i, 0) for i in ids]  # Redis answers as of the moment the read arrives
        await gate.wait()
        return values

    batcher = LookupBatcher(read)
    first = asyncio.create_task(batcher.get([1]))
    await asyncio.sleep(0)  # its read is in flight
    stored[1] = 11  # counted after the first read began, before the others
    others = [asyncio.create_task(batcher.get(ids)) for ids in ([1, 2], [2], [3])]
    await asyncio.sleep(0)
    gate.set()
    assert await first == {1: 10}
    # The three later reads went out together, after they began: they see the new count.
    results = await asyncio.gather(*others)
    assert calls == [[1], [1, 2, 3]]
    assert all(result == {1: 11, 2: 20} for result in results)


async def test_a_failed_count_read_reaches_every_caller_and_the_next_read_retries():
    attempts = 0

    async def read(ids: list[int]) -> list[int]:
        nonlocal attempts
        attempts += 1
        await asyncio.sleep(0)
        if attempts <= 2:
            raise ConnectionError("redis down")
        return [5 for _ in ids]

    batcher = LookupBatcher(read)
    results = await asyncio.gather(*(batcher.get([i]) for i in range(10)), return_exceptions=True)
    assert all(isinstance(r, ConnectionError) for r in results)
    assert await batcher.get([7]) == {7: 5}


async def test_many_concurrent_detail_reads_serve_the_same_exact_count(client, token, sql):
    video_id = add_video(sql, "回放", browse_num=40)
    await asyncio.gather(
        *(get_json(client, NOTIFY, token, method="POST", data={"id": video_id, "type": 1}) for _ in range(25))
    )
    bodies = await asyncio.gather(
        *(get_json(client, f"/api/v1/competitionvideo/{video_id}", token) for _ in range(100)),
        *(get_json(client, "/api/v1/competition/video", token) for _ in range(20)),
    )
    assert {body["browse_num"] for body in bodies[:100]} == {65}
    assert {body["data"][0]["browse_num"] for body in bodies[100:]} == {65}


@pytest.mark.parametrize(
    ("add_content", "path"),
    [
        (lambda sql: add_competition(sql, "已编码"), "/api/v1/competition/{}"),
        (lambda sql: add_banner(sql, 3, title="已编码", img_url="/media/b.png"), "/api/v1/banner/{}"),
        (lambda sql: add_banner(sql, 4, title="已编码") and 4, "/api/v1/banner/by_position?id={}"),
    ],
    ids=["competition", "banner", "carousel"],
)
async def test_a_cache_hit_answers_the_encoded_bytes_with_no_json_work(client, token, sql, monkeypatch,
                                                                       add_content, path):
    url = path.format(add_content(sql))
    first = await client.get(url, headers={"token": token})
    assert first.status == 200
    encoded: list[typing.Any] = []
    dumps = encoding.dumps
    monkeypatch.setattr(encoding, "dumps", lambda value: encoded.append(value) or dumps(value))
    again = await client.get(url, headers={"token": token})
    assert (again.status, await again.read(), encoded) == (200, await first.read(), [])
    # Stored paths still leave as absolute URLs: made so on the way out, on the cached bytes.
    assert b'"/media/' not in await again.read()
