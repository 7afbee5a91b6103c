"""WeChat Pay notifications on the real server against a bare aiohttp handler, in one run.

    python bench/bench_notify.py [--duration 10] [--connections 50] [--threads 2] [--smoke]

Starts `python server.py` with a merchant configured (a database `jiandong_bench_notify` of its own;
WeChat Pay's API at an address that answers nothing, since a notification needs no call out), puts
a member, the membership product and an order awaiting payment in the database, and posts the
order's signed notification once: the order is paid. Then it loads POST /api/v1/pay/notify with that
same notification, as WeChat does when it retries, against bench/bare_server.py answering the same
XML. Each retry is parsed, its signature checked, the order locked, found paid and the retry
recorded, in a transaction. It prints requests/s of both and the ratio, and checks that all of it
paid the order once and extended the membership once.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
import urllib.request

# bench/ is the script's directory, so its modules import by name.
from common import (
    Target,
    bench_run,
    choose_load,
    client_line,
    cpu_ratio,
    cursor,
    free_port,
    log,
    measure,
    parse,
    parser,
    start_app,
    start_bare,
)

from jiandong.integrations.wechatpay import parse_xml, sign, to_xml, xml_reply

DATABASE = "jiandong_bench_notify"
NOTIFY_PATH = "/api/v1/pay/notify"
APPID, MCH_ID, API_KEY = "wxbench0000000001", "1900000109", "benchkey" * 4
ORDER_NO, PRICE = "BENCH000001", 19900


def add_order(database_url: str) -> None:
    """A member, the membership product and its order awaiting payment."""
    with cursor(database_url) as cur:
        cur.execute("INSERT INTO users (openid, username) VALUES ('o-bench', 'bench') RETURNING id")
        user_id = cur.fetchone()[0]
        cur.execute("INSERT INTO businesses (title, price, valid_time, amount) VALUES ('年度会员', %s, 1, 10)"
                    " RETURNING id", (PRICE,))
        business_id = cur.fetchone()[0]
        snap = [{"id": business_id, "title": "年度会员", "price": PRICE, "valid_time": 1, "count": 1}]
        cur.execute(
            "INSERT INTO orders (order_no, user_id, business_id, name, price, total_price, snap_items)"
            " VALUES (%s, %s, %s, '年度会员', %s, %s, %s)",
            (ORDER_NO, user_id, business_id, PRICE, PRICE, json.dumps(snap)),
        )


def notification() -> bytes:
    """The order's notification, signed as WeChat Pay signs it."""
    fields = {
        "appid": APPID, "mch_id": MCH_ID, "nonce_str": "5d2b6c2a8db53831f7eda20af46e531c",
        "result_code": "SUCCESS", "return_code": "SUCCESS", "openid": "o-bench", "is_subscribe": "N",
        "trade_type": "JSAPI", "bank_type": "CMC", "total_fee": str(PRICE), "fee_type": "CNY",
        "cash_fee": str(PRICE), "transaction_id": "4200000000202611280000000001", "out_trade_no": ORDER_NO,
        "time_end": dt.datetime.now().strftime("%Y%m%d%H%M%S"),
    }
    fields["sign"] = sign(fields, API_KEY)
    return to_xml(fields).encode()


def post(url: str, body: bytes) -> dict[str, str]:
    req = urllib.request.Request(url, data=body, headers={"Content-Type": "text/xml"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        return parse_xml(resp.read())


def outcome(database_url: str) -> tuple[int, int, dict[str, int]]:
    """Paid orders, membership extensions, and the notifications recorded by outcome."""
    with cursor(database_url) as cur:
        cur.execute("SELECT count(*) FROM orders WHERE status = 1")
        paid = cur.fetchone()[0]
        cur.execute("SELECT count(*) FROM member_extensions")
        extensions = cur.fetchone()[0]
        cur.execute("SELECT outcome, count(*) FROM payment_notifications GROUP BY outcome")
        return paid, extensions, dict(cur.fetchall())


def main() -> int:
    args = parse(parser(__doc__, DATABASE))
    client, load = choose_load(args)
    with bench_run(args, DATABASE) as run:
        database_url = run.env["JIANDONG_DATABASE_URL"]
        run.env.update(
            JIANDONG_WECHAT_APPID=APPID, JIANDONG_WECHAT_SECRET="bench-secret",
            # Required beside an appid: the URLs handed to WeChat are built from it.
            JIANDONG_PUBLIC_URL="https://club.example",
            JIANDONG_WECHATPAY_MCH_ID=MCH_ID, JIANDONG_WECHATPAY_API_KEY=API_KEY,
            # Nothing listens there: the order is paid at once, so nothing needs WeChat Pay.
            JIANDONG_WECHATPAY_API_URL=f"http://127.0.0.1:{free_port()}",
        )
        base = start_app(run)
        add_order(database_url)
        body = notification()
        first = post(base + NOTIFY_PATH, body)
        if first.get("return_code") != "SUCCESS" or outcome(database_url)[:2] != (1, 1):
            raise SystemExit(f"the first notification did not pay the order: {first}")
        bare = start_bare(run, [("POST", NOTIFY_PATH, xml_reply(True))])

        log(f"load: {client}, {args.threads} thread(s), {args.connections} connections, {args.duration} s per server")
        xml = {"Content-Type": "text/xml"}
        bare_result = measure(load, "bare", Target(bare + NOTIFY_PATH, "POST", body, xml), args)
        app_result = measure(load, NOTIFY_PATH, Target(base + NOTIFY_PATH, "POST", body, xml), args)
        paid, extensions, recorded = outcome(database_url)

    ratio = app_result.requests_per_second / bare_result.requests_per_second if bare_result.requests else 0.0
    print(client_line(client, args))
    print(f"bare aiohttp handler            {bare_result.requests_per_second:10.1f} requests/s")
    print(f"POST {NOTIFY_PATH} (a retry) {app_result.requests_per_second:10.1f} requests/s")
    print(f"ratio notify / bare             {ratio:10.2f}")
    print(f"server CPU per request          bare {bare_result.cpu_us:.1f} µs, notify {app_result.cpu_us:.1f} µs:"
          f" ratio {cpu_ratio(bare_result, app_result):.2f}")
    print(f"orders paid {paid}, membership extensions {extensions}, notifications recorded {recorded}")
    failed = bare_result.errors or app_result.errors or not app_result.requests or (paid, extensions) != (1, 1)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
