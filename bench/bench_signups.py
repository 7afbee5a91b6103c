"""A match's sign-up sheet in the console with 2,000 sign-ups: the first and the last page of the list, and the
CSV and XLSX exports of the whole sheet, timed one request at a time on the real server.

    python bench/bench_signups.py [--repeat 10] [--signups 2000] [--smoke]

Uses a fresh database `jiandong_bench_signups` on the PostgreSQL at --database-url and Redis at --redis-url
(embedded servers when those do not answer). Starts `python server.py`, adds an editor, a match and as many
members (each with a player card in a team) signed up to it, signs in to the console and requests each page
--repeat times after one unmeasured request. These are staff pages, not hot paths: plain times (median and
slowest, in milliseconds), no ratio to a bare handler.
"""

from __future__ import annotations

import http.cookiejar
import re
import statistics
import sys
import time
import urllib.parse
import urllib.request

# bench/ is the script's directory, so its modules import by name.
from common import bench_run, cursor, log, parse, parser, start_app

from jiandong.services.admins import hash_password

DATABASE = "jiandong_bench_signups"
PASSWORD = "bench signups 42"
PAGE_SIZE = 20


def seed(database_url: str, signups: int) -> int:
    """An editor, a team, a match that has started and `signups` members signed up to it; the match's id."""
    with cursor(database_url) as cur:
        cur.execute("INSERT INTO admins (username, password_hash, role) VALUES ('bench', %s, 'editor')",
                    (hash_password(PASSWORD),))
        cur.execute("INSERT INTO teams (name) VALUES ('压测队') RETURNING id")
        team = cur.fetchone()[0]
        cur.execute("INSERT INTO competitions (title, play_time, capacity, status)"
                    " VALUES ('压测赛', now() - interval '1 hour', %s, 1) RETURNING id", (signups,))
        match = cur.fetchone()[0]
        cur.execute("""
            WITH u AS (
                INSERT INTO users (openid, username, mobile, member_status, member_expire_time)
                SELECT 'bench-' || n, '会员' || n, '139' || lpad(n::text, 8, '0'), 1, now() + interval '1 year'
                FROM generate_series(1, %(n)s) n RETURNING id
            ), p AS (
                INSERT INTO players (user_id, cn_name) SELECT id, '球员' || id FROM u RETURNING id, user_id
            ), tm AS (
                INSERT INTO team_members (team_id, player_id) SELECT %(team)s, id FROM p
            )
            INSERT INTO competition_applies (competition_id, user_id, created_at, attended)
            SELECT %(match)s, user_id, now() - interval '2 days' + user_id * interval '1 second',
                   CASE WHEN user_id %% 3 = 0 THEN NULL ELSE user_id %% 3 = 1 END
            FROM p""", {"n": signups, "team": team, "match": match})
        cur.execute("ANALYZE")
    return match


def signed_in(base: str) -> urllib.request.OpenerDirector:
    """A browser-like opener with the console's session cookie."""
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
    page = opener.open(base + "/admin/login").read().decode()
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    body = urllib.parse.urlencode({"username": "bench", "password": PASSWORD, "csrf_token": token}).encode()
    home = opener.open(base + "/admin/login", data=body)
    if not home.url.endswith("/admin/"):
        raise SystemExit(f"signing in to the console failed: {home.url}")
    return opener


def timed(opener: urllib.request.OpenerDirector, url: str, repeat: int) -> tuple[list[float], int]:
    """The milliseconds of each of `repeat` requests (after one unmeasured), and the answer's size."""
    size = len(opener.open(url).read())
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        with opener.open(url) as resp:
            resp.read()
            if resp.status != 200:
                raise SystemExit(f"{url}: {resp.status}")
        times.append((time.perf_counter() - start) * 1000)
    return times, size


def main() -> int:
    cli = parser(__doc__, DATABASE)
    cli.add_argument("--repeat", type=int, default=10, help="measured requests per page (default 10)")
    cli.add_argument("--signups", type=int, default=2000, help="sign-ups of the match (default 2000)")
    args = parse(cli)
    if args.smoke:
        args.repeat, args.signups = 2, 200
    with bench_run(args, DATABASE) as run:
        base = start_app(run)
        log(f"adding a match with {args.signups} sign-ups ...")
        match = seed(run.env["JIANDONG_DATABASE_URL"], args.signups)
        opener = signed_in(base)
        sheet = f"{base}/admin/competitions/{match}/signups"
        last = -(-args.signups // PAGE_SIZE)
        cases = [("list, first page", sheet), (f"list, page {last} (the last)", f"{sheet}?page={last}"),
                 ("export CSV (whole sheet)", f"{sheet}.csv"), ("export XLSX (whole sheet)", f"{sheet}.xlsx")]
        results = [(name, *timed(opener, url, args.repeat)) for name, url in cases]

    print(f"{args.signups} sign-ups, {args.repeat} requests each, one at a time")
    print(f"{'page':<32} {'median ms':>10} {'slowest ms':>11} {'bytes':>9}")
    for name, times, size in results:
        print(f"{name:<32} {statistics.median(times):10.1f} {max(times):11.1f} {size:9d}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
