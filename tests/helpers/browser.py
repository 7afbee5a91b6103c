"""The console and pages in a real headless Chromium: the app served in a thread, and what a browser test does
with a page (sign in, screenshots)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import typing
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from aiohttp import web

from jiandong.app import create_app
from jiandong.settings import Settings
from tests.helpers.admin import PASSWORD

CHROMIUM = Path("/usr/bin/chromium")


CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


# Screenshots for a person to look at (git-ignored).
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"


PHONE = {"width": 390, "height": 844}


class LiveServer(threading.Thread):
    """The real app on 127.0.0.1 in a thread of its own (the browser needs a listening server)."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(daemon=True)
        self.settings = settings
        self.ready = threading.Event()
        self.url = ""
        self.error: BaseException | None = None

    def run(self) -> None:
        loop = asyncio.new_event_loop()
        self.loop = loop
        runner = web.AppRunner(create_app(self.settings))
        try:
            loop.run_until_complete(runner.setup())
            site = web.TCPSite(runner, "127.0.0.1", 0)
            loop.run_until_complete(site.start())
            port = runner.addresses[0][1]
            self.url = f"http://127.0.0.1:{port}"
        except BaseException as exc:  # reported to the fixture, which fails the test with it
            self.error = exc
            self.ready.set()
            return
        self.ready.set()
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(runner.cleanup())
            loop.close()

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.join(30)

    @classmethod
    @contextlib.contextmanager
    def running(cls, settings: Settings) -> typing.Iterator[str]:
        """The app started in its thread for the block; its URL."""
        server = cls(settings)
        server.start()
        server.ready.wait(60)
        if server.error is not None:
            raise server.error
        try:
            yield server.url
        finally:
            server.stop()


def shot(page: typing.Any, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def sign_in(page: typing.Any, username: str = "boss") -> None:
    page.goto("/admin/login")
    page.fill("#username", username)
    page.fill("#password", PASSWORD)
    page.click("button:has-text('登录')")
    page.wait_for_url("**/admin/")


def token_of(server: str, code: str = "browser-test") -> str:
    """A dev login with `code`: the token."""
    login = urllib.request.urlopen(urllib.request.Request(
        server + "/api/v1/token/user", data=urllib.parse.urlencode({"code": code}).encode(), method="POST"))
    return json.loads(login.read())["token"]


def h5(server: str, path: str, code: str = "browser-test", **data: str) -> tuple[int, typing.Any]:
    """Call the H5 API as the pages do (a dev login with `code`, then the token header)."""
    token = token_of(server, code)
    body = urllib.parse.urlencode(data).encode() if data else None
    request = urllib.request.Request(server + path, data=body, method="POST" if data else "GET",
                                     headers={"token": token})
    try:
        with urllib.request.urlopen(request) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def paid_order(live_server: str, sql: typing.Callable[..., typing.Any]) -> dict[str, typing.Any]:
    """A paid order of 199.00 元 (dev payments) for a user of the H5 app: the order as the API gave it."""
    product = sql("INSERT INTO businesses (title, price, valid_time, amount) VALUES ('建东体育年度会员', 19900, 1, 100)"
                  " RETURNING id")[0]["id"]
    h5(live_server, "/api/v1/user/info", "browser-buyer")
    sql("UPDATE users SET username = '赵六', mobile = '13700000066', profile_edited = true"
        " WHERE username = 'dev-browser-buyer'")
    status, order = h5(live_server, "/api/v1/order/commit", "browser-buyer", business_id=str(product))
    assert status == 200, order
    assert h5(live_server, "/api/v1/pay/pre_order", "browser-buyer", id=str(order["id"]))[0] == 200
    assert h5(live_server, "/api/v1/pay/dev/complete", "browser-buyer", id=str(order["id"]))[0] == 200
    return order
