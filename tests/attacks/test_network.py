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
