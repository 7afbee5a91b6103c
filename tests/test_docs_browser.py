"""The docs page in a real headless Chromium: the chat section reached from the link at the top.
Its screenshot goes to tests/artifacts/docs-chat.png for a person to look at."""

from __future__ import annotations

import typing
import uuid

import pytest

from jiandong.settings import Settings
from tests.helpers.browser import ARTIFACTS, LiveServer


@pytest.fixture(scope="module")
def docs_server(database_url: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> typing.Iterator[str]:
    """The app with the default ports in its settings, which the page's URL examples name."""
    root = tmp_path_factory.mktemp("docs")
    settings = Settings(database_url=database_url, redis_url=redis_url, var_dir=str(root / "var"),
                        redis_prefix=f"jdtest:{uuid.uuid4().hex[:12]}:", db_pool_size=2)
    with LiveServer.running(settings) as url:
        yield url


def test_the_chat_section_is_one_click_from_the_top(browser, docs_server):
    context = browser.new_context(base_url=docs_server, viewport={"width": 1280, "height": 900}, locale="zh-CN")
    page = context.new_page()
    try:
        page.goto("/Docs/jiandong.html")
        assert page.evaluate("window.scrollY") == 0
        page.click(".jump a:has-text('直播聊天室')")
        page.wait_for_function("window.location.hash === '#chat'")
        heading = page.locator("h2#chat").bounding_box()
        # Scrolled to it: the heading at the top of the window, far down a long page (the window scrolls by
        # whole pixels, the layout is in fractions of one: the heading may sit a fraction above the top).
        assert -1 < heading["y"] < 40 and page.evaluate("window.scrollY") > 2000
        assert page.locator("pre.frames").is_visible()
        urls = page.locator("h2#chat + ul pre").inner_text().split()
        assert urls == ["ws://host:8080/ws?room_id=1", "ws://host:19833/?room_id=1"]
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "docs-chat.png"))
    finally:
        context.close()
