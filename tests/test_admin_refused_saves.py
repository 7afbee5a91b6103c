"""A refused create or edit in the console (crud.Section): a red 未保存 banner at the top naming each field's
problem, and an image accepted by the refused try kept for the retry, for every section with an image field."""

from __future__ import annotations

import base64
import re

import aiohttp
import pytest

from jiandong.admin import SECTIONS, audit_view
from jiandong.admin.crud import Section
from jiandong.admin.uploads import image_fields
from jiandong.lib import encoding
from tests.helpers.admin import add_admin, csrf, png, sign_in

# Per section with an image field: a form that saves, the field made wrong in the refused try (and its
# wrong value), the table and the column the image lands in.
WHEN = "2030-05-01T19:30"
CASES = {
    "banners": ({"title": "杯赛报名", "position": "2", "sort": "1", "jump_url": "https://club.example.com/cup"},
                "jump_url", "javascript:alert(1)", "banners", "img_url"),
    "competitions": ({"title": "决赛", "play_time": WHEN}, "title", "", "competitions", "main_img_url"),
    "lives": ({"title": "决赛直播", "app_name": "live", "stream_name": "final_1", "publish_time": WHEN},
              "title", "", "lives", "main_img_url"),
    "players": ({"cn_name": "王强", "sex": "1"}, "stature", "999", "players", "photo"),
    "teams": ({"name": "猛龙"}, "name", "", "teams", "logo"),
    "videos": ({"title": "集锦", "type": "1", "publish_time": WHEN, "video_url": "https://cdn.example.com/v.mp4"},
               "title", "", "videos", "main_img_url"),
}


async def submit(client, path, fields, files=None):
    """A multipart POST (as the console's forms with a file field send) with the session's CSRF token."""
    form = aiohttp.FormData()
    form.add_field("csrf_token", await csrf(client, "/admin/"))
    for name, value in fields.items():
        form.add_field(name, str(value))
    for name, (filename, data) in (files or {}).items():
        form.add_field(name, data, filename=filename, content_type="application/octet-stream")
    return await client.post(path, data=form, allow_redirects=False)


def sections_with_images() -> dict[str, Section]:
    """The console's sections whose form has an image field, from the registry the console is built from."""
    found = {}
    for module in SECTIONS:
        section = getattr(module, "section", None)
        if isinstance(section, Section) and image_fields(section.form_class()):
            found[section.slug] = section
    return found


SECTIONS_WITH_IMAGES = sections_with_images()


def test_every_section_with_an_image_field_is_covered():
    assert set(SECTIONS_WITH_IMAGES) == set(CASES)


@pytest.fixture
async def console(client, sql):
    add_admin(sql, "writer", "editor")
    assert (await sign_in(client, "writer")).status == 302
    return client


def image_field(slug: str) -> str:
    return image_fields(SECTIONS_WITH_IMAGES[slug].form_class())[0].name


def kept_token(body: str, field: str) -> str:
    match = re.search(rf'name="{field}__kept" value="([^"]+)"', body)
    assert match, "the re-shown form carries no kept upload"
    return match.group(1)


async def refused_with_an_image(console, slug: str) -> tuple[str, str]:
    """POST a new item with a good image and one wrong field: the page, and the kept image's token."""
    fields, bad, wrong, table, column = CASES[slug]
    field = image_field(slug)
    resp = await submit(console, f"/admin/{slug}/new", {**fields, bad: wrong}, {field: ("photo.png", png(300, 200))})
    assert 400 <= resp.status < 500
    body = await resp.text()
    return body, kept_token(body, field)


@pytest.mark.parametrize("slug", sorted(CASES))
async def test_a_refused_save_says_why_at_the_top_and_keeps_the_image(console, sql, settings, slug):
    fields, bad, _, table, column = CASES[slug]
    body, token = await refused_with_an_image(console, slug)
    banner = body.index('class="refused"')
    assert banner < body.index("<form method=\"post\" action=\"/admin/" + slug)
    assert "未保存" in body[banner:banner + 300]
    # The wrong field is named in the banner, linked to its input.
    assert re.search(rf'<a href="#{bad}">', body)
    assert "已上传，保存后生效" in body
    assert sql(f"SELECT count(*) FROM {table}")[0]["count"] == 0

    resp = await submit(console, f"/admin/{slug}/new", {**fields, image_field(slug) + "__kept": token})
    assert resp.status == 302, await resp.text()
    ident = int(resp.headers["Location"].rsplit("/", 1)[1])
    url = sql(f"SELECT {column} FROM {table} WHERE id = %s", ident)[0][column]
    assert url.startswith(f"/media/{slug}/")
    assert (settings.media_path / url.removeprefix("/media/")).is_file()


@pytest.mark.parametrize("slug", sorted(CASES))
async def test_a_kept_image_of_another_session_is_not_used(console, sql, slug):
    fields, _, _, table, column = CASES[slug]
    _, token = await refused_with_an_image(console, slug)
    # Signed out and in again: another session, with its own key.
    console.session.cookie_jar.clear()
    assert (await sign_in(console, "writer")).status == 302
    resp = await submit(console, f"/admin/{slug}/new", {**fields, image_field(slug) + "__kept": token})
    if resp.status == 302:
        ident = int(resp.headers["Location"].rsplit("/", 1)[1])
        assert sql(f"SELECT {column} FROM {table} WHERE id = %s", ident)[0][column] == ""
    else:
        # A banner needs its picture: refused, nothing kept.
        body = await resp.text()
        assert resp.status == 400 and "请上传图片" in body and "__kept" not in body
        assert sql(f"SELECT count(*) FROM {table}")[0]["count"] == 0


def forged(token: str, **change: object) -> str:
    """The token with its payload changed (its signature left as it was)."""
    payload, mac = token.split(".")
    body = encoding.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    if "url" in change:
        body[1] = change["url"]
    if "expires" in change:
        body[6] = change["expires"]
    return base64.urlsafe_b64encode(encoding.dumps(body)).decode().rstrip("=") + "." + mac


@pytest.mark.parametrize("change", [{"url": "/media/teams/202001/" + "0" * 64 + ".png"}, {"expires": 1}],
                         ids=["other-file", "expired"])
async def test_a_forged_or_expired_kept_image_is_no_image(console, sql, change):
    _, token = await refused_with_an_image(console, "teams")
    resp = await submit(console, "/admin/teams/new", {"name": "猛龙", "logo_file__kept": forged(token, **change)})
    assert resp.status == 302
    assert sql("SELECT logo FROM teams")[0]["logo"] == ""


async def test_an_edit_refused_keeps_the_new_image_and_the_old_one_until_saved(console, sql):
    resp = await submit(console, "/admin/teams/new", {"name": "猛龙"}, {"logo_file": ("a.png", png(colour=(1, 2, 3)))})
    ident = int(resp.headers["Location"].rsplit("/", 1)[1])
    before = sql("SELECT logo FROM teams")[0]["logo"]
    resp = await submit(console, f"/admin/teams/{ident}", {"name": "", "sort": "1"},
                        {"logo_file": ("b.png", png(colour=(9, 9, 9)))})
    assert resp.status == 400
    body = await resp.text()
    assert "未保存：球队名称：必填" in re.sub(r"<[^>]+>", "", body)
    assert sql("SELECT logo FROM teams")[0]["logo"] == before
    resp = await submit(console, f"/admin/teams/{ident}", {"name": "飞虎", "logo_file__kept": kept_token(body,
                                                                                                          "logo_file")})
    assert resp.status == 302
    row = sql("SELECT name, logo FROM teams")[0]
    assert row["name"] == "飞虎" and row["logo"] != before and row["logo"].startswith("/media/teams/")


# The field each section's edit changes (the rest of the form is sent as it was).
RENAMED = {"banners": "title", "competitions": "title", "lives": "title", "players": "cn_name", "teams": "name",
           "videos": "title"}


@pytest.mark.parametrize("slug", sorted(CASES))
async def test_an_edit_records_before_and_after_in_the_same_terms(console, sql, slug):
    """Edit one field of an item with an image, choosing no new image: the audit entry names that field only
    (no flag shown as 1 → 是, no image shown as removed or renamed)."""
    fields, _, _, _, _ = CASES[slug]
    resp = await submit(console, f"/admin/{slug}/new", fields, {image_field(slug): ("photo.png", png(300, 200))})
    assert resp.status == 302, await resp.text()
    path = resp.headers["Location"]
    field = RENAMED[slug]
    resp = await submit(console, path, {**fields, field: fields[field] + "二"})
    assert resp.status == 302, await resp.text()
    entry = sql("SELECT action, before, after FROM audit_log WHERE action = %s", f"{slug}.update")[0]
    assert entry["before"].keys() == entry["after"].keys()
    assert entry["before"][image_field(slug)] == entry["after"][image_field(slug)] is not None
    shown = audit_view.changes(entry["action"], entry["before"], entry["after"])
    assert [(c.label, c.old.text, c.new.text) for c in shown] == [
        (audit_view.field_label(entry["action"], field), fields[field], fields[field] + "二")]


async def test_an_upload_kept_by_a_refused_save_is_not_called_the_current_picture(console, sql):
    """The saved picture is the current one; the upload a refused save kept takes effect only when saved, and
    says so."""
    resp = await submit(console, "/admin/competitions/new", {"title": "决赛", "play_time": WHEN},
                        {"cover": ("a.png", png(colour=(1, 2, 3)))})
    ident = int(resp.headers["Location"].rsplit("/", 1)[1])
    saved = sql("SELECT main_img_url FROM competitions")[0]["main_img_url"]
    resp = await submit(console, f"/admin/competitions/{ident}", {"title": "", "play_time": WHEN},
                        {"cover": ("b.png", png(colour=(9, 9, 9)))})
    assert resp.status == 400
    body = await resp.text()
    field = body.split('<label for="cover"', 1)[1].split('class="field', 1)[0]
    kept = re.search(r'<div class="kept">(.*?)</div>', field, re.S).group(1)
    assert "已上传，保存后生效" in kept and "当前图片" not in kept and saved not in kept
    # The current picture is the saved one, shown as such within its field.
    assert re.search(rf'<img class="preview" src="{re.escape(saved)}" alt="当前图片">', field)
    # A new item has no current picture: its kept upload is only waiting to be saved.
    resp = await submit(console, "/admin/competitions/new", {"title": "", "play_time": WHEN},
                        {"cover": ("c.png", png(colour=(5, 5, 5)))})
    body = await resp.text()
    assert resp.status == 400 and "已上传，保存后生效" in body and "当前图片" not in body


@pytest.mark.parametrize("slug", sorted(s for s in CASES
                                         if SECTIONS_WITH_IMAGES[s].form_class()[RENAMED[s]].flags.required))
async def test_a_name_of_spaces_is_no_name(console, sql, slug):
    """A required text of spaces (full-width ones too) is refused like an empty one; a name typed with spaces
    around it is stored without them."""
    fields, _, _, table, _ = CASES[slug]
    field = RENAMED[slug]
    resp = await submit(console, f"/admin/{slug}/new", {**fields, field: "  \u3000 "})
    assert resp.status == 400 and "未保存" in (body := await resp.text()) and "必填" in body
    assert sql(f"SELECT count(*) FROM {table}")[0]["count"] == 0
    resp = await submit(console, f"/admin/{slug}/new", {**fields, field: f"  {fields[field]}\u3000"})
    assert resp.status == 302, await resp.text()
    column = "title" if field == "title" else field
    assert sql(f"SELECT {column} FROM {table}")[0][column] == fields[field]


@pytest.mark.parametrize("slug", sorted(CASES))
async def test_an_empty_picture_file_is_refused_as_one_not_taken_for_no_picture(console, sql, slug):
    fields, _, _, table, _ = CASES[slug]
    resp = await submit(console, f"/admin/{slug}/new", fields, {image_field(slug): ("photo.png", b"")})
    body = await resp.text()
    assert resp.status == 400 and "未保存" in body and "图片" in body, body[:2000]
    assert sql(f"SELECT count(*) FROM {table}")[0]["count"] == 0
