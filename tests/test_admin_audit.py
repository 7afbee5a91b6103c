"""The audit log: console changes of every section recorded (who, when, what, before and after, client IP),
searchable by owners only, with no way to change or delete an entry."""

from __future__ import annotations

from tests.helpers.admin import add_admin, post_form, sign_in


async def test_content_changes_are_logged_and_searchable(make_client, sql):
    client = await make_client(trust_proxy=True)
    add_admin(sql)
    assert (await sign_in(client)).status == 302
    proxied = {"X-Forwarded-For": "203.0.113.7"}
    resp = await post_form(client, "/admin/teams/new", {"name": "建东猛龙", "sort": "0"}, headers=proxied)
    assert resp.status == 302
    team = sql("SELECT id FROM teams")[0]["id"]
    resp = await post_form(client, f"/admin/teams/{team}", {"name": "建东飞虎", "sort": "1"}, headers=proxied)
    assert resp.status == 302
    await post_form(client, f"/admin/teams/{team}/off", headers=proxied)
    await post_form(client, "/admin/staff/new", {"username": "writer", "role": "editor", "password": "a long password"})
    await post_form(client, "/admin/password", {"current": "correct horse 42", "new": "another horse 43",
                                                "confirm": "another horse 43"})
    rows = sql("SELECT admin_name, client_ip, action, target, before, after FROM audit_log ORDER BY id")
    assert [r["action"] for r in rows] == ["teams.create", "teams.update", "teams.off", "staff.create",
                                           "account.password"]
    assert {r["client_ip"] for r in rows[:3]} == {"203.0.113.7"} and rows[0]["admin_name"] == "boss"
    assert rows[1]["before"]["name"] == "建东猛龙" and rows[1]["after"]["name"] == "建东飞虎"
    assert rows[1]["target"] == f"teams:{team}"
    # No password, hash or token ever reaches the log.
    everything = str(rows)
    assert "a long password" not in everything and "horse" not in everything and "csrf" not in everything
    text = await (await client.get("/admin/audit")).text()
    assert "共 5 条" in text and "203.0.113.7" in text
    text = await (await client.get("/admin/audit", params={"q": "飞虎"})).text()
    assert "共 1 条" in text and "teams.update" in text
    text = await (await client.get("/admin/audit", params={"action": "staff"})).text()
    assert "共 1 条" in text and "staff.create" in text


async def test_the_log_is_for_owners_and_cannot_be_changed(client, sql):
    add_admin(sql)
    add_admin(sql, "writer", "editor")
    assert (await sign_in(client)).status == 302
    await post_form(client, "/admin/teams/new", {"name": "球队", "sort": "0"})
    entry = sql("SELECT id FROM audit_log")[0]["id"]
    # No route edits or deletes an entry.
    for path in (f"/admin/audit/{entry}", f"/admin/audit/{entry}/delete"):
        assert (await post_form(client, path, {"summary": "x"})).status in (404, 405)
    assert (await client.get(f"/admin/audit/{entry}")).status == 404
    assert sql("SELECT count(*) FROM audit_log")[0]["count"] == 1
    assert (await sign_in(client, "writer")).status == 302
    assert (await client.get("/admin/audit")).status == 403
