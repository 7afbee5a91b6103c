"""Every console route, derived from the router: who may use it, and that no state-changing request is carried
out without the CSRF token, whatever body type it is sent as.

The policy below is what staff were promised (the role help on the staff form says the same); a route the
router has and the policy does not name fails the suite, so a new route comes with its role decided.
"""

from __future__ import annotations

import re
import typing
from pathlib import Path

import aiohttp
import pytest

from jiandong.admin import create_admin_app
from jiandong.admin.forms import CSRF_REFUSED
from jiandong.demo.club import load_demo
from jiandong.services.admins import ROLE_LABELS
from tests.helpers.admin import add_admin, csrf, png, sign_in

TEMPLATES = Path(__file__).resolve().parents[2] / "templates"
ANY = ("owner", "editor", "moderator")
# The longest matching prefix decides; the owner may do everything.
POLICY: dict[str, tuple[str, ...]] = {
    "/login": (),  # public: anyone, signed in or not
    "/": ANY,
    "/logout": ANY,
    "/password": ANY,
    "/staff": ("owner",),
    "/audit": ("owner",),
    "/orders/{id}/refund": ("owner",),
    "/orders/{id}/refunds": ("owner",),
    "/dashboard": ("owner", "editor"),
    "/competitions": ("owner", "editor"),
    "/competitions/{id}/signups": ("owner", "editor"),
    "/competitions/{id}/signups.{fmt}": ("owner", "editor"),
    "/competitions/{id}/result": ("owner", "editor"),
    "/competitions/{id}/result/logo": ("owner", "editor"),
    "/stats": ("owner", "editor"),
    "/stats.{fmt}": ("owner", "editor"),
    "/teams": ("owner", "editor"),
    "/players": ("owner", "editor"),
    "/videos": ("owner", "editor"),
    "/lives": ("owner", "editor"),
    "/banners": ("owner", "editor"),
    "/products": ("owner", "editor"),
    "/configs": ("owner", "editor"),
    "/orders": ("owner", "editor"),
    "/members": ("owner", "editor"),
    "/notices": ("owner", "editor"),
    "/notices/settings": ("owner",),
    "/chat": ("owner", "moderator"),
    "/feedback": ("owner", "moderator"),
}
PUBLIC = {"/login"}
# Path parameters: the demo club's first rows (and the staff accounts the tests add), so that a request
# that got through would act on something real.
VALUES = {"kind": "signup_confirmed", "id": "2", "member": "1", "refund": "1", "room": "1", "mute": "1", "signup": "1",
          "fmt": "csv",
          "token": "a" * 43}
SAFE = {"GET", "HEAD", "OPTIONS"}


def console_routes() -> list[tuple[str, str]]:
    """(method, canonical path) of every console route but its static files."""
    from jiandong.settings import Settings

    app = create_admin_app(Settings(), TEMPLATES)
    return sorted({(route.method, route.resource.canonical) for route in app.router.routes()
                   if route.resource is not None and route.resource.canonical != "/static"})


ROUTES = console_routes()
CHANGING = [(method, path) for method, path in ROUTES if method not in SAFE]


def allowed(path: str) -> tuple[str, ...]:
    """The roles POLICY gives a path: its longest matching prefix's."""
    matches = [prefix for prefix in POLICY if path == prefix or (prefix != "/" and path.startswith(prefix + "/"))]
    assert matches, f"{path}: a console route no role policy names; add it to POLICY"
    return POLICY[max(matches, key=len)]


def url(path: str) -> str:
    # A config is named by its code, not a number.
    values = {**VALUES, "id": "membership_agreement"} if path.startswith("/configs/") else VALUES
    return "/admin" + path.format(**values)


def test_every_console_route_has_a_policy():
    """A route the router has and POLICY does not name fails here first, with its path."""
    missing = []
    for _, path in ROUTES:
        try:
            allowed(path)
        except AssertionError:
            missing.append(path)
    assert missing == []


def database_state(sql: typing.Callable[..., typing.Any]) -> dict[str, str]:
    """A digest of every table's rows: what any write would change."""
    tables = [row["tablename"] for row in sql("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")]
    digest = "SELECT md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) AS d FROM {} t"
    return {table: sql(digest.format(table))[0]["d"] for table in tables}


@pytest.fixture
def club(settings, sql):
    """The demo club, three staff accounts (owner boss #1, editor writer #2, moderator watcher #3) and feedback."""
    assert load_demo(settings.replace(port=8080), ffmpeg="/nonexistent/ffmpeg") is True
    for username, role in (("boss", "owner"), ("writer", "editor"), ("watcher", "moderator")):
        add_admin(sql, username, role)
    sql("INSERT INTO feedback (user_id, content) SELECT min(id), '灯坏了' FROM users")
    return sql


@pytest.mark.parametrize("role", ["anonymous", "editor", "moderator", "owner"])
async def test_each_role_reaches_exactly_the_routes_its_policy_gives(make_client, club, role):
    """Every route (every method) for one role: refused with 403 (or sent to sign in, for no account) where
    POLICY does not give it the route, let through (whatever the handler then answers) where it does."""
    client = await make_client()
    username = {"editor": "writer", "moderator": "watcher", "owner": "boss"}.get(role)
    if username:
        assert (await sign_in(client, username)).status == 302
    token = await csrf(client, "/admin/login" if username is None else "/admin/")
    wrong = []
    # Signing out last: it ends the session the other requests use.
    for method, path in sorted(ROUTES, key=lambda r: r[1] == "/logout"):
        data = None if method in SAFE else {"csrf_token": token}
        resp = await client.request(method, url(path), data=data, allow_redirects=False)
        body = await resp.text()
        if path in PUBLIC:
            ok = resp.status != 403 and "/admin/login?next=" not in resp.headers.get("Location", "")
        elif username is None:
            ok = resp.status == 302 and resp.headers["Location"].startswith("/admin/login?next=")
        elif role in allowed(path):
            ok = resp.status != 403
        else:
            # The page says who may (by POLICY, not by the code under test: owners always) and what this is.
            needed = re.search(r"这里需要「([^」]+)」角色，你的账号是「([^」]+)」", body)
            says = needed and (set(needed.group(1).split("或")), needed.group(2))
            ok = resp.status == 403 and (method == "HEAD" or says == (
                {ROLE_LABELS[r] for r in (*allowed(path), "owner")}, ROLE_LABELS[role]))
        if not ok:
            wrong.append(f"{method} {path}: {resp.status} for {role}")
    assert wrong == []


def bodies(token: str) -> dict[str, dict[str, typing.Any]]:
    """The ways a browser (or a script) can send a console POST, each without a good token, as
    `client.request` arguments. `token` is the session's real one, sent where it does not count."""
    def multipart(*parts: tuple[str, typing.Any, dict[str, str]]) -> aiohttp.FormData:
        form = aiohttp.FormData(default_to_multipart=True)
        for name, value, extra in parts:
            form.add_field(name, value, **extra)
        return form

    image = ("image", png(), {"filename": "a.png", "content_type": "image/png"})
    return {
        "urlencoded, no token": {"data": {"title": "伪造", "reason": "x"}},
        "urlencoded, wrong token": {"data": {"title": "伪造", "csrf_token": "forged"}},
        "multipart, no token": {"data": multipart(("title", "伪造", {}), image)},
        "multipart, wrong token field": {"data": multipart(("csrf_token", "forged", {}), ("title", "伪造", {}))},
        "multipart, token after a file": {"data": multipart(image, ("csrf_token", token, {}))},
        "multipart, wrong token header": {"data": multipart(("csrf_token", token, {}), ("title", "伪造", {})),
                                          "headers": {"X-CSRF-Token": "forged"}},
        "multipart, wrong token in the query": {"data": multipart(("title", "伪造", {})),
                                                "params": {"csrf_token": "forged"}},
        "json with the token": {"json": {"csrf_token": token, "title": "伪造"}},
        "text/plain with the token": {"data": f"csrf_token={token}&title=x".encode(),
                                      "headers": {"Content-Type": "text/plain"}},
        "no body": {},
    }


@pytest.mark.parametrize(("method", "path"), CHANGING, ids=[f"{m} {p}" for m, p in CHANGING])
async def test_a_state_changing_route_refuses_every_body_without_its_token(make_client, club, method, path):
    """Each way of sending the request without a good CSRF token is refused (403 with the CSRF message, or
    415 where a page takes plain forms only) and nothing in the database changes."""
    client = await make_client()
    public = path in PUBLIC
    if not public:
        assert (await sign_in(client)).status == 302
    token = await csrf(client, "/admin/login" if public else "/admin/")
    before = database_state(club)
    wrong = []
    for kind, kwargs in bodies(token).items():
        resp = await client.request(method, url(path), allow_redirects=False, **kwargs)
        body = await resp.text()
        refused = (resp.status == 403 and CSRF_REFUSED in body) or (public and resp.status == 415)
        if not refused:
            wrong.append(f"{kind}: {resp.status}")
    assert wrong == []
    assert database_state(club) == before


NUMBERED = [(method, path) for method, path in ROUTES if any(f"{{{name}}}" in path for name in ("id", "member",
            "refund", "room", "mute", "signup")) and not path.startswith("/configs/")]


@pytest.mark.parametrize("number", ["0", "9" * 19, "1" + "0" * 30])
async def test_a_number_in_a_console_url_that_names_no_row_is_a_404_page(make_client, club, number):
    """Every route with an id in its path, as the owner, with an id no row can have: the console's 404 page
    (never a 500, never an action), whatever the method."""
    client = await make_client()
    assert (await sign_in(client)).status == 302
    token = await csrf(client, "/admin/")
    before = database_state(club)
    wrong = []
    for method, path in NUMBERED:
        values = {name: number for name in ("id", "member", "refund", "room", "mute", "signup")}
        data = None if method in SAFE else {"csrf_token": token}
        resp = await client.request(method, "/admin" + path.format(**{**VALUES, **values}), data=data,
                                    allow_redirects=False)
        if resp.status != 404:
            wrong.append(f"{method} {path}: {resp.status}")
    assert wrong == []
    assert database_state(club) == before


async def test_a_nul_in_a_console_address_is_the_consoles_own_400_page(make_client, club):
    """Every console route with a NUL in its query, and a path under /admin with one: the console's HTML 400
    page (as the owner sees it: with the menu), never the API's JSON, never an action."""
    client = await make_client()
    assert (await sign_in(client)).status == 302
    token = await csrf(client, "/admin/")
    before = database_state(club)
    wrong = []
    for method, path in ROUTES:
        data = None if method in SAFE else {"csrf_token": token}
        resp = await client.request(method, url(path) + "?from=%00", data=data, allow_redirects=False)
        body = await resp.text()
        if path != "/logout" and (resp.status != 400 or not resp.content_type == "text/html"
                                  or (method != "HEAD" and "请求地址含有非法字符" not in body)):
            wrong.append(f"{method} {path}: {resp.status} {resp.content_type}")
    assert wrong == []
    assert database_state(club) == before


async def test_a_console_address_that_names_no_page_keeps_the_menu(make_client, club):
    client = await make_client()
    assert (await sign_in(client)).status == 302
    for path in ("/admin/matches", "/admin/members/abc"):
        resp = await client.get(path)
        body = await resp.text()
        assert resp.status == 404 and resp.content_type == "text/html", path
        assert 'class="menu"' in body and "boss" in body, path
