"""Console feedback: the list by type and state, marking one handled with a note (written to the audit log)."""

from __future__ import annotations

from tests.helpers.admin import add_admin, post_form, sign_in
from tests.helpers.api import call, login


async def test_feedback_filters_and_handling(client, sql):
    token = await login(client)
    for kind, title in ((1, "建议加夜场"), (2, "裁判不公"), (3, "其它事情")):
        status, _ = await call(client, "POST", "/api/v1/feeds", token, type=kind, title=title, content=f"{title}的内容",
                               phone="13800000000")
        assert status == 200
    add_admin(sql, "mod", "moderator")
    assert (await sign_in(client, "mod")).status == 302
    text = await (await client.get("/admin/feedback")).text()
    assert "共 3 条" in text and all(t in text for t in ("建议加夜场", "裁判不公", "其它事情"))
    text = await (await client.get("/admin/feedback?type=2")).text()
    assert "裁判不公" in text and "建议加夜场" not in text
    complaint = sql("SELECT id FROM feedback WHERE type = 2")[0]["id"]
    resp = await post_form(client, f"/admin/feedback/{complaint}/handled",
                           {"note": "已电话回访", "back": "/admin/feedback?state=open"}, token_from="/admin/feedback")
    assert resp.status == 302 and resp.headers["Location"] == "/admin/feedback?state=open"
    [row] = sql("SELECT handled_at IS NOT NULL AS done, handled_note, handled_by FROM feedback WHERE id = %s",
                complaint)
    assert row == {"done": True, "handled_note": "已电话回访", "handled_by": 1}
    text = await (await client.get("/admin/feedback?state=open")).text()
    assert "共 2 条" in text and "裁判不公" not in text
    text = await (await client.get("/admin/feedback?state=done")).text()
    assert "裁判不公" in text and "已电话回访" in text and "mod" in text
    # Handled once: a second time is refused; an unknown one too.
    resp = await post_form(client, f"/admin/feedback/{complaint}/handled", {"note": "again"},
                           token_from="/admin/feedback")
    assert resp.status == 404
    assert (await post_form(client, "/admin/feedback/999/handled", {"note": "x"})).status == 404
    assert [r["action"] for r in sql("SELECT action FROM audit_log")] == ["feedback.handle"]
    # An open redirect is not followed.
    other = sql("SELECT id FROM feedback WHERE type = 1")[0]["id"]
    resp = await post_form(client, f"/admin/feedback/{other}/handled", {"back": "//evil.example.com/"},
                           token_from="/admin/feedback")
    assert resp.headers["Location"] == "/admin/feedback"


async def test_feedback_is_the_moderators_not_the_editors(client, sql):
    """Roles: the moderator answers feedback (with the chat); an editor keeps to the content."""
    add_admin(sql, "writer", "editor")
    assert (await sign_in(client, "writer")).status == 302
    assert (await client.get("/admin/feedback")).status == 403
    assert (await post_form(client, "/admin/feedback/1/handled", {"note": "x"}, token_from="/admin/")).status == 403
