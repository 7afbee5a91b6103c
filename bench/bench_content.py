"""Hot content reads and play counting on the real server against a bare aiohttp handler, in one run.

    python bench/bench_content.py [--duration 10] [--connections 50] [--threads 2] [--smoke]

Uses a database `jiandong_bench_content` on the PostgreSQL at --database-url (made once and kept,
with the large demo set loaded once: 10,000 matches and 100,000 videos; --smoke makes do with the
small set), Redis at --redis-url (embedded servers when those do not answer). Starts
`python server.py` and bench/bare_server.py (one process each), logs in with a development WeChat
code, and loads, each against the bare handler answering the same body with the same client,
connections and duration:

    GET  /api/v1/competition/<id>                      a match's detail            target >= 0.8x, floor 0.12x
    POST /api/v1/competition/video search=全场回放 size=30  a search page               target >= 0.2x, floor 0.01x
    POST /api/v1/competition/play_notify id=<id> type=1    counting a play of a video   target >= 0.4x, floor 0.05x

and prints requests/s of each and the ratios. The server runs as deployed: access log and metrics on,
on uvloop when installed (--event-loop); the bare server is plain aiohttp on asyncio (--bare-event-loop).
The load generator is wrk (POST bodies from a Lua script), or without wrk an aiohttp client in --threads
processes.

Exit status 1 when a ratio falls below its floor: a regression guard well under the target, which a
noisy machine does not cross (CI runs it with --smoke), not a timing test.
"""

from __future__ import annotations

import subprocess
import sys
from urllib.parse import urlencode

# bench/ is the script's directory, so its modules import by name.
from common import (
    ROOT,
    Result,
    Target,
    bench_run,
    choose_load,
    client_line,
    cpu_ratio,
    cursor,
    log,
    login,
    measure,
    parse,
    parser,
    request,
    start_app,
    start_bare,
)

DATABASE = "jiandong_bench_content"
# Where an embedded PostgreSQL keeps the database between runs (loading the large set takes a while).
EMBEDDED_DIR = ROOT / "var" / "bench"
# Markers jiandong/demo/club.py leaves in config_values.
SMALL_MARKER, LARGE_MARKER = "demo_data", "demo_data_large"
SEARCH_TERM = "全场回放"
SEARCH_SIZE = 30
FORM = "application/x-www-form-urlencoded"


def loaded(database_url: str, marker: str) -> bool:
    with cursor(database_url) as cur:
        cur.execute("SELECT to_regclass('config_values') IS NOT NULL")
        if not cur.fetchone()[0]:
            return False
        cur.execute("SELECT 1 FROM config_values WHERE code = %s", (marker,))
        return cur.fetchone() is not None


def load_demo(env: dict[str, str], large: bool) -> None:
    """Load the demo set with `python server.py demo`, unless it is there already."""
    if loaded(env["JIANDONG_DATABASE_URL"], LARGE_MARKER if large else SMALL_MARKER):
        log(f"{'large' if large else 'small'} demo set already in {DATABASE}")
        return
    log(f"loading the {'large' if large else 'small'} demo set into {DATABASE} (once) ...")
    argv = [sys.executable, "server.py", "demo"] + (["--demo-size", "large"] if large else [])
    subprocess.run(argv, cwd=ROOT, env=env, check=True, stdin=subprocess.DEVNULL)


def pick_ids(database_url: str) -> tuple[int, int]:
    """A published match and a published video of the demo set."""
    with cursor(database_url) as cur:
        cur.execute("SELECT min(id) FROM competitions WHERE status = 1")
        competition_id = cur.fetchone()[0]
        cur.execute("SELECT min(id) FROM videos WHERE status = 1")
        video_id = cur.fetchone()[0]
    if competition_id is None or video_id is None:
        raise SystemExit(f"{DATABASE} has no published match or video")
    return competition_id, video_id


def main() -> int:
    args = parse(parser(__doc__, DATABASE))
    client, load = choose_load(args)
    with bench_run(args, DATABASE, keep_database=True, embedded_dir=EMBEDDED_DIR) as run:
        load_demo(run.env, large=not args.smoke)
        competition_id, video_id = pick_ids(run.env["JIANDONG_DATABASE_URL"])
        base = start_app(run)
        token = login(base)
        cases = [
            ("GET /api/v1/competition/<id>", (0.8, 0.12), "GET", f"/api/v1/competition/{competition_id}", b""),
            (f"POST /api/v1/competition/video search={SEARCH_TERM}", (0.2, 0.01), "POST",
             "/api/v1/competition/video", urlencode({"search": SEARCH_TERM, "size": SEARCH_SIZE}).encode()),
            ("POST /api/v1/competition/play_notify", (0.4, 0.05), "POST", "/api/v1/competition/play_notify",
             urlencode({"id": video_id, "type": 1}).encode()),
        ]
        bodies = []
        for _, _, method, path, body in cases:
            headers = {"token": token, **({"Content-Type": FORM} if body else {})}
            bodies.append(request(base + path, data=body if method == "POST" else None, headers=headers))
        found = len(bodies[1]["data"])
        if found < min(SEARCH_SIZE, bodies[1]["total"]) or found == 0:
            raise SystemExit(f"the search for {SEARCH_TERM} found {found} videos")
        bare = start_bare(
            run, [(method, path, body) for (_, _, method, path, _), body in zip(cases, bodies, strict=True)]
        )

        log(f"load: {client}, {args.threads} thread(s), {args.connections} connections, {args.duration} s per server")
        results: list[tuple[str, tuple[float, float], Result, Result]] = []
        for name, target, method, path, body in cases:
            headers = {"token": token, **({"Content-Type": FORM} if body else {})}
            bare_result = measure(load, f"bare {path}", Target(bare + path, method, body, headers), args)
            app_result = measure(load, name, Target(base + path, method, body, headers), args)
            results.append((name, target, bare_result, app_result))

    print(client_line(client, args))
    print(f"{'endpoint':<56} {'bare req/s':>11} {'app req/s':>11} {'ratio':>6} {'target':>7} {'floor':>6}"
          f"   CPU µs/request: bare, app, ratio")
    failed = False
    for name, (target, floor), bare_result, app_result in results:
        ratio = app_result.requests_per_second / bare_result.requests_per_second if bare_result.requests else 0.0
        mark = "" if ratio >= target else "  below target" if ratio >= floor else "  BELOW FLOOR"
        print(f"{name:<56} {bare_result.requests_per_second:11.1f} {app_result.requests_per_second:11.1f}"
              f" {ratio:6.2f} {target:6.2f}x {floor:5.2f}x   {bare_result.cpu_us:6.1f} {app_result.cpu_us:6.1f}"
              f" {cpu_ratio(bare_result, app_result):5.2f}{mark}")
        if ratio < floor:
            print(f"below its floor: {name}: {ratio:.2f} < {floor:.2f}", file=sys.stderr)
            failed = True
        if bare_result.errors or app_result.errors:
            print(f"errors: {name}: bare {bare_result.errors}, app {app_result.errors}", file=sys.stderr)
            failed = True
        if not (bare_result.requests and app_result.requests):
            print(f"no request completed: {name}", file=sys.stderr)
            failed = True
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
