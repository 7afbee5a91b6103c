"""Security headers on every answer, derived from the router: the console's (pages, fragments, static files,
error pages) carry a strict CSP, nosniff, no framing and a referrer policy; every answer (API, media,
websocket upgrade, errors) has nosniff and no Server header."""

from __future__ import annotations

import re

import pytest
from aiohttp import web

from tests.helpers.admin import add_admin, csrf, sign_in

CONSOLE_HEADERS = ("Content-Security-Policy", "X-Content-Type-Options", "X-Frame-Options", "Referrer-Policy")


def concrete(path: str) -> str:
    """A route's path with each {variable} filled in (ids: 1; file names: a name)."""
    return re.sub(r"\{([^}:]+)(:[^}]*)?\}", lambda m: "x.txt" if m.group(1) in ("filename", "path") else "1", path)


def router_paths(app: web.Application) -> list[tuple[str, str]]:
    """(method, path) of every route of the app and its console, static resources included."""
    found = set()
    for route in app.router.routes():
        info = route.resource.get_info() if route.resource else {}
        path = info.get("path") or info.get("formatter") or (info.get("prefix", "") + "/x.txt")
        if route.method in ("GET", "POST"):
            found.add((route.method, concrete(path)))
    return sorted(found)


def check(resp, method: str, path: str) -> None:
    where = f"{method} {path} ({resp.status})"
    assert "Server" not in resp.headers, where
    assert resp.headers.get("X-Content-Type-Options") == "nosniff", where
    if path.startswith("/admin"):
        for name in CONSOLE_HEADERS:
            assert name in resp.headers, f"{name} missing on {where}"
        policy = resp.headers["Content-Security-Policy"]
        assert "frame-ancestors 'none'" in policy and "'unsafe-inline'" not in policy, where


@pytest.mark.usefixtures("chat_rooms")
async def test_every_answer_carries_the_security_headers(client, sql, settings):
    add_admin(sql)
    (settings.media_path / "x.txt").write_text("<script>alert(1)</script>")
    paths = router_paths(client.app)
    assert ("GET", "/admin/static/x.txt") in paths and ("GET", "/media/x.txt") in paths
    assert ("GET", "/admin/chat/1/messages") in paths
    # Anonymous (redirects, refusals, the sign-in page), then signed in (pages, fragments, error pages).
    for signed_in in (False, True):
        if signed_in:
            assert (await sign_in(client)).status == 302
        token = await csrf(client, "/admin/" if signed_in else "/admin/login")
        for method, path in paths:
            if path == "/admin/logout":
                continue
            data = {"csrf_token": token} if method == "POST" else None
            resp = await client.request(method, path, data=data, allow_redirects=False)
            check(resp, method, path)
    for method, path in (("GET", "/admin/static/admin.css"), ("GET", "/admin/static/live.js"),
                         ("GET", "/admin/nothing-here"), ("DELETE", "/admin/"), ("GET", "/media/x.txt"),
                         ("GET", "/nothing-here"), ("PATCH", "/api/v1/user/info")):
        resp = await client.request(method, path, allow_redirects=False)
        check(resp, method, path)
    assert resp.status == 405
    ws = await client.ws_connect("/ws")
    try:
        check(ws._response, "GET", "/ws")
    finally:
        await ws.close()


async def test_the_console_pages_need_nothing_inline(client, sql):
    """Under the CSP no inline script or style runs: the pages must carry none."""
    add_admin(sql)
    await sign_in(client)
    for path in ("/admin/", "/admin/login", "/admin/staff", "/admin/feedback", "/admin/members", "/admin/audit",
                 "/admin/competitions", "/admin/orders"):
        body = await (await client.get(path)).text()
        assert not re.search(r"<script(?![^>]*\bsrc=)|<style|\sstyle=|\son[a-z]+=|javascript:", body), path
