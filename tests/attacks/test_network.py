"""Attacks on the network edges: connection slots, WeChat Pay's notify URLs, the Host header, phone lookups.

Each is made as a hostile client would make it, over HTTP or the websocket, and asserts that nothing was
written and nothing changed.
"""

from __future__ import annotations

import re

import pytest

NOTIFY = "/api/v1/pay/notify"
REFUND_NOTIFY = "/api/v1/pay/refund_notify"


def dropped(metrics_text: str, kind: str) -> int:
    """jiandong_notifications_dropped_total of a kind, summed over its reasons."""
    pattern = rf'^jiandong_notifications_dropped_total{{kind="{kind}",reason="[a-z_]+"}} ([0-9.e+]+)$'
    return int(sum(float(m) for m in re.findall(pattern, metrics_text, re.MULTILINE)))


JUNK = [
    b"",
    b"not xml at all",
    b"<xml><return_code>FAIL</return_code></xml>",
    b"<xml><return_code>SUCCESS</return_code><out_trade_no>2099%d</out_trade_no><sign>x</sign></xml>",
    b"<xml><return_code>SUCCESS</return_code><appid>wx1</appid><mch_id>1</mch_id><req_info>%d</req_info></xml>",
]


@pytest.mark.parametrize("path", [NOTIFY, REFUND_NOTIFY])
async def test_junk_notifications_leave_no_rows(client, sql, path):
    """200 posts of junk to a notify URL: each refused (FAIL), none kept, all counted."""
    tables = ("payment_notifications", "refund_notifications", "orders", "refunds", "users")
    before = {t: sql(f"SELECT count(*) AS n FROM {t}")[0]["n"] for t in tables}
    for i in range(200):
        body = JUNK[i % len(JUNK)]
        resp = await client.post(path, data=body.replace(b"%d", str(i).encode()) if b"%d" in body else body,
                                 headers={"Content-Type": "text/xml"})
        assert resp.status == 200 and "<return_code><![CDATA[FAIL]]></return_code>" in await resp.text()
    assert {t: sql(f"SELECT count(*) AS n FROM {t}")[0]["n"] for t in tables} == before
    metrics = await (await client.get("/metrics")).text()
    assert dropped(metrics, "payment" if path == NOTIFY else "refund") == 200


async def test_identify_code_does_not_tell_whose_phone_it_is(client, sql, redis_sync, settings):
    """A player asks codes for 40 numbers, half of them bound to club accounts: the answers are alike
    whichever the number, every lookup counts against the daily limit, and no account changes."""
    for i in range(20):
        sql("INSERT INTO users (openid, username, mobile) VALUES (%s, %s, %s)", f"o-{i}", f"member{i}",
            f"1380013{i:04d}")
    accounts = sql("SELECT id, openid, username, mobile, updated_at FROM users ORDER BY id")
    token = (await (await client.post("/api/v1/token/user", data={"code": "prober"})).json())["token"]
    answers = {"bound": [], "free": []}
    for i in range(40):
        kind = "bound" if i % 2 == 0 else "free"
        phone = f"1380013{i // 2:04d}" if kind == "bound" else f"1390013{i // 2:04d}"
        resp = await client.post("/api/v1/identify/code", data={"phone": phone}, headers={"token": token})
        body = await resp.json()
        answers[kind].append((resp.status, body["error_code"], body["msg"]))
    # Alike, pair by pair; and counted: past the per-address daily limit everyone gets 10010.
    assert answers["bound"] == answers["free"]
    limit = settings.sms_ip_daily_limit
    assert [a[1] for a in answers["bound"] + answers["free"]].count(0) == limit
    assert answers["bound"][-1][:2] == (429, 10010)
    assert sql("SELECT id, openid, username, mobile, updated_at FROM users WHERE openid LIKE 'o-%%' ORDER BY id") \
        == accounts
    assert sql("SELECT mobile FROM users WHERE username = 'dev-prober'") == [{"mobile": None}]
