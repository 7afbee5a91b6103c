"""Importing player cards in the console: a sheet of 5,000 rows (XLSX and CSV) uploaded, previewed (every row
checked and shown) and confirmed (written in one transaction), timed on the real server, one request at a time.

    python bench/bench_import.py [--repeat 3] [--rows 5000] [--smoke]

Uses a fresh database `jiandong_bench_import` on the PostgreSQL at --database-url and Redis at --redis-url
(embedded servers when those do not answer). Starts `python server.py`, adds an editor and, for each import,
teams of 200 and a fifth of the rows' players as cards already (matched by phone: updated and joining a team);
1 row in 100 has a bad phone. Each import is a sheet of its own (its own teams and phones), so every confirm
writes as much as the first. Staff pages, not hot paths: plain times (median and slowest, in milliseconds).
"""

from __future__ import annotations

import http.cookiejar
import io
import re
import secrets
import statistics
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

import xlsxwriter

# bench/ is the script's directory, so its modules import by name.
from common import bench_run, cursor, log, parse, parser, start_app

from jiandong.services.admins import hash_password

DATABASE = "jiandong_bench_import"
PASSWORD = "bench import 42"
HEADER = ["姓名", "球衣号码", "手机", "性别", "生日", "身高", "体重", "位置", "球队", "入队日期"]
TEAM_SIZE = 200


class NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirect is the answer itself: the upload and the confirm are timed without the page they lead to."""

    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


def seed_admin(database_url: str) -> None:
    with cursor(database_url) as cur:
        cur.execute("INSERT INTO admins (username, password_hash, role) VALUES ('bench', %s, 'editor')",
                    (hash_password(PASSWORD),))


def seed_import(database_url: str, run: int, rows: int) -> None:
    """The teams of import `run` and the cards a fifth of its rows update (no team yet)."""
    with cursor(database_url) as cur:
        cur.execute("INSERT INTO teams (name) SELECT '第' || %s || '批-' || n || '队'"
                    " FROM generate_series(1, %s) n", (run, -(-rows // TEAM_SIZE)))
        cur.execute("INSERT INTO players (cn_name, mobile, position) SELECT '旧卡' || n, %s || lpad(n::text, 8, '0'),"
                    " '前锋' FROM generate_series(1, %s) n", (phone_prefix(run), rows // 5))
        cur.execute("ANALYZE")


def phone_prefix(run: int) -> str:
    return str(130 + run)


def sheet(run: int, rows: int) -> list[list[object]]:
    out: list[list[object]] = [HEADER]
    for n in range(1, rows + 1):
        # The first fifth are cards already there (by phone); 1 row in 100 has a bad phone.
        phone = f"{phone_prefix(run)}{n:08d}" if n % 100 else "1380000"
        out.append([f"球员{run}-{n}", str(n % TEAM_SIZE), phone, "男" if n % 2 else "女", "2001-05-03",
                    170 + n % 30, 70.5, "后卫", f"第{run}批-{(n - 1) // TEAM_SIZE + 1}队", "2024-09-01"])
    return out


def xlsx(cells: list[list[object]]) -> bytes:
    out = io.BytesIO()
    book = xlsxwriter.Workbook(out, {"in_memory": True})
    ws = book.add_worksheet()
    for r, row in enumerate(cells):
        ws.write_row(r, 0, row)
    book.close()
    return out.getvalue()


def csv_bytes(cells: list[list[object]]) -> bytes:
    return ("\ufeff" + "".join(",".join(str(v) for v in row) + "\r\n" for row in cells)).encode()


def signed_in(base: str) -> tuple[urllib.request.OpenerDirector, str]:
    """A browser-like opener with the console's session cookie (redirects not followed), and its CSRF token."""
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()), NoRedirect)
    page = opener.open(base + "/admin/login").read().decode()
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    body = urllib.parse.urlencode({"username": "bench", "password": PASSWORD, "csrf_token": token}).encode()
    try:
        opener.open(base + "/admin/login", data=body)
    except urllib.error.HTTPError as exc:
        if exc.code != 302 or not exc.headers["Location"].endswith("/admin/"):
            raise SystemExit(f"signing in to the console failed: {exc.code}") from None
    page = opener.open(base + "/admin/players/import").read().decode()
    return opener, re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)


def post(opener: urllib.request.OpenerDirector, url: str, body: bytes, content_type: str) -> tuple[float, str]:
    """A POST answered with a redirect: its milliseconds and where it leads."""
    start = time.perf_counter()
    try:
        opener.open(urllib.request.Request(url, data=body, headers={"Content-Type": content_type}))
    except urllib.error.HTTPError as exc:
        if exc.code != 303:
            raise SystemExit(f"{url}: {exc.code} {exc.read()[:300]!r}") from None
        return (time.perf_counter() - start) * 1000, exc.headers["Location"]
    raise SystemExit(f"{url}: no redirect")


def one_import(base: str, opener: urllib.request.OpenerDirector, token: str, name: str, data: bytes,
               good: int) -> tuple[float, float, float]:
    """Upload, preview and confirm one sheet: the milliseconds of each."""
    boundary = secrets.token_hex(16)
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"csrf_token\"\r\n\r\n{token}\r\n"
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"sheet_file\"; filename=\"{name}\"\r\n"
            f"Content-Type: application/octet-stream\r\n\r\n").encode() + data + f"\r\n--{boundary}--\r\n".encode()
    upload_ms, where = post(opener, base + "/admin/players/import", body, f"multipart/form-data; boundary={boundary}")
    start = time.perf_counter()
    page = opener.open(base + where).read().decode()
    preview_ms = (time.perf_counter() - start) * 1000
    if f"可导入 {good} 行" not in page:
        raise SystemExit(f"{name}: the preview does not say {good} rows can be imported")
    form = urllib.parse.urlencode({"csrf_token": token}).encode()
    commit_ms, done = post(opener, base + where, form, "application/x-www-form-urlencoded")
    if not done.endswith("/import/result"):
        raise SystemExit(f"{name}: the confirm led to {done}")
    return upload_ms, preview_ms, commit_ms


def main() -> int:
    cli = parser(__doc__, DATABASE)
    cli.add_argument("--repeat", type=int, default=3, help="imports per format (default 3)")
    cli.add_argument("--rows", type=int, default=5000, help="rows of each sheet (default 5000)")
    args = parse(cli)
    if args.smoke:
        args.repeat, args.rows = 1, 400
    results: dict[str, list[tuple[float, float, float]]] = {"xlsx": [], "csv": []}
    good = args.rows - args.rows // 100
    with bench_run(args, DATABASE) as run:
        base = start_app(run)
        database_url = run.env["JIANDONG_DATABASE_URL"]
        seed_admin(database_url)
        opener, token = signed_in(base)
        batch = 0
        for fmt, make in (("xlsx", xlsx), ("csv", csv_bytes)):
            for _ in range(args.repeat):
                batch += 1
                seed_import(database_url, batch, args.rows)
                data = make(sheet(batch, args.rows))
                log(f"importing {args.rows} rows ({fmt}, {len(data)} bytes) ...")
                results[fmt].append(one_import(base, opener, token, f"bench-{batch}.{fmt}", data, good))
        with cursor(database_url) as cur:
            cur.execute("SELECT count(*) FROM team_members")
            joined = cur.fetchone()[0]
        if joined != batch * good:
            raise SystemExit(f"{joined} memberships written, {batch * good} expected")

    print(f"{args.rows} rows a sheet ({args.rows // 5} of them updating cards, {args.rows // 100} refused), "
          f"{args.repeat} imports per format, one request at a time")
    print(f"{'step':<42} {'median ms':>10} {'slowest ms':>11}")
    for fmt, times in results.items():
        for step, column in (("upload (read, kept)", 0), ("preview (every row checked, shown)", 1),
                             ("confirm (one transaction)", 2)):
            values = [t[column] for t in times]
            print(f"{fmt + ' ' + step:<42} {statistics.median(values):10.1f} {max(values):11.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
