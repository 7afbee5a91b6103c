"""The console in a real headless Chromium (Debian's /usr/bin/chromium driven by Playwright; no browser is
downloaded): sign in, publish a match with two teams and a cover, a banner, a live stream's push URL, a
refused page. Screenshots go to tests/artifacts/ (git-ignored) for a person to look at.

Without /usr/bin/chromium these tests fail with the command that installs it: they never skip."""

from __future__ import annotations

import json
import urllib.parse
import urllib.request
from pathlib import Path

from tests.helpers.admin import add_admin, png
from tests.helpers.browser import PHONE, h5, shot, sign_in


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
    assert "这里需要「所有者」角色，你的账号是「编辑」" in page.locator("main").inner_text()
    shot(page, "05-editor-refused")
