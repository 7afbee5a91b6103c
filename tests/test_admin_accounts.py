"""Console accounts and security: sign-in, session renewal, throttling, idle timeout, disabled accounts,
CSRF, roles, staff management, own password."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest

from tests.helpers.admin import PASSWORD, add_admin, csrf, post_form, sign_in

ROOT = Path(__file__).resolve().parent.parent


def session_cookie(client) -> str | None:
    for cookie in client.session.cookie_jar:
        if cookie.key == "jd_admin":
            return cookie.value
    return None


async def test_pages_need_a_sign_in(client, sql):
    resp = await client.get("/admin/competitions", allow_redirects=False)
    assert resp.status == 302
    assert resp.headers["Location"] == "/admin/login?next=/admin/competitions"
    resp = await client.get("/admin/login")
    assert resp.status == 200 and "员工登录" in await resp.text()


async def test_sign_in_renews_the_session_id_and_sets_a_safe_cookie(client, sql):
    add_admin(sql)
    # An id planted before the sign-in (session fixation) ...
    before = "planted-by-someone-else-0123456789abcdefghi"
    client.session.cookie_jar.update_cookies({"jd_admin": before}, client.make_url("/admin/"))
    resp = await client.get("/admin/login")
    # ... a visitor has no session: the sign-in form's token is in a cookie of its own.
    assert "jd_admin" not in resp.headers.get("Set-Cookie", "")
    anonymous = resp.cookies["jd_csrf"]
    assert anonymous["httponly"] and anonymous["samesite"] == "Strict" and anonymous["path"] == "/admin/"
    resp = await sign_in(client)
    assert resp.status == 302 and resp.headers["Location"] == "/admin/"
    cookie = resp.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Path=/admin/" in cookie and "Secure" not in cookie
    after = session_cookie(client)
    assert after and after != before
    # The id planted before the sign-in does not open the console.
    fixed = aiohttp.CookieJar(unsafe=True)
    async with aiohttp.ClientSession(cookie_jar=fixed) as other:
        other.cookie_jar.update_cookies({"jd_admin": before}, client.make_url("/admin/"))
        resp = await other.get(client.make_url("/admin/"), allow_redirects=False)
        assert resp.status == 302 and resp.headers["Location"].startswith("/admin/login")
    resp = await client.get("/admin/")
    assert resp.status == 200 and "你好，boss" in await resp.text()
    assert sql("SELECT last_login_time IS NOT NULL AS seen FROM admins")[0]["seen"]


async def test_secure_cookie_over_https(make_client, sql):
    client = await make_client(public_url="https://club.example.com")
    resp = await client.get("/admin/login")
    assert "Secure" in resp.headers["Set-Cookie"]


async def test_wrong_password_and_unknown_name_are_refused(client, sql):
    add_admin(sql)
    for name, password in (("boss", "wrong password"), ("nobody", PASSWORD)):
        resp = await sign_in(client, name, password)
        assert resp.status == 400
        assert "用户名或密码错误" in await resp.text()
    assert (await client.get("/admin/", allow_redirects=False)).status == 302


async def test_sign_in_throttled_per_account(make_client, sql, redis_sync, settings):
    client = await make_client(admin_login_account_limit=3)
    add_admin(sql)
    for _ in range(3):
        assert (await sign_in(client, "boss", "bad password")).status == 400
    # Now even the right password is refused, for this account (from any address) ...
    resp = await sign_in(client)
    assert resp.status == 429 and "登录失败次数过多" in await resp.text()
    assert (await client.get("/admin/", allow_redirects=False)).status == 302
    # ... while another account still signs in.
    add_admin(sql, "editor1", "editor")
    assert (await sign_in(client, "editor1")).status == 302
    assert redis_sync.ttl(f"{settings.redis_prefix}admin_login:user:boss") > 0


async def test_sign_in_throttled_per_client_address(make_client, sql):
    client = await make_client(admin_login_ip_limit=2)
    add_admin(sql)
    assert (await sign_in(client, "someone", "x")).status == 400
    assert (await sign_in(client, "other", "y")).status == 400
    resp = await sign_in(client)
    assert resp.status == 429


async def test_an_ipv6_client_is_one_address_per_64(make_client, sql):
    # One host owns a whole /64: counted per address, its attempts would never end.
    client = await make_client(admin_login_ip_limit=2, trust_proxy=True, trusted_proxies=("127.0.0.0/8",))
    add_admin(sql)
    token = await csrf(client)

    async def attempt(address: str) -> int:
        resp = await client.post("/admin/login", data={"username": "boss", "password": "wrong password",
                                                       "csrf_token": token},
                                 headers={"X-Forwarded-For": address}, allow_redirects=False)
        return resp.status

    assert [await attempt("2001:db8::1"), await attempt("2001:db8::2:3")] == [400, 400]
    assert await attempt("2001:db8::ffff:1") == 429
    assert await attempt("2001:db8:0:1::1") == 400


async def test_csrf_refused(client, sql):
    add_admin(sql)
    await sign_in(client)
    data = {"title": "无令牌", "play_time": "2030-01-01T10:00"}
    for token in (None, "forged-token"):
        form = dict(data) if token is None else {**data, "csrf_token": token}
        resp = await client.post("/admin/competitions/new", data=form, allow_redirects=False)
        assert resp.status == 403
        assert "CSRF" in await resp.text()
    # The sign-in form is protected too.
    resp = await client.post("/admin/login", data={"username": "boss", "password": PASSWORD})
    assert resp.status == 403
    assert sql("SELECT count(*) FROM competitions")[0]["count"] == 0
    resp = await post_form(client, "/admin/competitions/new", data)
    assert resp.status == 302
    assert sql("SELECT count(*) FROM competitions")[0]["count"] == 1


async def test_logout_ends_the_session(client, sql, redis_sync, settings):
    add_admin(sql)
    await sign_in(client)
    session_id = session_cookie(client)
    assert redis_sync.exists(f"{settings.redis_prefix}admin_session:{session_id}")
    resp = await post_form(client, "/admin/logout")
    assert resp.status == 302 and resp.headers["Location"] == "/admin/login"
    assert not redis_sync.exists(f"{settings.redis_prefix}admin_session:{session_id}")
    assert (await client.get("/admin/", allow_redirects=False)).status == 302
    # GET never signs out (state never changes on GET).
    assert (await client.get("/admin/logout", allow_redirects=False)).status == 405


async def test_idle_session_ends(client, sql, redis_sync, settings):
    add_admin(sql)
    await sign_in(client)
    key = f"{settings.redis_prefix}admin_session:{session_cookie(client)}"
    assert 0 < redis_sync.ttl(key) <= settings.admin_idle_timeout
    data = json.loads(redis_sync.get(key))
    data["session"]["seen"] -= settings.admin_idle_timeout + 1
    redis_sync.set(key, json.dumps(data))
    resp = await client.get("/admin/", allow_redirects=False)
    assert resp.status == 302 and resp.headers["Location"].startswith("/admin/login")
    assert not redis_sync.exists(key)


def move_session_back(redis_sync, key: str, seconds: int, *fields: str) -> dict:
    """Move the session's clock: its fields (seen, since) as if they were `seconds` earlier."""
    data = json.loads(redis_sync.get(key))
    for name in fields:
        if name in data["session"]:
            data["session"][name] -= seconds
    redis_sync.set(key, json.dumps(data), keepttl=True)
    return data["session"]


@pytest.mark.usefixtures("chat_rooms")
async def test_a_pages_background_refresh_is_no_activity(client, sql, redis_sync, settings):
    add_admin(sql, "watcher", "moderator")
    await sign_in(client, "watcher")
    page = await (await client.get("/admin/chat/9")).text()
    assert 'data-poll="/admin/chat/9/messages"' in page
    key = f"{settings.redis_prefix}admin_session:{session_cookie(client)}"
    # Nobody has touched the page for almost the idle timeout; it went on refreshing itself (static/live.js).
    seen = move_session_back(redis_sync, key, settings.admin_idle_timeout - 60, "seen")["seen"]
    ttl = redis_sync.ttl(key)
    poll = {"X-Requested-With": "poll"}
    resp = await client.get("/admin/chat/9/messages", headers=poll, allow_redirects=False)
    assert resp.status == 200
    assert json.loads(redis_sync.get(key))["session"]["seen"] == seen and redis_sync.ttl(key) <= ttl
    # The idle timeout passes: the next refresh finds the session ended.
    move_session_back(redis_sync, key, 61, "seen")
    resp = await client.get("/admin/chat/9/messages", headers=poll, allow_redirects=False)
    assert resp.status == 302 and resp.headers["Location"].startswith("/admin/login")
    assert not redis_sync.exists(key)


async def test_an_active_session_ends_after_its_lifetime(client, sql, redis_sync, settings):
    add_admin(sql)
    await sign_in(client)
    key = f"{settings.redis_prefix}admin_session:{session_cookie(client)}"
    # Signed in almost the lifetime ago, and active all along (a click every few minutes).
    move_session_back(redis_sync, key, settings.admin_session_lifetime - 60, "since")
    assert (await client.get("/admin/", allow_redirects=False)).status == 200
    move_session_back(redis_sync, key, 61, "since")
    resp = await client.get("/admin/", allow_redirects=False)
    assert resp.status == 302 and resp.headers["Location"].startswith("/admin/login")
    assert not redis_sync.exists(key)


async def test_disabled_account_is_signed_out_at_once(client, sql):
    add_admin(sql)
    editor = add_admin(sql, "writer", "editor")
    await sign_in(client, "writer")
    assert (await client.get("/admin/competitions")).status == 200
    sql("UPDATE admins SET is_active = false WHERE id = %s", editor)
    resp = await client.get("/admin/competitions", allow_redirects=False)
    assert resp.status == 302 and resp.headers["Location"].startswith("/admin/login")
    assert (await sign_in(client, "writer")).status == 400


async def test_owner_disables_staff_through_the_console(make_client, sql):
    owner_client, editor_client = await make_client(), await make_client()
    add_admin(sql)
    editor = add_admin(sql, "writer", "editor")
    await sign_in(owner_client)
    await sign_in(editor_client, "writer")
    resp = await post_form(owner_client, f"/admin/staff/{editor}", {"role": "editor"})  # is_active unchecked
    assert resp.status == 302
    assert sql("SELECT is_active FROM admins WHERE id = %s", editor)[0]["is_active"] is False
    assert (await editor_client.get("/admin/competitions", allow_redirects=False)).status == 302


async def test_roles(make_client, sql):
    add_admin(sql)
    add_admin(sql, "writer", "editor")
    add_admin(sql, "watcher", "moderator")
    editor, moderator = await make_client(), await make_client()
    await sign_in(editor, "writer")
    await sign_in(moderator, "watcher")
    resp = await editor.get("/admin/staff")
    assert resp.status == 403 and "这里需要「所有者」角色，你的账号是「编辑」" in await resp.text()
    # The action is refused too, and not done.
    resp = await post_form(editor, "/admin/staff/new", {"username": "sneaky", "role": "owner", "password": "12345678"})
    assert resp.status == 403
    assert sql("SELECT count(*) FROM admins WHERE username = 'sneaky'")[0]["count"] == 0
    assert "员工账号" not in await (await editor.get("/admin/")).text()
    for path in ("/admin/competitions", "/admin/banners", "/admin/lives", "/admin/staff"):
        assert (await moderator.get(path)).status == 403
    resp = await post_form(moderator, "/admin/banners/new", {"title": "x", "position": "1"})
    assert resp.status == 403
    assert sql("SELECT count(*) FROM banners")[0]["count"] == 0
    assert (await moderator.get("/admin/password")).status == 200


async def test_owner_manages_staff(client, sql):
    owner = add_admin(sql)
    await sign_in(client)
    assert "boss" in await (await client.get("/admin/staff")).text()
    resp = await post_form(client, "/admin/staff/new", {"username": "newbie", "role": "editor", "password": "short"})
    assert resp.status == 400
    body = await resp.text()
    assert "长度须为 8~128 个字符" in body and 'value="newbie"' in body
    resp = await post_form(client, "/admin/staff/new", {"username": "newbie", "role": "editor",
                                                        "password": "a long password"})
    assert resp.status == 302
    newbie = sql("SELECT id, role, password_hash FROM admins WHERE username = 'newbie'")[0]
    assert newbie["role"] == "editor" and newbie["password_hash"].startswith("$argon2")
    resp = await post_form(client, "/admin/staff/new", {"username": "NEWBIE", "role": "editor",
                                                        "password": "a long password"})
    assert resp.status == 400 and "已存在" in await resp.text()
    resp = await post_form(client, f"/admin/staff/{newbie['id']}", {"role": "moderator", "is_active": "y"})
    assert resp.status == 302
    assert sql("SELECT role FROM admins WHERE id = %s", newbie["id"])[0]["role"] == "moderator"
    resp = await post_form(client, f"/admin/staff/{newbie['id']}/password", {"password": "brand new secret"})
    assert resp.status == 302
    other = await sign_in(client, "newbie", "brand new secret")
    assert other.status == 302
    # The last enabled owner keeps the role.
    await sign_in(client)
    resp = await post_form(client, f"/admin/staff/{owner}", {"role": "editor", "is_active": "y"})
    assert resp.status == 400 and "至少要保留一个启用的所有者账号" in await resp.text()
    assert sql("SELECT role FROM admins WHERE id = %s", owner)[0]["role"] == "owner"


async def test_password_change_ends_other_sessions(make_client, sql):
    add_admin(sql)
    here, elsewhere = await make_client(), await make_client()
    await sign_in(here)
    await sign_in(elsewhere)
    resp = await post_form(here, "/admin/password", {"current": "wrong", "new": "another secret", "confirm":
                                                     "another secret"})
    assert resp.status == 400 and "当前密码不正确" in await resp.text()
    resp = await post_form(here, "/admin/password", {"current": PASSWORD, "new": "another secret",
                                                     "confirm": "another secret"})
    assert resp.status == 302
    assert (await here.get("/admin/")).status == 200
    assert (await elsewhere.get("/admin/", allow_redirects=False)).status == 302
    assert (await sign_in(elsewhere, "boss", "another secret")).status == 302


async def test_open_redirect_refused(client, sql):
    add_admin(sql)
    token = await csrf(client)
    resp = await client.post("/admin/login", data={"username": "boss", "password": PASSWORD, "csrf_token": token,
                                                   "next": "//evil.example.com/"}, allow_redirects=False)
    assert resp.headers["Location"] == "/admin/"


async def test_error_pages_are_html(client, sql):
    add_admin(sql)
    await sign_in(client)
    resp = await client.get("/admin/competitions/999")
    assert resp.status == 404 and resp.content_type == "text/html" and "赛事不存在" in await resp.text()
    resp = await client.get("/admin/nothing-here")
    assert resp.status == 404 and resp.content_type == "text/html"


async def test_the_role_help_names_what_each_role_may_open(client, sql):
    add_admin(sql)
    await sign_in(client)
    page = await (await client.get("/admin/staff/new")).text()
    help_text = re.search(r'<p class="hint">(所有者[^<]*)</p>', page)[1]
    assert "编辑：概览、会员、订单、赛事" in help_text and "反馈" not in help_text.split("编辑：")[1].split("；")[0]
    assert "审核员：反馈、聊天管理" in help_text and "员工账号、操作日志" in help_text


def test_the_menu_offers_each_role_the_pages_it_may_open(settings, tmp_path):
    """The menu names roles beside the pages' own `requires`: the two must agree, or a role is offered a
    page it is refused (or not offered one it may open)."""
    from jiandong.admin import create_admin_app
    from jiandong.admin.render import MENU

    admin = create_admin_app(settings, Path(__file__).resolve().parents[1] / "templates")
    pages = {route.resource.canonical: route.handler for route in admin.router.routes()
             if route.method == "GET" and route.resource is not None}
    for path, label, roles in MENU:
        assert getattr(pages[path], "admin_roles", None) == roles, label


# Common, keyboard, all-space and name-derived passwords: refused wherever a password is set.
WEAK = ("12345678", "password", " " * 8, "qwertyuiop", "zhangwei", "Zhangwei2024", "jiandong2024")


async def test_weak_passwords_are_refused_on_every_path(make_client, sql):
    add_admin(sql)
    staff = add_admin(sql, "zhangwei", "editor")
    owner, editor = await make_client(), await make_client()
    await sign_in(owner)
    await sign_in(editor, "zhangwei")
    hashes = sql("SELECT id, password_hash FROM admins ORDER BY id")
    for weak in WEAK:
        answers = [
            await post_form(owner, "/admin/staff/new", {"username": "zhangwei2", "role": "editor", "password": weak}),
            await post_form(owner, f"/admin/staff/{staff}/password", {"password": weak}),
            await post_form(editor, "/admin/password", {"current": PASSWORD, "new": weak, "confirm": weak}),
        ]
        for resp in answers:
            body = await resp.text()
            assert resp.status == 400, (weak, resp.url)
            assert re.search("密码太容易被猜到（.+）|密码不能全是空格|密码不能包含用户名", body), (weak, resp.url)
    # Nothing was created or changed, and nobody was signed out.
    assert sql("SELECT id, password_hash FROM admins ORDER BY id") == hashes
    assert (await editor.get("/admin/")).status == 200
    resp = await post_form(owner, "/admin/staff/new",
                           {"username": "liuyang", "role": "editor", "password": "liuyang88"})
    assert resp.status == 400 and "密码不能包含用户名" in await resp.text()
    resp = await post_form(owner, "/admin/staff/new", {"username": "liuyang", "role": "editor",
                                                       "password": "river lamp orbit 7"})
    assert resp.status == 302


def test_create_admin_refuses_a_weak_password(settings, sql):
    env = {**os.environ, "JIANDONG_DATABASE_URL": settings.database_url, "JIANDONG_REDIS_URL": settings.redis_url,
           "JIANDONG_VAR_DIR": settings.var_dir}
    for weak, why in (("12345678", "密码太容易被猜到"), ("founder2024", "密码不能包含用户名")):
        done = subprocess.run([sys.executable, "server.py", "create-admin", "founder"], cwd=ROOT, env=env,
                              input=weak + "\n", capture_output=True, text=True, timeout=120)
        assert done.returncode == 1 and why in done.stderr, done
    assert sql("SELECT count(*) FROM admins")[0]["count"] == 0
    done = subprocess.run([sys.executable, "server.py", "create-admin", "founder"], cwd=ROOT, env=env,
                          input="river lamp orbit 7\n", capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done
    assert sql("SELECT username, role FROM admins") == [{"username": "founder", "role": "owner"}]


def test_create_admin_prints_the_real_sign_in_address(settings, sql):
    env = {**os.environ, "JIANDONG_DATABASE_URL": settings.database_url, "JIANDONG_REDIS_URL": settings.redis_url,
           "JIANDONG_VAR_DIR": settings.var_dir, "JIANDONG_PUBLIC_URL": "https://club.example.cn/"}
    done = subprocess.run([sys.executable, "server.py", "create-admin", "founder"], cwd=ROOT, env=env,
                          input="river lamp orbit 7\n", capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done
    assert "sign in at https://club.example.cn/admin/" in done.stdout, done.stdout


async def test_an_owner_ends_a_sign_in_slow_down(make_client, sql, redis_sync, settings):
    add_admin(sql)
    staff = add_admin(sql, "writer", "editor")
    owner, guesser = await make_client(), await make_client()
    for _ in range(settings.admin_login_account_limit):
        assert (await sign_in(guesser, "writer", "wrong password")).status == 400
    resp = await sign_in(guesser, "writer")
    assert resp.status == 429 and int(resp.headers["Retry-After"]) > 0
    assert "所有者也可在员工账号页解除" in await resp.text()
    # The editor itself may not lift it; the owner sees it on the staff page and lifts it.
    assert (await sign_in(owner)).status == 302
    page = await (await owner.get(f"/admin/staff/{staff}")).text()
    assert f"近期登录失败 {settings.admin_login_account_limit} 次" in page and "解除登录限制" in page
    resp = await post_form(owner, f"/admin/staff/{staff}/unlock")
    assert resp.status == 302 and resp.headers["Location"] == f"/admin/staff/{staff}"
    [entry] = sql("SELECT action, target, before FROM audit_log WHERE action = 'staff.unlock'")
    assert entry["target"] == f"admin:{staff}" and entry["before"]["failures"] == settings.admin_login_account_limit
    assert "没有登录失败记录" in await (await owner.get(f"/admin/staff/{staff}")).text()
    assert (await sign_in(guesser, "writer")).status == 302
    resp = await post_form(guesser, f"/admin/staff/{staff}/unlock")
    assert resp.status == 403
