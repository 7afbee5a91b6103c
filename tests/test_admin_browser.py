"""The console in a real headless Chromium (Debian's /usr/bin/chromium driven by Playwright; no browser is
downloaded): sign in, publish a match with two teams and a cover, a banner, a live stream's push URL, a
refused page. Screenshots go to tests/artifacts/ (git-ignored) for a person to look at.

Without /usr/bin/chromium these tests fail with the command that installs it: they never skip."""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import typing
import urllib.parse
import urllib.request
import uuid
from pathlib import Path

import pytest
from aiohttp import web

from jiandong.app import create_app
from jiandong.settings import Settings
from tests.admin_helpers import PASSWORD, add_admin, png

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
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


@pytest.fixture(scope="module")
def live_server(database_url: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> typing.Iterator[str]:
    root = tmp_path_factory.mktemp("browser")
    settings = Settings(database_url=database_url, redis_url=redis_url, redis_prefix=f"jdtest:{uuid.uuid4().hex[:12]}:",
                        var_dir=str(root / "var"), media_dir=str(root / "media"), chat_port=0, db_pool_size=3,
                        public_url="")
    with LiveServer.running(settings) as url:
        yield url


# Module-scoped, not session: Playwright's sync API keeps an event loop running in this thread while it
# is open, and the async tests of other modules need the thread's loop free.
@pytest.fixture(scope="module")
def browser() -> typing.Iterator[typing.Any]:
    if not CHROMIUM.exists():
        pytest.fail("the browser tests need Debian's chromium at /usr/bin/chromium: "
                    "apt-get install -y chromium fonts-noto-cjk", pytrace=False)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: typing.Any, live_server: str) -> typing.Iterator[typing.Any]:
    context = browser.new_context(base_url=live_server, viewport={"width": 1280, "height": 900}, locale="zh-CN")
    page = context.new_page()
    page.set_default_timeout(15_000)
    # The console runs under a strict Content-Security-Policy: anything it blocks is a page that broke.
    blocked: list[str] = []
    page.on("console", lambda msg: blocked.append(msg.text) if "Content Security Policy" in msg.text else None)
    yield page
    context.close()
    assert blocked == [], blocked


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


def picture(tmp_path: Path, name: str, size: tuple[int, int], colour: tuple[int, int, int]) -> str:
    path = tmp_path / name
    path.write_bytes(png(*size, colour=colour))
    return str(path)


def test_sign_in_create_and_publish_a_match(page, live_server, sql, tmp_path):
    add_admin(sql)
    page.goto("/admin/competitions")
    assert "/admin/login?next=" in page.url
    shot(page, "01-login")
    sign_in(page)
    page.goto("/admin/competitions")
    for name in ("建东猛龙", "城南勇士"):
        page.goto("/admin/teams/new")
        page.fill("#name", name)
        page.set_input_files("#logo_file", picture(tmp_path, f"{name}.png", (128, 128), (30, 90, 170)))
        page.click("button:has-text('创建')")
        page.wait_for_selector("text=球队已创建")
    page.goto("/admin/competitions/new")
    page.fill("#summary", "周末焦点战")
    page.fill("#play_time", "2030-05-01T19:30")
    page.click("button:has-text('创建')")
    assert page.locator(".field.has-error .error").first.inner_text() == "必填"
    assert page.input_value("#summary") == "周末焦点战"
    shot(page, "03-match-form-validation-error")
    page.fill("#title", "市联赛：建东猛龙 vs 城南勇士")
    page.check("label:has-text('建东猛龙') >> xpath=preceding-sibling::input")
    page.check("label:has-text('城南勇士') >> xpath=preceding-sibling::input")
    page.set_input_files("#cover", picture(tmp_path, "cover.png", (640, 360), (200, 40, 50)))
    page.click("button:has-text('创建')")
    page.wait_for_selector("text=赛事已创建")
    match_id = int(page.url.rsplit("/", 1)[1])
    page.click("button:has-text('发布')")
    page.wait_for_selector("text=已发布")
    page.goto("/admin/competitions")
    assert page.locator("img.thumb").first.evaluate("img => img.naturalWidth") == 640
    shot(page, "02-match-list")
    page.set_viewport_size(PHONE)
    shot(page, "06-match-list-phone")
    status, detail = h5(live_server, f"/api/v1/competition/{match_id}")
    assert status == 200 and detail["title"] == "市联赛：建东猛龙 vs 城南勇士"
    assert detail["play_time"] == "2030-05-01 19:30:00" and "/media/competitions/" in detail["main_img_url"]
    teams = sql("SELECT t.name FROM competition_teams ct JOIN teams t ON t.id = ct.team_id ORDER BY t.name")
    assert [t["name"] for t in teams] == ["城南勇士", "建东猛龙"]


def test_upload_a_banner(page, live_server, sql, tmp_path):
    add_admin(sql)
    sign_in(page)
    page.goto("/admin/banners/new")
    page.fill("#title", "杯赛报名开启")
    page.select_option("#position", "2")
    page.set_input_files("#image", picture(tmp_path, "banner.png", (750, 300), (21, 128, 61)))
    page.click("button:has-text('创建')")
    page.wait_for_selector("text=轮播图已创建")
    status, banners = h5(live_server, "/api/v1/banner/by_position", id="2")
    assert status == 200 and [b["title"] for b in banners] == ["杯赛报名开启"]
    assert urllib.request.urlopen(banners[0]["img_url"]).status == 200


def test_live_push_url_only_in_the_console(page, live_server, sql):
    add_admin(sql)
    sign_in(page)
    page.goto("/admin/lives/new")
    page.fill("#title", "决赛直播")
    page.fill("#stream_name", "final_2030")
    push = "rtmp://srs.club.example.com/live/final_2030?token=push-secret-1"
    page.fill("#plug_flow", push)
    page.fill("#play_flv", "https://srs.club.example.com/live/final_2030.flv")
    page.click("button:has-text('创建')")
    page.wait_for_selector("text=直播已创建")
    page.click("button:has-text('发布')")
    page.wait_for_selector("text=已发布")
    assert page.locator("code.url").inner_text() == push
    assert page.locator("img.qr").evaluate("img => img.complete && img.naturalWidth") > 0
    shot(page, "04-live-push-qr")
    # Published, not started yet: its detail answers (the lists show it once it starts).
    status, live = h5(live_server, f"/api/v1/competitionlive/{page.url.rsplit('/', 1)[1]}")
    assert status == 200 and live["title"] == "决赛直播" and live["live_status"] == 0
    assert "push-secret-1" not in json.dumps(live) and "plug_flow" not in live


def test_editor_refused_a_staff_page(page, live_server, sql):
    add_admin(sql)
    add_admin(sql, "writer", "editor")
    sign_in(page, "writer")
    assert "员工账号" not in page.locator("nav.menu").inner_text()
    response = page.goto("/admin/staff")
    assert response.status == 403
    assert "没有权限" in page.locator("main").inner_text()
    shot(page, "05-editor-refused")
