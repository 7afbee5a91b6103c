"""/metrics: Prometheus text read with prometheus_client's parser, labelled by route template, guarded, and
aggregated over --workers processes."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from jiandong.ops.metrics import Metrics
from jiandong.web.access import FLUSH_DELAY, RouteMeter
from tests.helpers.api import login
from tests.helpers.realtime import FAST, frame_of, send
from tests.helpers.servers import ROOT, free_port, server_env

pytestmark = pytest.mark.usefixtures("chat_rooms")

FAMILIES = {
    "jiandong_http_requests", "jiandong_http_request_duration_seconds", "jiandong_chat_connections",
    "jiandong_chat_rooms", "jiandong_chat_viewers", "jiandong_chat_messages_received", "jiandong_chat_deliveries",
    "jiandong_chat_slow_readers_dropped", "jiandong_chat_batch_frames", "jiandong_chat_history_lag_seconds",
    "jiandong_redis_pubsub_reconnects", "jiandong_db_pool_connections", "jiandong_db_pool_waiting",
    "jiandong_dependency_errors", "jiandong_dependency_up", "jiandong_payment_notifications",
    "jiandong_order_transitions", "jiandong_sms_codes", "jiandong_logins", "jiandong_job_leader",
    "jiandong_job_last_run_timestamp_seconds", "jiandong_job_duration_seconds", "jiandong_job_failures",
}


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of the exposition, by name and sorted labels."""
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def value(found: dict, name: str, **labels: str) -> float | None:
    return found.get((name, tuple(sorted(labels.items()))))


async def scrape(client, **headers: str) -> tuple[int, str]:
    resp = await client.get("/metrics", headers=headers)
    return resp.status, await resp.text()


async def test_metrics_by_route_template(make_client):
    client = await make_client(**FAST)
    token = await login(client, "metered")
    raw_paths = ("/api/v1/competition/123", "/api/v1/competition/456", "/api/v1/team/789/competitions",
                 "/no/such/page/42")
    for path in raw_paths:
        await client.get(path, headers={"token": token})
    async with client.ws_connect("/ws") as ws:
        await send(ws, type="LOGIN", room_id="7", token=token)
        await frame_of(ws, "LOGIN", myself=True)
        await send(ws, type="SEND_ALL", room_id="7", content="计数", token=token)
        await frame_of(ws, "SEND_ALL", myself=True)
    status, text = await scrape(client)
    assert status == 200
    families = {f.name for f in text_string_to_metric_families(text)}
    assert FAMILIES <= families, FAMILIES - families
    found = samples(text)
    assert value(found, "jiandong_http_requests_total", route="/api/v1/competition/{id}", method="GET",
                 status="404") == 2
    assert value(found, "jiandong_http_requests_total", route="/api/v1/team/{id}/competitions", method="GET",
                 status="404") == 1
    assert value(found, "jiandong_http_requests_total", route="<unmatched>", method="GET", status="404") == 1
    assert value(found, "jiandong_http_request_duration_seconds_count", route="/api/v1/competition/{id}") == 2
    assert value(found, "jiandong_logins_total", result="ok") == 1
    assert value(found, "jiandong_chat_messages_received_total", type="SEND_ALL") == 1
    assert value(found, "jiandong_chat_deliveries_total") >= 2
    # Bounded cardinality: no raw path is ever a label value.
    for (_, labels) in found:
        for _, label in labels:
            assert not any(raw in label for raw in ("123", "456", "789", "/no/such")), label


async def test_what_no_route_matches_is_metered_without_a_record_of_its_own(make_client):
    client = await make_client()
    pipeline = client.app.middlewares[0]
    for path in ("/healthz", "/api/v1/config/value", "/admin/login"):
        await client.get(path)
    known = dict(pipeline.routes)
    for n in range(100):
        assert (await client.get(f"/no/such/{n}")).status == 404
        assert (await client.post(f"/api/v1/nothing/{n}")).status == 404
        assert (await client.get(f"/admin/nothing/{n}")).status == 404
        assert (await client.put("/healthz")).status == 405
    # Each of those had a route object of its own (aiohttp's): keeping one per request would grow forever.
    assert pipeline.routes == known
    found = samples((await scrape(client))[1])
    assert value(found, "jiandong_http_requests_total", route="<unmatched>", method="GET", status="404") == 200
    assert value(found, "jiandong_http_requests_total", route="<unmatched>", method="POST", status="404") == 100
    assert value(found, "jiandong_http_requests_total", route="<unmatched>", method="PUT", status="405") == 100


async def test_metrics_only_from_allowed_networks_or_with_the_token(make_client):
    closed = await make_client(metrics_allow=("10.0.0.0/8",), metrics_token="scrape-me-please")
    assert (await scrape(closed))[0] == 403
    assert (await scrape(closed, Authorization="Bearer wrong-token"))[0] == 403
    status, text = await scrape(closed, Authorization="Bearer scrape-me-please")
    assert status == 200 and "jiandong_http_requests_total" in text
    loopback = await make_client()
    assert (await scrape(loopback))[0] == 200


async def test_metrics_of_every_worker_are_aggregated(settings, tmp_path):
    """python server.py --workers 2: each scrape, whichever worker answers it, counts both workers' requests
    (once FLUSH_DELAY has passed)."""
    port, chat_port = free_port(), free_port()
    env = server_env(settings, tmp_path / "var", JIANDONG_LOG_FORMAT="json")
    log = tmp_path / "server.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "server.py", "--port", str(port), "--chat-port", str(chat_port),
                                 "--workers", "2"], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        # A connection per request, so that either worker may accept each.
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as session:
            for _ in range(300):
                assert proc.poll() is None, log.read_text()
                try:
                    async with session.get(f"{url}/readyz") as resp:
                        if resp.status == 200 and log.read_text().count('"serving on') == 2:
                            break
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.1)
            sent, answered_by = 0, set()
            while len(answered_by) < 2 or sent < 20:
                assert sent < 500, "one worker took every connection"
                async with session.get(f"{url}/api/v1/competition/{1000 + sent}") as resp:
                    assert resp.status == 401
                sent += 1
                answered_by = workers_that_answered(log.read_text(), "/api/v1/competition/{id}")

            async def scrape() -> dict:
                async with session.get(f"{url}/metrics") as resp:
                    assert resp.status == 200
                    return samples(await resp.text())

            # A worker hands its counts over within FLUSH_DELAY (the one that answers a scrape, at once).
            deadline = time.monotonic() + 30
            while value(await scrape(), "jiandong_http_requests_total", route="/api/v1/competition/{id}",
                        method="GET", status="401") != sent:
                assert time.monotonic() < deadline, "a worker's counts never reached the shared files"
                await asyncio.sleep(FLUSH_DELAY)
            scrapes = [await scrape() for _ in range(6)]
        for found in scrapes:
            assert value(found, "jiandong_http_requests_total", route="/api/v1/competition/{id}", method="GET",
                         status="401") == sent
        assert workers_that_answered(log.read_text(), "/metrics") <= {"worker 1", "worker 2"}
        print(f"{sent} requests answered by {sorted(answered_by)}; every scrape counted {sent}")
    finally:
        proc.terminate()
        await asyncio.to_thread(proc.wait, 60)
    # Every line of the run was one JSON object.
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert {line.get("process") for line in lines} == {"main", "worker 1", "worker 2"}


def workers_that_answered(log: str, route: str) -> set[str]:
    answered = set()
    for line in log.splitlines():
        if f'"route":"{route}"' in line:
            answered.add(json.loads(line)["process"])
    return answered


def test_metrics_dir_is_the_instances_and_emptied_at_start(tmp_path):
    """A --workers start empties its metrics directory: the last run's counts do not add to this one's."""
    from jiandong.ops.metrics import MULTIPROC_ENV, prepare_multiprocess_dir
    from jiandong.settings import Settings

    stale = tmp_path / "var" / "metrics" / "8080"
    stale.mkdir(parents=True)
    (stale / "counter_123.db").write_bytes(b"old")
    before = os.environ.get(MULTIPROC_ENV)
    try:
        assert prepare_multiprocess_dir(Settings(var_dir=str(tmp_path / "var"))) == stale
        assert list(stale.iterdir()) == [] and os.environ[MULTIPROC_ENV] == str(stale)
    finally:
        if before is None:
            os.environ.pop(MULTIPROC_ENV, None)
        else:
            os.environ[MULTIPROC_ENV] = before


def test_counts_held_per_route_flush_to_what_prometheus_client_would_have_counted():
    """A route's counts, held in integers and flushed, expose exactly what inc() and observe() per request
    would: every bucket (a duration on a bound included), the sum, the count, each method and status."""
    durations = [0.0, 0.004, 0.005, 0.0051, 0.25, 0.3, 2.5, 10.0, 11.0, 1e9]
    requests = [("GET", 200), ("GET", 200), ("POST", 400), ("BREW", 200), ("GET", 101)]
    held, direct = Metrics(), Metrics()
    meter = RouteMeter(held, "/api/v1/x")
    for method, status in requests:
        meter.add(method, status, None)
        direct.http_requests.labels("/api/v1/x", method if method != "BREW" else "other", str(status)).inc()
    for seconds in durations:
        meter.add("GET", 200, seconds)
        direct.http_requests.labels("/api/v1/x", "GET", "200").inc()
        direct.http_duration.labels("/api/v1/x").observe(seconds)
    meter.flush()
    meter.flush()  # nothing more: what was flushed is not added twice
    def counted(metrics: Metrics) -> dict:
        return {k: v for k, v in samples(metrics.exposition().decode()).items() if not k[0].endswith("_created")}

    exposed = counted(held)
    assert exposed == counted(direct)
    assert value(exposed, "jiandong_http_request_duration_seconds_bucket", route="/api/v1/x", le="0.005") == 3
    assert value(exposed, "jiandong_http_requests_total", route="/api/v1/x", method="other", status="200") == 1
