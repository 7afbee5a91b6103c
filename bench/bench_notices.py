"""A staff notice to 2,000 members: how long the sending job takes and how many template messages a second reach
the fake WeChat, and whether the console stays responsive meanwhile.

    python bench/bench_notices.py [--members 2000] [--wechat-latency 0.02] [--smoke]

Uses a fresh database `jiandong_bench_notices` on the PostgreSQL at --database-url and Redis at --redis-url
(embedded servers when those do not answer). Runs the fake WeChat of tests/fakes/wechat.py in this process
(each template message answered after --wechat-latency seconds), starts `python server.py` pointed at it, adds
an owner and the members, signs in to the console and sends one notice to all active members. Reports the
time from the console's "send" to the last message delivered at the fake, the sends per second, and the
console's campaign page (the one staff watch) timed while the job sends against the same page when idle.
"""

from __future__ import annotations

import asyncio
import http.cookiejar
import re
import statistics
import sys
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path

# bench/ is the script's directory, so its modules import by name; the fakes live with the tests.
from common import bench_run, cursor, free_port, log, parse, parser, start_app

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from aiohttp import web  # noqa: E402

from jiandong.services.admins import hash_password  # noqa: E402
from tests.fakes.wechat import FakeWeChat  # noqa: E402

DATABASE = "jiandong_bench_notices"
PASSWORD = "bench notices 42"


def serve_fake(fake: FakeWeChat, port: int) -> None:
    """The fake WeChat on 127.0.0.1:`port`, in a thread of its own (the server under test is another process)."""
    ready = threading.Event()

    def run() -> None:
        loop = asyncio.new_event_loop()
        runner = web.AppRunner(fake.make_app(), access_log=None)
        loop.run_until_complete(runner.setup())
        loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", port).start())
        ready.set()
        loop.run_forever()

    threading.Thread(target=run, daemon=True, name="fake-wechat").start()
    ready.wait(10)


def seed(database_url: str, members: int) -> None:
    with cursor(database_url) as cur:
        cur.execute("INSERT INTO admins (username, password_hash, role) VALUES ('bench', %s, 'owner')",
                    (hash_password(PASSWORD),))
        cur.execute("INSERT INTO users (openid, username, mobile, member_status, member_expire_time)"
                    " SELECT 'bench-' || n, '会员' || n, '139' || lpad(n::text, 8, '0'), 1, now() + interval '1 year'"
                    " FROM generate_series(1, %s) n", (members,))
        cur.execute("INSERT INTO notice_kinds (kind, template_id) VALUES ('staff_notice', 'TPL_bench')")
        cur.execute("ANALYZE")


def signed_in(base: str) -> urllib.request.OpenerDirector:
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
    page = opener.open(base + "/admin/login").read().decode()
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    body = urllib.parse.urlencode({"username": "bench", "password": PASSWORD, "csrf_token": token}).encode()
    if not opener.open(base + "/admin/login", data=body).url.endswith("/admin/"):
        raise SystemExit("signing in to the console failed")
    return opener


def timed_get(opener: urllib.request.OpenerDirector, url: str) -> float:
    start = time.perf_counter()
    with opener.open(url) as resp:
        resp.read()
    return (time.perf_counter() - start) * 1000


def main() -> int:
    cli = parser(__doc__, DATABASE)
    cli.add_argument("--members", type=int, default=2000, help="active members who receive it (default 2000)")
    cli.add_argument("--wechat-latency", type=float, default=0.02,
                     help="seconds the fake WeChat takes to answer each message (default 0.02)")
    args = parse(cli)
    if args.smoke:
        args.members = 200
    fake = FakeWeChat()
    fake.add_template("TPL_bench", "thing1", "thing2", "time3")
    fake.template_delay = args.wechat_latency
    port = free_port()
    serve_fake(fake, port)
    with bench_run(args, DATABASE) as run:
        run.env.update(JIANDONG_WECHAT_APPID=fake.appid, JIANDONG_WECHAT_SECRET=fake.secret,
                       JIANDONG_WECHAT_API_URL=f"http://127.0.0.1:{port}", JIANDONG_PUBLIC_URL="http://127.0.0.1")
        base = start_app(run)
        log(f"adding {args.members} members ...")
        seed(run.env["JIANDONG_DATABASE_URL"], args.members)
        opener = signed_in(base)
        form_page = opener.open(base + "/admin/notices/new").read().decode()
        token = re.search(r'name="csrf_token" value="([^"]+)"', form_page).group(1)
        idle = [timed_get(opener, base + "/admin/notices") for _ in range(10)]
        form = {"csrf_token": token, "audience": "active", "audience_id": "", "title": "周六训练改到室内馆",
                "content": "因天气原因改到体育中心室内馆", "url": ""}
        preview = opener.open(base + "/admin/notices/preview", data=urllib.parse.urlencode(form).encode()).read()
        form["send_key"] = re.search(r'name="send_key" value="([0-9a-f]{32})"', preview.decode()).group(1)
        body = urllib.parse.urlencode(form).encode()
        log(f"sending to {args.members} members ...")
        started = time.perf_counter()
        answer = opener.open(base + "/admin/notices/send", data=body)
        sent_in = (time.perf_counter() - started) * 1000
        campaign_page = answer.url
        if "/admin/notices/campaigns/" not in campaign_page:
            raise SystemExit(f"sending was refused: {campaign_page}")
        busy = []
        while len(fake.delivered) < args.members:
            busy.append(timed_get(opener, campaign_page))
            if time.perf_counter() - started > 600:
                raise SystemExit(f"only {len(fake.delivered)} of {args.members} delivered after 600 s")
        elapsed = fake.delivered[-1].at - fake.delivered[0].at
        total = time.perf_counter() - started
        first_after = fake.delivered[0].at - (time.time() - total)
        # The fake counts a message as it answers; the job records the outcome just after.
        for _ in range(300):
            done_page = opener.open(campaign_page).read().decode()
            if "已完成" in done_page:
                break
            time.sleep(0.1)

    print(f"{args.members} members, fake WeChat answering each message after {args.wechat_latency * 1000:.0f} ms")
    print(f"console 'send' answered in {sent_in:.0f} ms (writes the {args.members} outbox rows, sends nothing)")
    print(f"first message delivered {max(first_after, 0):.1f} s after 'send'; all in {total:.1f} s;"
          f" {args.members / max(elapsed, 1e-9):.0f} sends/s at the fake (first to last)")
    print(f"campaign page while sending: median {statistics.median(busy):.0f} ms, slowest {max(busy):.0f} ms"
          f" ({len(busy)} requests); notices page idle: median {statistics.median(idle):.0f} ms")
    print("page says finished:", "已完成" in done_page)
    return 0


if __name__ == "__main__":
    sys.exit(main())
