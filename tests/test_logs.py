"""Log lines: JSON with the request's fields, the access line per request, and what no line may hold."""

from __future__ import annotations

import io
import json
import logging
import re

from jiandong.lib.logformat import JsonFormatter, TextFormatter
from tests.helpers.api import login
from tests.helpers.log_leaks import leaks

ISO_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d\d:\d\d")


class JsonLines:
    """A handler on the root logger writing JSON lines as the server would (formatted as they are logged)."""

    def __init__(self) -> None:
        self.out = io.StringIO()
        self.handler = logging.StreamHandler(self.out)
        self.handler.setFormatter(JsonFormatter())

    def __enter__(self) -> JsonLines:
        root = logging.getLogger()
        self.level = root.level
        root.addHandler(self.handler)
        root.setLevel(logging.INFO)
        return self

    def __exit__(self, *exc: object) -> None:
        logging.getLogger().removeHandler(self.handler)
        logging.getLogger().setLevel(self.level)

    def lines(self) -> list[dict]:
        return [json.loads(line) for line in self.out.getvalue().splitlines()]


async def test_a_requests_lines_in_json(client, sql):
    token = await login(client, "json-logger")
    (user,) = sql("SELECT id FROM users")
    with JsonLines() as log:
        resp = await client.post("/api/v1/identify/code", data={"phone": "13800138000"}, headers={"token": token})
        assert resp.status == 200
    request_id = resp.headers["X-Request-Id"]
    lines = log.lines()
    (access,) = [line for line in lines if line["logger"] == "jiandong.access"]
    print(json.dumps(access, ensure_ascii=False))
    assert ISO_TIME.fullmatch(access.pop("time"))
    duration = access.pop("duration_ms")
    assert isinstance(duration, float) and duration >= 0
    assert access == {
        "level": "INFO", "logger": "jiandong.access",
        "message": f"POST /api/v1/identify/code 200 {duration:.1f}ms",
        "request_id": request_id, "method": "POST", "route": "/api/v1/identify/code", "status": 200,
        "user_id": user["id"],
    }
    # A line written while the request was handled carries its id too.
    (sms,) = [line for line in lines if line["logger"] == "jiandong.integrations.sms"]
    assert sms["request_id"] == request_id and sms["message"].startswith("SMS code for 138****8000: ")


async def test_the_access_line_names_the_route_template_not_the_query(client):
    with JsonLines() as log:
        resp = await client.get("/api/v1/competition/123?token=0123456789abcdef0123456789abcdef")
    (access,) = [line for line in log.lines() if line["logger"] == "jiandong.access"]
    assert (access["route"], access["status"]) == ("/api/v1/competition/{id}", resp.status)
    assert access["message"].startswith("GET /api/v1/competition/123 401 ") and "token" not in access["message"]
    assert "user_id" not in access


async def test_the_access_log_can_be_off(make_client):
    client = await make_client(access_log=False)
    with JsonLines() as log:
        assert (await client.get("/healthz")).status == 200
    assert [line for line in log.lines() if line["logger"] == "jiandong.access"] == []


def test_the_leak_scan_finds_tokens_phones_and_secrets():
    lines = [
        "jiandong.tokens INFO issued 0bdaddf44715fe3f382d1ceee2700caa",
        "jiandong.sms WARNING SMS code for 138****8000: 001764",
        "jiandong.users INFO user bound 13800138000",
        "jiandong.pay INFO key s3cret-key in a line",
        "jiandong.pay INFO raw_sha256 " + "ab" * 32,
        # An order number whose random hex tail holds eleven phone-like digits.
        "jiandong.wechatpay ERROR closeorder for order 202611302139200023D19717789768 answered with a wrong sign",
        "jiandong.users INFO 手机13800138001已绑定",
    ]
    assert leaks(lines, {"s3cret-key", ""}) == [
        "token: jiandong.tokens INFO issued 0bdaddf44715fe3f382d1ceee2700caa",
        "phone: jiandong.users INFO user bound 13800138000",
        "secret: jiandong.pay INFO key s3cret-key in a line",
        "phone: jiandong.users INFO 手机13800138001已绑定",
    ]


async def test_a_path_cannot_forge_a_line_of_the_text_log(client):
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(TextFormatter())
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        forged = "/api/v1/nope%0D%0A2026-12-06T00:00:00.000+00:00%20ERROR%20jiandong:%20forged"
        assert (await client.get(forged + "?token=0123456789abcdef0123456789abcdef")).status == 404
        assert (await client.get("/api/v1/nope%00")).status == 400
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
    lines = out.getvalue().splitlines()
    # Each request one line, its path as sent (still encoded), with no query.
    assert [line.split(": ", 1)[1].rsplit(" ", 1)[0] for line in lines if " jiandong.access: " in line] == [
        f"GET {forged} 404", "GET /api/v1/nope%00 400"]
    assert not any(line.startswith("2026-12-06T00:00:00.000") for line in lines) and "\x00" not in out.getvalue()
