"""Attacks on the staff console: guessing passwords, locking staff out, uploads nobody asked for, sessions
for nobody, and two owners removing each other. Each asserts that nothing was written and nothing changed."""

from __future__ import annotations

import asyncio

from tests.helpers.admin import (
    PASSWORD,
    Unfinished,
    add_admin,
    cookie_header,
    csrf,
    multipart_start,
    session_keys,
    sign_in,
    uploads_on_disk,
)
from tests.helpers.waiting import until

BIG = 64 * 1024 * 1024
BOUNDARY = "attackboundary"
MULTIPART = f"multipart/form-data; boundary={BOUNDARY}"


def nobody_signed_in(sql) -> bool:
    return sql("SELECT count(*) FROM admins WHERE last_login_time IS NOT NULL")[0]["count"] == 0


async def test_guesses_sent_at_once_are_counted_before_they_are_checked(client, sql, redis_sync, settings):
    add_admin(sql)
    token = await csrf(client)

    async def guess(password: str) -> int:
        resp = await client.post("/admin/login", data={"username": "boss", "password": password, "csrf_token": token},
                                 allow_redirects=False)
        return resp.status

    wrong = [asyncio.create_task(guess(f"wrong guess {n}")) for n in range(39)]
    # The right password goes last, while the wrong ones are still being answered.
    await until(lambda: sum(t.done() for t in wrong) >= settings.admin_login_account_limit
                or any(t.done() and t.result() == 429 for t in wrong), "the first guesses answered")
    right = await guess(PASSWORD)
    statuses = await asyncio.gather(*wrong)
    checked = statuses.count(400)
    assert checked <= settings.admin_login_account_limit, f"{checked} of 39 guesses were checked"
    assert statuses.count(429) == 39 - checked
    assert right == 429
    assert session_keys(redis_sync, settings) == []
    assert nobody_signed_in(sql)


async def test_wrong_passwords_from_many_addresses_do_not_lock_the_owner_out(make_client, sql, redis_sync, settings):
    client = await make_client(trust_proxy=True, trusted_proxies=("127.0.0.0/8",))
    add_admin(sql)
    token = await csrf(client)

    async def attempt(address: str, password: str) -> int:
        resp = await client.post("/admin/login", data={"username": "boss", "password": password, "csrf_token": token},
                                 headers={"X-Forwarded-For": address}, allow_redirects=False)
        return resp.status

    for n in range(settings.admin_login_account_limit):
        assert await attempt(f"198.51.100.{n}", "wrong password") == 400
    # The guessers are slowed down: their next guess is refused unchecked ...
    assert await attempt("198.51.100.0", "another wrong one") == 429
    assert nobody_signed_in(sql)
    # ... while the owner, from an address that guessed nothing, still signs in.
    assert await attempt("203.0.113.50", PASSWORD) == 302
    assert (await client.get("/admin/")).status == 200


async def test_anonymous_multipart_is_refused_before_its_body_is_read(client, sql, redis_sync, settings):
    add_admin(sql, "writer", "editor")
    token = await csrf(client)
    start = multipart_start(BOUNDARY, {"csrf_token": token, "username": "writer"}, "video_file", b"\0" * 65536)
    for path in ("/admin/login", "/admin/videos/new", "/admin/banners/new", "/admin/nothing-here"):
        for headers in ({"Content-Type": MULTIPART},
                        {"Content-Type": MULTIPART, "Cookie": cookie_header(client), "X-CSRF-Token": token}):
            post = Unfinished(client, path, headers, start, BIG)
            try:
                await post.send()
                # Answered while 64 MiB announced were never sent: the body was not read.
                status, _ = await post.answer()
            finally:
                post.close()
            assert status in (302, 400, 403, 404, 415), (path, status)
            assert uploads_on_disk(settings) == [], path
    assert session_keys(redis_sync, settings) == []
    assert sql("SELECT count(*) FROM videos")[0]["count"] == 0
    assert nobody_signed_in(sql)


async def test_a_file_part_before_the_token_is_refused_unread(client, sql, settings):
    add_admin(sql, "writer", "editor")
    assert (await sign_in(client, "writer")).status == 302
    token = await csrf(client, "/admin/")
    cookie = cookie_header(client)
    cases = [
        # No token at all, a wrong one, and the right one only after the file.
        ({}, {"title": "无令牌"}),
        ({}, {"csrf_token": "forged", "title": "伪造"}),
        ({"X-CSRF-Token": "forged"}, {"title": "伪造"}),
    ]
    for headers, fields in cases:
        post = Unfinished(client, "/admin/videos/new", {"Content-Type": MULTIPART, "Cookie": cookie, **headers},
                          multipart_start(BOUNDARY, fields, "video_file", b"\0" * 65536), BIG)
        try:
            await post.send()
            status, _ = await post.answer()
        finally:
            post.close()
        assert status == 403, (headers, fields)
        assert uploads_on_disk(settings) == []
    tail = (f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="csrf_token"\r\n\r\n{token}\r\n').encode()
    post = Unfinished(client, "/admin/videos/new", {"Content-Type": MULTIPART, "Cookie": cookie},
                      multipart_start(BOUNDARY, {"title": "后置令牌"}, "video_file", b"\0" * 65536) + tail, BIG)
    try:
        await post.send()
        status, _ = await post.answer()
    finally:
        post.close()
    assert status == 403
    assert uploads_on_disk(settings) == []
    assert sql("SELECT count(*) FROM videos")[0]["count"] == 0


async def test_uploads_in_flight_are_bounded_per_client(client, sql, settings):
    add_admin(sql, "writer", "editor")
    assert (await sign_in(client, "writer")).status == 302
    token = await csrf(client, "/admin/")
    headers = {"Content-Type": MULTIPART, "Cookie": cookie_header(client), "X-CSRF-Token": token}
    start = multipart_start(BOUNDARY, {"title": "慢慢传"}, "video_file", b"\0" * 65536)
    slow = [Unfinished(client, "/admin/videos/new", headers, start, BIG)
            for _ in range(settings.admin_uploads_per_client)]
    try:
        for post in slow:
            await post.send()
        await until(lambda: len(uploads_on_disk(settings)) == len(slow), "the slow uploads being received")
        one_more = Unfinished(client, "/admin/videos/new", headers, start, BIG)
        try:
            await one_more.send()
            status, _ = await one_more.answer()
        finally:
            one_more.close()
        assert status == 429
        assert len(uploads_on_disk(settings)) == len(slow)
    finally:
        for post in slow:
            post.close()
    # A dropped upload leaves nothing behind and frees its place.
    await until(lambda: uploads_on_disk(settings) == [], "the dropped uploads removed")
    assert sql("SELECT count(*) FROM videos")[0]["count"] == 0


async def test_anonymous_visits_store_no_session(client, sql, redis_sync, settings):
    add_admin(sql)
    for _ in range(30):
        client.session.cookie_jar.clear()
        assert (await client.get("/admin/login")).status == 200
        assert (await client.get("/admin/staff", allow_redirects=False)).status == 302
        assert (await client.get("/admin/nothing-here")).status in (302, 404)
    assert (await sign_in(client, "boss", "wrong password")).status == 400
    assert (await sign_in(client, "nobody", "wrong password")).status == 400
    assert session_keys(redis_sync, settings) == []
    assert nobody_signed_in(sql)


ROUNDS = 25


async def test_two_owners_removing_each_other_at_once_leave_an_owner(make_client, sql):
    alice, bob = add_admin(sql, "alice"), add_admin(sql, "bob")
    clients = {alice: await make_client(), bob: await make_client()}
    for n in range(ROUNDS):
        sql("UPDATE admins SET role = 'owner', is_active = true")
        logged = sql("SELECT count(*) FROM audit_log WHERE action = 'staff.update'")[0]["count"]
        for admin_id, name in ((alice, "alice"), (bob, "bob")):
            assert (await sign_in(clients[admin_id], name)).status == 302
        tokens = {admin_id: await csrf(c, "/admin/") for admin_id, c in clients.items()}
        # Demote in even rounds, disable in odd ones: both remove an owner.
        change = {"role": "editor", "is_active": "y"} if n % 2 == 0 else {"role": "owner"}
        ra, rb = await asyncio.gather(
            clients[alice].post(f"/admin/staff/{bob}", data={"csrf_token": tokens[alice], **change},
                                allow_redirects=False),
            clients[bob].post(f"/admin/staff/{alice}", data={"csrf_token": tokens[bob], **change},
                              allow_redirects=False),
        )
        owners = sql("SELECT id FROM admins WHERE role = 'owner' AND is_active")
        assert len(owners) == 1, f"round {n}: {ra.status}, {rb.status}, owners {owners}"
        # Only the change that went through was made and logged; the other one changed nothing (refused,
        # or its sender was signed out by the first).
        done = [r.headers.get("Location", "").startswith("/admin/staff/") for r in (ra, rb)]
        assert sorted(done) == [False, True], f"round {n}: {ra.status}, {rb.status}"
        assert sql("SELECT count(*) FROM audit_log WHERE action = 'staff.update'")[0]["count"] == logged + 1
