"""GET /api/v1/user/info on the real server against a bare aiohttp handler, loaded the same way in one run.

    python bench/bench_user_info.py [--duration 10] [--connections 50] [--threads 2] [--smoke]

Starts `python server.py` (a database `jiandong_bench` of its own on the PostgreSQL at --database-url,
Redis at --redis-url; embedded servers when those do not answer) and bench/bare_server.py, logs in
with a development WeChat code, then loads both with wrk (or, without wrk, an aiohttp client in
--threads processes) and prints requests/s of each and their ratio. Both servers are one process,
the real one as deployed (access log and metrics on, uvloop when installed).

Exit status 1 below the floor, 0.15x: a regression guard well under where it stands (0.32x on a quiet
2-core machine with --smoke), not a timing test.
"""

from __future__ import annotations

import sys

# bench/ is the script's directory, so its modules import by name.
from common import (
    Target,
    bench_run,
    choose_load,
    client_line,
    cpu_ratio,
    log,
    login,
    measure,
    parse,
    parser,
    request,
    start_app,
    start_bare,
)

DATABASE = "jiandong_bench"
PATH = "/api/v1/user/info"
FLOOR = 0.15


def main() -> int:
    args = parse(parser(__doc__, DATABASE))
    client, load = choose_load(args)
    with bench_run(args, DATABASE) as run:
        base = start_app(run)
        token = login(base)
        headers = {"token": token}
        body = request(base + PATH, headers=headers)
        bare = start_bare(run, [("GET", PATH, body)])
        if request(bare + PATH).keys() != body.keys():
            raise SystemExit("the bare handler's body differs from user/info's")

        log(f"load: {client}, {args.threads} thread(s), {args.connections} connections, {args.duration} s per server")
        results = {
            "bare": measure(load, "bare", Target(bare + PATH, headers=headers), args),
            "user/info": measure(load, "user/info", Target(base + PATH, headers=headers), args),
        }

    bare_result, app = results["bare"], results["user/info"]
    print(client_line(client, args))
    print(f"bare aiohttp handler   {bare_result.requests_per_second:10.1f} requests/s")
    print(f"GET {PATH}  {app.requests_per_second:10.1f} requests/s")
    ratio = app.requests_per_second / bare_result.requests_per_second if bare_result.requests else 0.0
    print(f"ratio user/info / bare {ratio:10.2f}  (floor {FLOOR})")
    print(f"server CPU per request  bare {bare_result.cpu_us:.1f} µs, user/info {app.cpu_us:.1f} µs:"
          f" ratio {cpu_ratio(bare_result, app):.2f}")
    if ratio < FLOOR:
        print(f"below its floor: {ratio:.2f} < {FLOOR}", file=sys.stderr)
        return 1
    if bare_result.errors or app.errors:
        print(f"errors: bare {bare_result.errors}, user/info {app.errors}", file=sys.stderr)
        return 1
    if not (bare_result.requests and app.requests):
        print("no request completed", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
