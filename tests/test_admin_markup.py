"""Every console page the owner opens on the demo club, derived from the router: no id twice on a page (a label
or a script would reach the wrong field), and a form whose inputs carry browser constraints leaves the checking
to the server (`novalidate`), whose refusals are in Chinese and say what to do, not the browser's own tooltips."""

from __future__ import annotations

import collections
import re
from pathlib import Path

from jiandong.admin import create_admin_app
from jiandong.demo.club import load_demo
from jiandong.settings import Settings
from tests.helpers.admin import add_admin, sign_in

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
VALUES = {"id": "1", "member": "1", "refund": "1", "room": "1", "mute": "1", "token": "a" * 43}
FORM_RE = re.compile(r"<form\b([^>]*)>(.*?)</form>", re.S)
ID_RE = re.compile(r"""\sid=["']([^"']+)["']""")
CONSTRAINED_RE = re.compile(r"<input\b[^>]*\s(required|minlength|pattern|maxlength)\b")


def pages() -> list[str]:
    app = create_admin_app(Settings(), TEMPLATES)
    paths = set()
    for route in app.router.routes():
        canonical = route.resource.canonical if route.resource is not None else ""
        if route.method != "GET" or canonical in ("/static", "/logout") or "{fmt}" in canonical:
            continue
        values = {**VALUES, "id": "membership_agreement"} if canonical.startswith("/configs/") else VALUES
        paths.add("/admin" + canonical.format(**values))
    return sorted(paths)


async def test_no_console_page_repeats_an_id_or_lets_the_browser_refuse_a_form(make_client, settings, sql):
    assert load_demo(settings.replace(port=8080), ffmpeg="/nonexistent/ffmpeg") is True
    # Two players in team 1, so a row's form appears twice.
    sql("INSERT INTO team_members (team_id, player_id) SELECT 1, id FROM players WHERE id NOT IN "
        "(SELECT player_id FROM team_members WHERE left_at IS NULL) LIMIT 2")
    assert sql("SELECT count(*) AS n FROM team_members WHERE team_id = 1 AND left_at IS NULL")[0]["n"] >= 2
    add_admin(sql)
    client = await make_client()
    assert (await sign_in(client)).status == 302
    repeated, browser_checked, opened = [], [], 0
    for path in pages():
        resp = await client.get(path, allow_redirects=False)
        if resp.status != 200 or not resp.content_type.startswith("text/html"):
            continue
        opened += 1
        html = await resp.text()
        counts = collections.Counter(ID_RE.findall(html))
        repeated += [f"{path}: id={name} ×{n}" for name, n in counts.items() if n > 1]
        for attributes, body in FORM_RE.findall(html):
            if CONSTRAINED_RE.search(body) and "novalidate" not in attributes and 'type="password"' in body:
                browser_checked.append(f"{path}: {attributes.strip()[:60]}")
    assert opened >= 20
    assert repeated == []
    assert browser_checked == []
